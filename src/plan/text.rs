//! The plan as text: each kernel object written the way `ip` prints it, so a
//! reviewer can read a plan, an apply log and a diff in one vocabulary.

use std::fmt;

use super::objects::{Fdb, Neighbour, Route, TunDevice, VxlanDevice};
use super::{BackendPlan, NodePlan, Peer};
use crate::topology::BackendKind;

impl fmt::Display for VxlanDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} type vxlan id {} local {} dev {} dstport {} {}learning{} address {} mtu {}",
            self.name,
            self.vni,
            self.local,
            self.dev,
            self.port,
            if self.learning { "" } else { "no" },
            if self.gbp { " gbp" } else { "" },
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

impl fmt::Display for TunDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} type tun multi_queue persist mtu {}", self.name, self.mtu)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dst)?;
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        write!(f, " dev {}", self.dev)?;
        if self.onlink {
            write!(f, " onlink")?;
        }
        if let Some(id) = self.nhid {
            write!(f, " nhid {id}")?;
        }
        if !self.scope.is_global() {
            write!(f, " scope {}", self.scope.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Display for BackendPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendPlan::Vxlan { vni, port, direct_routing, gbp, learning, tx_checksum_offload } => {
                write!(f, "vxlan (vni {vni}, port {port}")?;
                for (on, what) in [
                    (*direct_routing, "directRouting"),
                    (*gbp, "gbp"),
                    (*learning, "learning"),
                    (!tx_checksum_offload, "no tx checksum offload"),
                ] {
                    if on {
                        write!(f, ", {what}")?;
                    }
                }
                f.write_str(")")
            }
            BackendPlan::HostGw => f.write_str("host-gw"),
            BackendPlan::Udp { port } => write!(f, "udp (port {port})"),
            BackendPlan::AwsVpc { instance_id } => write!(f, "aws-vpc (instance {instance_id})"),
            BackendPlan::Gce { instance, zone } => write!(f, "gce (instance {zone}/{instance})"),
            BackendPlan::Wireguard { port, port_v6, persistent_keepalive, psk_file, public_key, .. } => {
                write!(f, "wireguard (port {port}, portV6 {port_v6}, public key {public_key}")?;
                if *persistent_keepalive > 0 {
                    write!(f, ", keepalive {persistent_keepalive}s")?;
                }
                if psk_file.is_some() {
                    f.write_str(", pre-shared key")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for NodePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# node {} of cluster {}, backend {}", self.node, self.cluster, self.backend)?;
        for (fam, p) in self.families() {
            let gw = self.gateway(fam).map(|g| g.to_string()).unwrap_or_default();
            writeln!(f, "# {fam} network {} subnet {} gateway {gw}", p.network, p.subnet)?;
        }
        // Only vxlan and host-gw route peers through gateways (validation
        // refuses routeStyle for the others).
        let style = matches!(self.backend.kind(), BackendKind::Vxlan | BackendKind::HostGw)
            .then(|| format!(" routeStyle {}", self.route_style.as_str()))
            .unwrap_or_default();
        writeln!(f, "# mtu {} ipMasq {}{style}", self.mtu, self.ip_masq)?;
        let addrs: Vec<String> = [self.uplink.ipv4, self.uplink.ipv6].iter().flatten().map(|a| a.to_string()).collect();
        writeln!(f, "# uplink {} {} mtu {}", self.uplink.name, addrs.join(" "), self.uplink.mtu)?;
        for c in &self.connected {
            writeln!(f, "# connected {} {}", c.interface, c.ip)?;
        }
        for s in &self.sysctls {
            match &s.only_from {
                Some(from) => writeln!(f, "sysctl {}={} (only from {from})", s.key, s.value)?,
                None => writeln!(f, "sysctl {}={}", s.key, s.value)?,
            }
        }
        for d in self.vxlan_devices() {
            writeln!(f, "link {d}")?;
            writeln!(f, "address {} dev {}", d.address, d.name)?;
        }
        if let Some(t) = self.tun_device() {
            writeln!(f, "link {t}")?;
            writeln!(f, "address {} dev {}", t.address, t.name)?;
            writeln!(f, "route {} dev {}", t.network, t.name)?;
        }
        for d in self.wireguard_devices() {
            writeln!(f, "link {} type wireguard mtu {} listen-port {}", d.name, d.mtu, d.port)?;
            writeln!(f, "address {} dev {}", d.address, d.name)?;
            writeln!(f, "route {} dev {}", d.network, d.name)?;
        }
        for b in self.blackholes() {
            writeln!(f, "route blackhole {b} metric {}", super::objects::BLACKHOLE_METRIC)?;
        }
        for p in &self.peers {
            writeln!(f, "# peer {} {} {} ({})", p.node(), p.public_ip(), p.subnet(), p.path())?;
            if let Peer::Vxlan { .. } = p {
                let (n, d) = (self.neighbour_of(p), self.fdb_of(p));
                if let (Some(n), Some(d)) = (n, d) {
                    writeln!(f, "neigh {n}\nfdb {d}")?;
                }
            }
            if let Some(r) = self.route_of(p) {
                writeln!(f, "route {r}")?;
            }
            if let Some(k) = p.public_key() {
                writeln!(f, "wireguard peer {k} allowed-ips {}", p.subnet())?;
            }
        }
        Ok(())
    }
}
