//! The backend section and the underlay defaults.

use super::{in_range, pos};
use crate::diag::{Reporter, suggest};
use crate::topology::schema::TopologyDoc;
use crate::topology::{Backend, BackendKind, DEFAULT_VNI, DEFAULT_VXLAN_PORT};

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
    // flanneld: VNI 0 and Port 0 mean the defaults (the kernel's, for the port).
    let vni = match b.vni.as_ref().filter(|v| v.value != 0) {
        Some(v) => in_range(r, v, "backend.vni", 1, MAX_VNI, |v| v as u32),
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
    Some(Backend { kind: kind?, vni: vni?, port: port?, direct_routing })
}
