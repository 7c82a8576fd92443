//! The forwarder's peer table: subnet -> the node's public IP and port,
//! from a plan. Every subnet of a flannel network has the same length, so a
//! lookup masks the destination once and finds it in a hash map (flanneld's
//! proxy scans a list).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use crate::plan::{BackendPlan, NodePlan, Peer};

/// What the forwarder needs from a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTable {
    mask: u32,
    peers: HashMap<u32, SocketAddrV4>,
    /// A peer's public IP -> its subnet (masked), for the source filter.
    senders: HashMap<u32, u32>,
    /// The TUN device, its address (source of ICMP errors) and the socket.
    pub device: String,
    pub tun_addr: Ipv4Addr,
    pub bind: SocketAddrV4,
}

impl PeerTable {
    /// The table of a udp plan; an error says why the plan is not one.
    pub fn from_plan(plan: &NodePlan) -> Result<PeerTable, String> {
        let BackendPlan::Udp { port } = plan.backend else {
            return Err(format!(
                "the plan of node {} uses the {} backend; `flannel-gen udp` runs only for udp",
                plan.node,
                plan.backend.kind().as_str()
            ));
        };
        let tun = plan.tun_device().ok_or_else(|| "a udp plan without IPv4".to_string())?;
        let Some(IpAddr::V4(public)) = plan.uplink.ipv4.map(|a| a.addr()) else {
            return Err("a udp plan without an IPv4 underlay address".into());
        };
        let IpAddr::V4(tun_addr) = tun.address.addr() else { return Err("a udp plan with an IPv6 subnet".into()) };
        let len = plan.ipv4.as_ref().map_or(32, |f| f.subnet.prefix_len());
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        let mut peers = HashMap::with_capacity(plan.peers.len());
        let mut senders = HashMap::with_capacity(plan.peers.len());
        for p in &plan.peers {
            if let (Peer::Udp { subnet, public_ip: IpAddr::V4(ip), .. }, IpAddr::V4(net)) = (p, p.subnet().addr()) {
                debug_assert_eq!(subnet.prefix_len(), len);
                peers.insert(u32::from(net) & mask, SocketAddrV4::new(*ip, port));
                senders.insert(u32::from(*ip), u32::from(net) & mask);
            }
        }
        Ok(PeerTable { mask, peers, senders, device: tun.name, tun_addr, bind: SocketAddrV4::new(public, port) })
    }

    /// Where a packet for `dst` goes, if any node has its subnet.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<SocketAddrV4> {
        self.peers.get(&(u32::from(dst) & self.mask)).copied()
    }

    /// The subnet of the peer at underlay address `from`, if it is one.
    pub fn subnet_of_sender(&self, from: Ipv4Addr) -> Option<u32> {
        self.senders.get(&u32::from(from)).copied()
    }

    /// Whether `src` lies in `subnet` (as [`PeerTable::subnet_of_sender`] gives it).
    pub fn in_subnet(&self, src: Ipv4Addr, subnet: u32) -> bool {
        u32::from(src) & self.mask == subnet
    }

    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(nodes: usize) -> NodePlan {
        let spec = crate::synth::SynthSpec {
            nodes,
            backend: crate::topology::BackendKind::Udp,
            direct_routing: false,
            segments: 2,
            cluster: "t".into(),
        };
        let yaml = crate::synth::topology_yaml(&spec);
        let f = std::path::Path::new("t.yaml");
        let c =
            crate::topology::validate::validate(f, &crate::topology::parse::parse_topology(f, &yaml).expect("parses"))
                .expect("valid");
        let leases = crate::alloc::allocate(&c, None).expect("allocates");
        crate::plan::build(&c, &leases, &c.nodes[0].name).expect("plan")
    }

    #[test]
    fn every_peer_subnet_maps_to_its_node_and_nothing_else_does() {
        let p = plan(300);
        let t = PeerTable::from_plan(&p).expect("udp plan");
        assert_eq!(t.len(), 299);
        for peer in &p.peers {
            let IpAddr::V4(net) = peer.subnet().addr() else { panic!("v4") };
            let host = Ipv4Addr::from(u32::from(net) + 77);
            let want = SocketAddrV4::new(
                match peer.public_ip() {
                    IpAddr::V4(a) => a,
                    IpAddr::V6(_) => panic!("v4"),
                },
                8285,
            );
            assert_eq!(t.lookup(host), Some(want));
        }
        let own = p.ipv4.as_ref().expect("v4").subnet;
        let IpAddr::V4(own) = own.addr() else { panic!("v4") };
        assert_eq!(t.lookup(own), None, "the node's own subnet is not a peer");
        assert_eq!(t.lookup(Ipv4Addr::new(8, 8, 8, 8)), None);
        assert_eq!((t.device.as_str(), t.bind.port()), ("flannel0", 8285));
    }
}
