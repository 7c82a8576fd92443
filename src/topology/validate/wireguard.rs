//! The wireguard backend's keys: ports, keepalive, key file paths and mode,
//! and each node's public key. Like the cloud keys, they are refused where
//! they are written when the backend is another.

use foldhash::HashMap;

use super::in_range;
use crate::diag::{Pos, Reporter};
use crate::topology::schema::{S, TopologyDoc};
use crate::topology::{BackendKind, DEFAULT_WG_PORT_V6, WireguardBackend};
use crate::wireguard::key::Key;

/// flanneld's modes (pkg/backend/wireguard/wireguard.go); flannel-gen
/// builds its default, `separate`.
const MODES: &[&str] = &["separate", "auto", "ipv4", "ipv6"];

/// A path a node's files may be named by in a networkd file: absolute, and
/// printable without spaces.
fn is_node_path(s: &str) -> bool {
    s.starts_with('/') && s.len() < 4096 && s.bytes().all(|b| b.is_ascii_graphic())
}

/// The backend's wireguard settings; `None` for another backend (whose
/// wireguard keys are errors).
pub fn backend(r: &mut Reporter, doc: &TopologyDoc, kind: Option<BackendKind>) -> Option<WireguardBackend> {
    let b = &doc.backend.value;
    if kind != Some(BackendKind::Wireguard) {
        let ints = [
            (b.port_v6.as_ref().map(|v| v.pos), "portV6"),
            (b.persistent_keepalive.as_ref().map(|v| v.pos), "persistentKeepalive"),
        ];
        let strs = [(&b.key_file, "keyFile"), (&b.psk_file, "pskFile"), (&b.mode, "mode")];
        let at = ints.into_iter().chain(strs.into_iter().map(|(v, k)| (v.as_ref().map(|v| v.pos), k)));
        for (pos, key) in at {
            if let Some(pos) = pos {
                r.error(pos, format!("backend.{key}"), format!("`{key}` is a setting of the wireguard backend"));
            }
        }
        return None;
    }
    let before = r.count();
    let port_v6 = match b.port_v6.as_ref() {
        Some(v) => in_range(r, v, "backend.portV6", 1, 65_535, |v| v as u16),
        None => Some(DEFAULT_WG_PORT_V6),
    };
    let persistent_keepalive = match b.persistent_keepalive.as_ref() {
        Some(v) => in_range(r, v, "backend.persistentKeepalive", 0, 65_535, |v| v as u16),
        None => Some(0),
    };
    let key_file = path(r, &b.key_file, "keyFile").unwrap_or_else(|| crate::wireguard::DEFAULT_KEY_FILE.to_string());
    let psk_file = path(r, &b.psk_file, "pskFile");
    mode(r, &b.mode);
    let ok = r.count() == before;
    ok.then_some(WireguardBackend {
        port_v6: port_v6?,
        persistent_keepalive: persistent_keepalive?,
        key_file,
        psk_file,
    })
}

fn path(r: &mut Reporter, v: &Option<S<String>>, key: &str) -> Option<String> {
    let v = v.as_ref()?;
    if !is_node_path(&v.value) {
        let m = format!("`{}` is not an absolute path on the node (no spaces)", v.value);
        r.error(v.pos, format!("backend.{key}"), m);
        return None;
    }
    Some(v.value.clone())
}

fn mode(r: &mut Reporter, v: &Option<S<String>>) {
    let Some(v) = v else { return };
    match v.value.as_str() {
        "separate" => {}
        m if MODES.contains(&m) => r.error(
            v.pos,
            "backend.mode",
            format!(
                "mode `{m}` (one device for both families) is not supported yet; use `separate`, flanneld's default"
            ),
        ),
        m => {
            let hint = crate::diag::suggest(m, MODES.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            r.error(v.pos, "backend.mode", format!("unknown mode `{m}`{hint}; expected {}", MODES.join(", ")));
        }
    }
}

/// Each node's public key as the topology writes it, by node index: a bad
/// or shared key is an error where it is written.
pub fn nodes(r: &mut Reporter, doc: &TopologyDoc, kind: Option<BackendKind>) -> Vec<Option<Key>> {
    let mut seen: HashMap<Key, (Pos, &str)> = HashMap::default();
    let mut out = Vec::with_capacity(doc.nodes.value.len());
    for (i, n) in doc.nodes.value.iter().enumerate() {
        let Some(v) = &n.value.wireguard_key else {
            out.push(None);
            continue;
        };
        let field = format!("nodes[{i}].wireguardKey");
        if kind != Some(BackendKind::Wireguard) {
            r.error(v.pos, field, "`wireguardKey` is a setting of the wireguard backend");
            out.push(None);
            continue;
        }
        match v.value.parse::<Key>() {
            Ok(k) => {
                let name = n.value.name.value.as_str();
                if let Some((_, first)) = seen.insert(k, (v.pos, name)) {
                    r.error(v.pos, field, format!("node `{first}` has this key too: each node makes its own"));
                }
                out.push(Some(k));
            }
            Err(e) => {
                r.error(v.pos, field, format!("not a WireGuard public key: {e}"));
                out.push(None);
            }
        }
    }
    out
}
