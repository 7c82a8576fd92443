//! The backend section and the underlay defaults.

use super::in_range;
use crate::diag::{Reporter, suggest};
use crate::topology::schema::TopologyDoc;
use crate::topology::{
    Backend, BackendKind, DEFAULT_UDP_PORT, DEFAULT_VNI, DEFAULT_VXLAN_PORT, DEFAULT_WG_PORT, RouteStyle, RulesBackend,
    Traffic,
};

const MAX_VNI: u64 = 16_777_215;
/// Backends flannel has that flannel-gen does not build (yet).
const NOT_BUILT: &[&str] = &["ipip", "ipsec", "alloc", "extension", "tencent-vpc", "ali-vpc"];

pub fn backend(r: &mut Reporter, doc: &TopologyDoc) -> Option<Backend> {
    let b = &doc.backend.value;
    let name = b.kind.value.as_str();
    let kind = BackendKind::parse(name);
    if kind.is_none() {
        let msg = if NOT_BUILT.contains(&name) {
            format!("backend `{name}` is not supported yet; use {}", BackendKind::names_text())
        } else {
            let hint = suggest(name, BackendKind::NAMES.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            format!("unknown backend `{name}`{hint}; expected {}", BackendKind::names_text())
        };
        r.error(b.kind.pos, "backend.type", msg);
    }
    // flanneld (pkg/backend/vxlan/vxlan.go) takes `VNI: 0` as VNI 0 (a
    // valid VNI, device flannel.0), and `Port: 0` as "not set": the kernel's
    // default port, 8472 (udp: flanneld's 8285).
    let vni = match b.vni.as_ref() {
        Some(v) => in_range(r, v, "backend.vni", 0, MAX_VNI, |v| v as u32),
        None => Some(DEFAULT_VNI),
    };
    let default_port = match kind {
        Some(BackendKind::Udp) => DEFAULT_UDP_PORT,
        Some(BackendKind::Wireguard) => DEFAULT_WG_PORT,
        _ => DEFAULT_VXLAN_PORT,
    };
    let port = match b.port.as_ref().filter(|v| v.value != 0) {
        Some(v) => in_range(r, v, "backend.port", 1, 65_535, |v| v as u16),
        None => Some(default_port),
    };
    vxlan_only(r, doc, kind);
    let direct_routing = b.direct_routing.as_ref().is_some_and(|d| d.value);
    let route_style = route_style(r, doc, kind);
    Some(Backend {
        kind: kind?,
        vni: vni?,
        port: port?,
        direct_routing,
        gbp: b.gbp.as_ref().is_some_and(|v| v.value),
        learning: b.learning.as_ref().is_some_and(|v| v.value),
        tx_checksum_offload: b.tx_checksum_offload.as_ref().is_none_or(|v| v.value),
        route_style: route_style?,
        cloud: None,
        wireguard: None,
    })
}

/// backend.routeStyle: nexthop unless told otherwise. A nexthop id holds
/// the subnet's index in the network, so that index must fit in 24 bits.
fn route_style(r: &mut Reporter, doc: &TopologyDoc, kind: Option<BackendKind>) -> Option<RouteStyle> {
    let Some(v) = doc.backend.value.route_style.as_ref() else { return Some(RouteStyle::default()) };
    let Some(style) = RouteStyle::parse(&v.value) else {
        let hint = suggest(&v.value, RouteStyle::NAMES).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
        r.error(
            v.pos,
            "backend.routeStyle",
            format!("unknown route style `{}`{hint}; expected plain or nexthop", v.value),
        );
        return None;
    };
    if let Some(k) = kind.filter(|k| matches!(k, BackendKind::Udp | BackendKind::Wireguard)) {
        let m = format!("`routeStyle` does not apply to {}: its one route per family has no gateway", k.as_str());
        r.error(v.pos, "backend.routeStyle", m);
    }
    if let Some(k) = kind.filter(|k| k.is_cloud()) {
        let m = format!("`routeStyle` does not apply to {}: the cloud's route table carries the routes", k.as_str());
        r.error(v.pos, "backend.routeStyle", m);
    }
    Some(style)
}

/// Keys only vxlan reads, refused for the other backends.
fn vxlan_only(r: &mut Reporter, doc: &TopologyDoc, kind: Option<BackendKind>) {
    let b = &doc.backend.value;
    let pos_of = |v: &Option<crate::topology::schema::S<bool>>| v.as_ref().map(|v| v.pos);
    let (why, keys) = match kind {
        Some(BackendKind::HostGw) => {
            if let Some(v) = b.direct_routing.as_ref().filter(|v| v.value) {
                r.error(
                    v.pos,
                    "backend.directRouting",
                    "directRouting is a vxlan option; host-gw routes directly already",
                );
            }
            ("host-gw has no VXLAN device", vec![])
        }
        Some(BackendKind::Udp) => (
            "udp carries packets in UDP through a TUN device",
            vec![(b.vni.as_ref().map(|v| v.pos), "vni"), (pos_of(&b.direct_routing), "directRouting")],
        ),
        Some(BackendKind::Wireguard) => (
            "wireguard carries packets encrypted through its own device",
            vec![(b.vni.as_ref().map(|v| v.pos), "vni"), (pos_of(&b.direct_routing), "directRouting")],
        ),
        Some(k) if k.is_cloud() => (
            "the cloud's route table carries pod traffic, without a device",
            vec![
                (b.vni.as_ref().map(|v| v.pos), "vni"),
                (b.port.as_ref().map(|v| v.pos), "port"),
                (pos_of(&b.direct_routing), "directRouting"),
            ],
        ),
        _ => return,
    };
    let common = [
        (pos_of(&b.gbp), "gbp"),
        (pos_of(&b.learning), "learning"),
        (pos_of(&b.tx_checksum_offload), "txChecksumOffload"),
    ];
    for (at, key) in keys.into_iter().chain(common) {
        if let Some(at) = at {
            r.error(at, format!("backend.{key}"), format!("`{key}` is a vxlan setting; {why}"));
        }
    }
}

/// trafficRules, forwardRules and ipMasqRandomFully, with flanneld's defaults.
pub fn traffic(r: &mut Reporter, doc: &TopologyDoc) -> Option<Traffic> {
    let rules = match doc.traffic_rules.as_ref() {
        None => Some(RulesBackend::Iptables),
        Some(t) => match t.value.as_str() {
            "iptables" => Some(RulesBackend::Iptables),
            "nftables" => Some(RulesBackend::Nftables),
            "none" => None,
            other => {
                let hint = suggest(other, ["iptables", "nftables", "none"])
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                r.error(t.pos, "trafficRules", format!("unknown `{other}`{hint}; expected iptables, nftables or none"));
                return None;
            }
        },
    };
    Some(Traffic {
        rules,
        forward: doc.forward_rules.as_ref().is_none_or(|v| v.value),
        random_fully: doc.ip_masq_random_fully.as_ref().is_none_or(|v| v.value),
    })
}
