//! The plan as text: each kernel object written the way `ip` prints it, so a
//! reviewer can read a plan, an apply log and a diff in one vocabulary.

use std::fmt;

use super::{Fdb, Neighbour, NodePlan, PeerPath, Route, VxlanLink};

impl fmt::Display for VxlanLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} type vxlan id {} local {} dev {} dstport {} {}learning address {} mtu {}",
            self.name,
            self.vni,
            self.local,
            self.dev,
            self.port,
            if self.learning { "" } else { "no" },
            self.mac,
            self.mtu
        )
    }
}

impl fmt::Display for Neighbour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lladdr {} dev {} permanent", self.ip, self.lladdr, self.dev)
    }
}

impl fmt::Display for Fdb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dst {} dev {} self permanent", self.lladdr, self.dst, self.dev)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} via {} dev {}", self.dst, self.via, self.dev)?;
        if self.onlink {
            write!(f, " onlink")?;
        }
        Ok(())
    }
}

impl fmt::Display for PeerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerPath::Vxlan => "vxlan",
            PeerPath::HostGw => "host-gw",
        })
    }
}

impl fmt::Display for NodePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match (self.backend.as_str(), self.direct_routing) {
            ("vxlan", true) => "vxlan (directRouting)".to_string(),
            (b, _) => b.to_string(),
        };
        writeln!(f, "# node {} of cluster {}, backend {backend}", self.node, self.cluster)?;
        writeln!(
            f,
            "# network {} subnet {} gateway {} mtu {} ipMasq {}",
            self.network, self.subnet, self.gateway, self.mtu, self.ip_masq
        )?;
        writeln!(f, "# uplink {} {} mtu {}", self.uplink.name, self.uplink.address, self.uplink.mtu)?;
        for s in &self.sysctls {
            writeln!(f, "sysctl {}={}", s.key, s.value)?;
        }
        if let Some(link) = &self.vxlan {
            writeln!(f, "link {link}")?;
            writeln!(f, "address {} dev {}", link.address, link.name)?;
        }
        for p in &self.peers {
            writeln!(f, "# peer {} {} {} ({})", p.node, p.ip, p.subnet, p.path)?;
            if let Some(n) = &p.neighbour {
                writeln!(f, "neigh {n}")?;
            }
            if let Some(d) = &p.fdb {
                writeln!(f, "fdb {d}")?;
            }
            writeln!(f, "route {}", p.route)?;
        }
        Ok(())
    }
}
