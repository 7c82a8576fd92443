//! Cluster + leases -> one node's plan.

use super::{BackendPlan, FORMAT_VERSION, FamilyPlan, NodePlan, Peer, PlanData, Sysctl, TrafficRules, Uplink};
use crate::lock::{FamilyLease, Leases};
use crate::netaddr::{Family, PerFamily};
use crate::topology::{BackendKind, Cluster, Node, NodeCloud};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no node `{name}` in the topology{}", hint.as_ref().map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default())]
    UnknownNode { name: String, hint: Option<String> },
    #[error("node `{0}` has no lease; the allocation does not match the topology")]
    NoLease(String),
    /// Validation requires an instance with a cloud backend; a bug if missing.
    #[error("internal error: node `{0}` has no cloud instance")]
    NoInstance(String),
    #[error(
        "node `{0}` has no WireGuard public key; run `flannel-gen wireguard keygen` on it and record the key with `flannel-gen lock TOPO --wireguard-key {0}=PUBKEY`"
    )]
    NoWireguardKey(String),
    /// A compiled plan broke an invariant of the plan: a bug in flannel-gen.
    #[error("internal error: the plan of node `{node}` is inconsistent: {problems}")]
    Inconsistent { node: String, problems: String },
}

fn wireguard_key(node: &Node) -> Result<crate::wireguard::key::Key, PlanError> {
    node.wireguard_key.ok_or_else(|| PlanError::NoWireguardKey(node.name.clone()))
}

fn lease<'a>(leases: &'a Leases, node: &Node) -> Result<&'a PerFamily<FamilyLease>, PlanError> {
    leases.get(&node.name).ok_or_else(|| PlanError::NoLease(node.name.clone()))
}

/// The plan for node `name`.
pub fn build(cluster: &Cluster, leases: &Leases, name: &str) -> Result<NodePlan, PlanError> {
    let node = cluster
        .node(name)
        .ok_or_else(|| PlanError::UnknownNode { name: name.to_string(), hint: cluster.suggest_node(name) })?;
    build_for(cluster, leases, node)
}

/// Plans for every node, in file order.
pub fn build_all(cluster: &Cluster, leases: &Leases) -> Result<Vec<NodePlan>, PlanError> {
    cluster.nodes.iter().map(|n| build_for(cluster, leases, n)).collect()
}

fn build_for(cluster: &Cluster, leases: &Leases, node: &Node) -> Result<NodePlan, PlanError> {
    let own = lease(leases, node)?;
    let b = &cluster.backend;
    let backend = backend_plan(b, node)?;
    let t = &cluster.traffic;
    let traffic_rules =
        t.rules.map(|backend| TrafficRules { backend, forward: t.forward, random_fully: t.random_fully });
    let family = |f: Family| -> Option<FamilyPlan> {
        let pool = cluster.pools.get(f)?;
        let l = own.get(f)?;
        let vtep_mac = (b.kind == BackendKind::Vxlan).then_some(l.vtep_mac);
        Some(FamilyPlan { network: pool.network, subnet: l.subnet, vtep_mac })
    };
    let mut peers = Vec::with_capacity(cluster.nodes.len().saturating_sub(1) * 2);
    for other in cluster.nodes.iter().filter(|o| o.name != node.name) {
        let theirs = lease(leases, other)?;
        if b.kind == BackendKind::Wireguard {
            wireguard_key(other)?;
        }
        for (f, l) in theirs.iter() {
            if let Some(p) = peer(cluster, node, other, f, l) {
                peers.push(p);
            }
        }
    }
    peers.sort_by_key(Peer::subnet);
    let uplink = Uplink {
        name: node.interface.clone(),
        mtu: node.mtu,
        ipv4: node.ips.v4,
        ipv6: node.ips.v6,
        public_ipv4: node.public.v4,
        public_ipv6: node.public.v6,
    };
    let mut data = PlanData {
        format_version: FORMAT_VERSION,
        cluster: cluster.name.clone(),
        node: node.name.clone(),
        backend,
        route_style: b.route_style,
        ip_masq: cluster.ip_masq,
        mtu: node.mtu - b.kind.overhead(),
        uplink,
        connected: node.connected.clone(),
        ipv4: family(Family::V4),
        ipv6: family(Family::V6),
        peers,
        traffic_rules,
        blackhole_route: cluster.blackhole_route,
        sysctls: Vec::new(),
    };
    data.sysctls = sysctls(&data);
    NodePlan::new(data).map_err(|problems| PlanError::Inconsistent {
        node: node.name.clone(),
        problems: problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
    })
}

