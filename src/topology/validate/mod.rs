//! Semantic validation: a parsed [`TopologyDoc`] becomes a [`Cluster`], or
//! every rule it breaks is reported at the value that breaks it.

mod backend;
pub mod cloud;
mod network;
mod nodes;
mod underlay;
mod wireguard;

use std::path::Path;

use super::schema::{S, TopologyDoc};
use super::{BackendKind, Cluster, DEFAULT_INTERFACE, DEFAULT_MTU};
use crate::diag::{Diagnostics, Reporter};
use crate::netaddr::{PerFamily, SubnetPool};

/// Every IPv4 host must accept 576-byte datagrams (RFC 791), every IPv6 link
/// 1280 (RFC 8200); pods get no less.
pub const MIN_POD_MTU_V4: u64 = 576;
pub const MIN_POD_MTU_V6: u64 = 1280;
const MAX_MTU: u64 = 65_535;

/// DNS-1123 label: also a directory name, so nothing can escape `--out`.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A Linux interface name (IFNAMSIZ - 1 bytes, no `/`, `:` or whitespace).
pub fn is_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && s.bytes().all(|c| c.is_ascii_graphic() && c != b'/' && c != b':')
}

/// Names of the devices flannel-gen (like flanneld) creates: `flannel.<vni>`,
/// `flannel-v6.<vni>`, `flannel0`, `flannel-wg`, `flannel-wg-v6`. None of them can be an underlay.
pub fn is_overlay_device_name(name: &str) -> bool {
    let numbered = |prefix: &str| {
        name.strip_prefix(prefix).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    numbered("flannel.")
        || numbered("flannel-v6.")
        || [super::UDP_DEVICE, super::WG_DEVICE, super::WG_DEVICE_V6].contains(&name)
}

/// Why `name` cannot be a node's underlay interface, if it cannot.
pub fn interface_refusal(name: &str) -> Option<String> {
    if !is_ifname(name) {
        Some(format!("`{name}` is not a valid interface name (1-15 characters, no `/`, `:` or spaces)"))
    } else if name == "lo" {
        Some("`lo` cannot carry traffic between nodes".into())
    } else if is_overlay_device_name(name) {
        Some(format!(
            "`{name}` is the device flannel-gen creates for the overlay; the underlay must be another interface"
        ))
    } else {
        None
    }
}

fn in_range<T: Copy>(r: &mut Reporter, v: &S<u64>, field: &str, lo: u64, hi: u64, ok: impl Fn(u64) -> T) -> Option<T> {
    if v.value < lo || v.value > hi {
        r.error(v.pos, field, format!("{} is outside {lo}..={hi}", v.value));
        None
    } else {
        Some(ok(v.value))
    }
}

/// Cluster-wide settings that nodes inherit, and what an MTU must leave room for.
pub struct Defaults {
    pub interface: String,
    pub mtu: u32,
    pub kind: Option<BackendKind>,
    /// The smallest pod MTU the enabled families allow.
    pub min_pod_mtu: u64,
}

/// An underlay MTU that leaves pods enough room after the backend's overhead.
fn mtu(r: &mut Reporter, field: &str, m: &S<u64>, d: &Defaults) -> Option<u32> {
    let overhead = d.kind.map_or(0, |k| u64::from(k.overhead()));
    let lo = d.min_pod_mtu + overhead;
    if m.value < lo {
        let kind = d.kind.map_or("", |k| k.as_str());
        r.error(
            m.pos,
            field,
            format!(
                "{} is too small: {kind} takes {overhead} bytes and pods need at least {}, so the underlay MTU must be >= {lo}",
                m.value, d.min_pod_mtu
            ),
        );
        return None;
    }
    in_range(r, m, field, lo, MAX_MTU, |v| v as u32)
}

fn defaults(r: &mut Reporter, doc: &TopologyDoc, kind: Option<BackendKind>, pools: &PerFamily<SubnetPool>) -> Defaults {
    let min_pod_mtu = if pools.v6.is_some() { MIN_POD_MTU_V6 } else { MIN_POD_MTU_V4 };
    let mut d = Defaults { interface: DEFAULT_INTERFACE.into(), mtu: DEFAULT_MTU, kind, min_pod_mtu };
    let Some(defs) = doc.defaults.as_ref().map(|d| &d.value) else { return d };
    if let Some(i) = &defs.interface {
        if let Some(why) = interface_refusal(&i.value) {
            r.error(i.pos, "defaults.interface", why);
        }
        d.interface = i.value.clone();
    }
    if let Some(m) = &defs.mtu {
        d.mtu = mtu(r, "defaults.mtu", m, &d).unwrap_or(DEFAULT_MTU);
    }
    d
}

pub fn validate(path: &Path, doc: &TopologyDoc) -> Result<Cluster, Diagnostics> {
    let mut r = Reporter::new(path);
    if doc.version.value != 1 {
        let m = format!("unsupported version {}; this flannel-gen reads version 1", doc.version.value);
        r.error(doc.version.pos, "version", m);
    }
    let cluster = &doc.cluster;
    let cluster_ok = !cluster.value.is_empty()
        && cluster.value.len() <= 63
        && cluster.value.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if !cluster_ok {
        r.error(cluster.pos, "cluster", format!("`{}` must be 1-63 characters of [a-z0-9-]", cluster.value));
    }
    let pools = network::pools(&mut r, doc);
    let mut backend = backend::backend(&mut r, doc);
    let traffic = backend::traffic(&mut r, doc);
    let kind = BackendKind::parse(&doc.backend.value.kind.value);
    let d = defaults(&mut r, doc, kind, &pools);
    let mut nodes = nodes::nodes(&mut r, doc, &d, &pools);
    let cloud = cloud::backend(&mut r, doc, kind);
    let wireguard = wireguard::backend(&mut r, doc, kind);
    if let Some(b) = backend.as_mut() {
        b.cloud = cloud;
        b.wireguard = wireguard;
    }
    let mut keys = wireguard::nodes(&mut r, doc, kind);
    let mut instances = cloud::nodes(&mut r, doc, kind);
    for n in &mut nodes {
        n.cloud = instances.get_mut(n.index).and_then(Option::take);
        n.wireguard_key = keys.get_mut(n.index).and_then(Option::take);
    }
    underlay::capacity(&mut r, doc, &pools, nodes.len());
    if backend.as_ref().is_some_and(|b| b.kind == BackendKind::HostGw) {
        underlay::check_host_gw(&mut r, &nodes);
    }
    if let Some(b) = &backend {
        network::nexthop_ids(&mut r, doc, &pools, b.route_style);
    }
    if let (Some(BackendKind::Udp), Some(v6)) = (kind, &doc.ipv6_network) {
        // pkg/backend/udp: one TUN device and an IPv4 socket; no IPv6 network.
        r.error(v6.pos, "ipv6Network", "flanneld's udp backend carries IPv4 only; use vxlan or host-gw for IPv6");
    }
    if let (Some(k), Some(v6)) = (kind.filter(|k| k.is_cloud()), &doc.ipv6_network) {
        // backend/awsvpc writes DestinationCidrBlock, backend/gce an IPv4 destRange.
        let m = format!("flanneld's {} backend routes IPv4 only; use vxlan or host-gw for IPv6", k.as_str());
        r.error(v6.pos, "ipv6Network", m);
    }
    match (backend, traffic) {
        (Some(backend), Some(traffic)) if !r.has_errors() => Ok(Cluster {
            source: path.to_path_buf(),
            name: cluster.value.clone(),
            pools,
            ip_masq: doc.ip_masq.as_ref().is_some_and(|m| m.value),
            blackhole_route: doc.ip_blackhole_route.as_ref().is_some_and(|m| m.value),
            traffic,
            backend,
            nodes,
        }),
        _ => Err(r.finish()),
    }
}

#[cfg(test)]
mod tests;
