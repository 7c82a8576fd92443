//! The backend section and the underlay defaults.

use super::{in_range, pos};
use crate::diag::{Reporter, suggest};
use crate::topology::schema::TopologyDoc;
use crate::topology::{Backend, BackendKind, DEFAULT_VNI, DEFAULT_VXLAN_PORT, RulesBackend, Traffic};

const MAX_VNI: u64 = 16_777_215;
/// Backends flannel has that flannel-gen does not build (yet).
const NOT_BUILT: &[&str] = &["udp", "ipip", "wireguard", "ipsec", "alloc", "extension", "tencent-vpc"];

pub fn backend(r: &mut Reporter, doc: &TopologyDoc) -> Option<Backend> {
    let b = &doc.backend.value;
    let name = b.kind.value.as_str();
    let kind = BackendKind::parse(name);
    if kind.is_none() {
        let msg = if NOT_BUILT.contains(&name) {
            format!("backend `{name}` is not supported yet; use {}", BackendKind::NAMES.join(" or "))
        } else {
            let hint = suggest(name, BackendKind::NAMES.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            format!("unknown backend `{name}`{hint}; expected {}", BackendKind::NAMES.join(" or "))
        };
        r.error(pos(&b.kind), "backend.type", msg);
    }
    // flanneld (pkg/backend/vxlan/vxlan.go) takes `VNI: 0` as VNI 0 (a
    // valid VNI, device flannel.0), and `Port: 0` as "not set": the kernel's
    // default port, 8472.
    let vni = match b.vni.as_ref() {
        Some(v) => in_range(r, v, "backend.vni", 0, MAX_VNI, |v| v as u32),
        None => Some(DEFAULT_VNI),
    };
    let port = match b.port.as_ref().filter(|v| v.value != 0) {
        Some(v) => in_range(r, v, "backend.port", 1, 65_535, |v| v as u16),
        None => Some(DEFAULT_VXLAN_PORT),
    };
    let direct_routing = b.direct_routing.as_ref().is_some_and(|d| d.value);
    if direct_routing && kind == Some(BackendKind::HostGw) {
        let at = b.direct_routing.as_ref().map(pos).unwrap_or_default();
        r.error(at, "backend.directRouting", "directRouting is a vxlan option; host-gw routes directly already");
    }
    for (v, key) in [(&b.gbp, "gbp"), (&b.learning, "learning"), (&b.tx_checksum_offload, "txChecksumOffload")] {
        if let (Some(v), Some(BackendKind::HostGw)) = (v, kind) {
            r.error(
                pos(v),
                format!("backend.{key}"),
                format!("`{key}` is a vxlan setting; host-gw has no VXLAN device"),
            );
        }
    }
    Some(Backend {
        kind: kind?,
        vni: vni?,
        port: port?,
        direct_routing,
        gbp: b.gbp.as_ref().is_some_and(|v| v.value),
        learning: b.learning.as_ref().is_some_and(|v| v.value),
        tx_checksum_offload: b.tx_checksum_offload.as_ref().is_none_or(|v| v.value),
    })
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
                r.error(
                    pos(t),
                    "trafficRules",
                    format!("unknown `{other}`{hint}; expected iptables, nftables or none"),
                );
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