/// The backend as `node` runs it.
fn backend_plan(b: &crate::topology::Backend, node: &Node) -> Result<BackendPlan, PlanError> {
    Ok(match b.kind {
        BackendKind::Vxlan => BackendPlan::Vxlan {
            vni: b.vni,
            port: b.port,
            direct_routing: b.direct_routing,
            gbp: b.gbp,
            learning: b.learning,
            tx_checksum_offload: b.tx_checksum_offload,
        },
        BackendKind::HostGw => BackendPlan::HostGw,
        BackendKind::Udp => BackendPlan::Udp { port: b.port },
        BackendKind::AwsVpc | BackendKind::Gce => match node.cloud.clone() {
            Some(NodeCloud::Aws { instance_id }) => BackendPlan::AwsVpc { instance_id },
            Some(NodeCloud::Gce { instance, zone }) => BackendPlan::Gce { instance, zone },
            None => return Err(PlanError::NoInstance(node.name.clone())),
        },
        BackendKind::Wireguard => {
            let w = b.wireguard.clone().unwrap_or_else(|| crate::topology::WireguardBackend {
                port_v6: crate::topology::DEFAULT_WG_PORT_V6,
                persistent_keepalive: 0,
                key_file: crate::wireguard::DEFAULT_KEY_FILE.into(),
                psk_file: None,
            });
            BackendPlan::Wireguard {
                port: b.port,
                port_v6: w.port_v6,
                persistent_keepalive: w.persistent_keepalive,
                key_file: w.key_file,
                psk_file: w.psk_file,
                public_key: wireguard_key(node)?,
            }
        }
    })
}

/// How `node` reaches `other` in family `f`: through the udp forwarder with
/// that backend; directly when the backend is host-gw, or with directRouting
/// when `other` is on-link; else over VXLAN.
fn peer(cluster: &Cluster, node: &Node, other: &Node, f: Family, l: &FamilyLease) -> Option<Peer> {
    let public_ip = other.reached_from(node, f)?;
    let b = &cluster.backend;
    let direct = b.kind == BackendKind::HostGw || (b.direct_routing && node.on_link(f, other));
    let name = other.name.clone();
    if b.kind == BackendKind::Udp {
        return Some(Peer::Udp { node: name, subnet: l.subnet, public_ip });
    }
    if b.kind.is_cloud() {
        return Some(Peer::Cloud { node: name, subnet: l.subnet, public_ip });
    }
    if b.kind == BackendKind::Wireguard {
        return Some(Peer::Wireguard { node: name, subnet: l.subnet, public_ip, public_key: other.wireguard_key? });
    }
    Some(if direct {
        Peer::HostGw { node: name, subnet: l.subnet, public_ip }
    } else {
        Peer::Vxlan { node: name, subnet: l.subnet, public_ip, vtep_mac: l.vtep_mac }
    })
}

/// Kernel settings the node needs: forwarding per family, and loose
/// reverse-path filtering (IPv4) on the uplink and the overlay device: while a
/// cluster migrates between backends, replies come back on another interface
/// than the request left by, and strict filtering (rp_filter=1) drops them.
/// Per-interface keys use sysctl.d's slash form, as names may contain dots.
pub fn sysctls(p: &PlanData) -> Vec<Sysctl> {
    let mut v = Vec::new();
    if p.ipv4.is_some() {
        v.push(Sysctl::set("net.ipv4.ip_forward", "1"));
        let v4_dev = p
            .vxlan_device(Family::V4)
            .map(|d| d.name)
            .or_else(|| p.tun_device().map(|t| t.name))
            .or_else(|| p.wireguard_device(Family::V4).map(|d| d.name));
        let connected = p.connected.iter().filter(|c| c.ip.addr().is_ipv4()).map(|c| c.interface.clone());
        for dev in std::iter::once(p.uplink.name.clone()).chain(connected).chain(v4_dev) {
            v.push(Sysctl::set(format!("net/ipv4/conf/{dev}/rp_filter"), "2"));
        }
        // flanneld's ICMP errors come from the TUN device's own address, which
        // the kernel drops as a martian source unless the device accepts it.
        if let Some(t) = p.tun_device() {
            v.push(Sysctl::set(format!("net/ipv4/conf/{}/accept_local", t.name), "1"));
        }
    }
    if p.ipv6.is_some() {
        v.push(Sysctl::set("net.ipv6.conf.all.forwarding", "1"));
        // A forwarding host ignores router advertisements under accept_ra=1,
        // so an uplink configured by SLAAC would lose its address and default
        // route when they expire; 2 keeps accepting them. An administrator's
        // 0 (or 2) stays as it is. (flanneld sets nothing global; forwarding
        // per device is not enough: IPv6 forwards by `all.forwarding` alone
        // before Linux 6.17's force_forwarding.)
        v.push(Sysctl {
            key: format!("net/ipv6/conf/{}/accept_ra", p.uplink.name),
            value: "2".into(),
            only_from: Some("1".into()),
        });
        // flanneld's own v6 VXLAN device takes no advertisements
        // (pkg/backend/vxlan/device.go).
        if let Some(d) = p.vxlan_device(Family::V6) {
            v.push(Sysctl::set(format!("net/ipv6/conf/{}/accept_ra", d.name), "0"));
        }
    }
    v
}
