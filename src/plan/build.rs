//! Cluster + allocation -> one node's plan.

use ipnet::Ipv4Net;

use super::{FORMAT_VERSION, Fdb, Neighbour, NodePlan, Peer, PeerPath, Route, Sysctl, Uplink, VxlanLink};
use crate::alloc::{Allocation, Lease};
use crate::topology::{BackendKind, Cluster, Node};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no node `{name}` in the topology{}", hint.as_ref().map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default())]
    UnknownNode { name: String, hint: Option<String> },
    #[error("node `{0}` has no lease; the allocation does not match the topology")]
    NoLease(String),
}

fn lease<'a>(alloc: &'a Allocation, node: &Node) -> Result<&'a Lease, PlanError> {
    alloc.leases.get(&node.name).ok_or_else(|| PlanError::NoLease(node.name.clone()))
}

/// The plan for node `name`.
pub fn build(cluster: &Cluster, alloc: &Allocation, name: &str) -> Result<NodePlan, PlanError> {
    let node = cluster.node(name).ok_or_else(|| PlanError::UnknownNode {
        name: name.to_string(),
        hint: crate::diag::suggest(name, cluster.nodes.iter().map(|n| n.name.as_str())).map(str::to_string),
    })?;
    build_for(cluster, alloc, node)
}

/// Plans for every node, in file order.
pub fn build_all(cluster: &Cluster, alloc: &Allocation) -> Result<Vec<NodePlan>, PlanError> {
    cluster.nodes.iter().map(|n| build_for(cluster, alloc, n)).collect()
}

fn build_for(cluster: &Cluster, alloc: &Allocation, node: &Node) -> Result<NodePlan, PlanError> {
    let own = lease(alloc, node)?;
    let backend = &cluster.backend;
    let mtu = cluster.pod_mtu();
    let vxlan = (backend.kind == BackendKind::Vxlan).then(|| VxlanLink {
        name: format!("flannel.{}", backend.vni),
        vni: backend.vni,
        port: backend.port,
        local: node.addr(),
        learning: false,
        mac: own.vtep_mac,
        mtu,
        dev: node.interface.clone(),
        address: Ipv4Net::new_assert(own.subnet.network(), 32),
    });

    let mut peers = Vec::with_capacity(cluster.nodes.len().saturating_sub(1));
    for other in cluster.nodes.iter().filter(|o| o.name != node.name) {
        let theirs = lease(alloc, other)?;
        let direct =
            backend.kind == BackendKind::HostGw || (backend.direct_routing && other.segment() == node.segment());
        let peer = match (&vxlan, direct) {
            (Some(link), false) => {
                let gw = theirs.subnet.network();
                Peer {
                    node: other.name.clone(),
                    ip: other.addr(),
                    subnet: theirs.subnet,
                    path: PeerPath::Vxlan,
                    neighbour: Some(Neighbour { dev: link.name.clone(), ip: gw, lladdr: theirs.vtep_mac }),
                    fdb: Some(Fdb { dev: link.name.clone(), lladdr: theirs.vtep_mac, dst: other.addr() }),
                    route: Route { dst: theirs.subnet, via: gw, dev: link.name.clone(), onlink: true },
                }
            }
            _ => Peer {
                node: other.name.clone(),
                ip: other.addr(),
                subnet: theirs.subnet,
                path: PeerPath::HostGw,
                neighbour: None,
                fdb: None,
                route: Route { dst: theirs.subnet, via: other.addr(), dev: node.interface.clone(), onlink: false },
            },
        };
        peers.push(peer);
    }
    peers.sort_by_key(|p| p.subnet);

    let sysctls = sysctls(&node.interface, vxlan.as_ref().map(|l| l.name.as_str()));
    Ok(NodePlan {
        format_version: FORMAT_VERSION,
        cluster: cluster.name.clone(),
        node: node.name.clone(),
        backend: backend.kind,
        direct_routing: backend.direct_routing,
        network: cluster.network,
        subnet: own.subnet,
        // Subnets are at most /30, so .1 is always a host address.
        gateway: own.subnet.hosts().next().unwrap_or(own.subnet.network()),
        mtu,
        ip_masq: cluster.ip_masq,
        device: format!("flannel.{}", backend.vni),
        uplink: Uplink { name: node.interface.clone(), address: node.ip, mtu: cluster.mtu },
        vxlan,
        peers,
        sysctls,
    })
}

/// Kernel settings the node needs. Forwarding, and loose reverse-path
/// filtering on the uplink and the flannel device: while a cluster migrates
/// between backends, replies come back on the other interface than the
/// request left by, and strict filtering (rp_filter=1) would drop them.
/// Per-interface keys use sysctl.d's slash form, as names may contain dots.
fn sysctls(uplink: &str, device: Option<&str>) -> Vec<Sysctl> {
    let mut v = vec![Sysctl { key: "net.ipv4.ip_forward".into(), value: "1".into() }];
    for dev in std::iter::once(uplink).chain(device) {
        v.push(Sysctl { key: format!("net/ipv4/conf/{dev}/rp_filter"), value: "2".into() });
    }
    v
}
