//! Importing flannel's own net-conf.json (the kube-flannel ConfigMap) so an
//! existing cluster can move over. flanneld matches its keys
//! case-insensitively (Go's encoding/json), so this does too.

use std::fmt::Write;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum NetConfError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("expected a JSON object")]
    NotAnObject,
    #[error("`{0}` is required")]
    Missing(&'static str),
    #[error("`{key}`: {why}")]
    Field { key: &'static str, why: String },
}

/// A key of `obj`, matched as Go's encoding/json does (case-insensitively).
fn get<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// A topology (version 1) from net-conf.json; nodes are left for the user to list.
pub fn topology_from_netconf(text: &str, cluster: &str) -> Result<String, NetConfError> {
    let v: Value = serde_json::from_str(text)?;
    let obj = v.as_object().ok_or(NetConfError::NotAnObject)?;
    let str_of = |key: &'static str| -> Result<Option<String>, NetConfError> {
        match get(obj, key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(NetConfError::Field { key, why: format!("expected a string, got {other}") }),
        }
    };
    let network = str_of("Network")?.ok_or(NetConfError::Missing("Network"))?;
    let mut out = String::new();
    let _ =
        writeln!(out, "# Imported from flannel's net-conf.json; list the nodes below, then run `flannel-gen lock`.");
    let _ = writeln!(out, "version: 1\ncluster: {cluster}\nnetwork: {network}");
    if let Some(n) = get(obj, "SubnetLen").and_then(Value::as_u64) {
        let _ = writeln!(out, "subnetLen: {n}");
    }
    for (key, name) in [("SubnetMin", "subnetMin"), ("SubnetMax", "subnetMax")] {
        if let Some(s) = str_of(key)? {
            let _ = writeln!(out, "{name}: {s}");
        }
    }
    let backend = get(obj, "Backend").and_then(Value::as_object);
    let kind = backend.and_then(|b| get(b, "Type")).and_then(Value::as_str).unwrap_or("udp").to_ascii_lowercase();
    let _ = writeln!(out, "backend:\n  type: {kind}");
    if let Some(b) = backend {
        for (key, name) in [("VNI", "vni"), ("Port", "port")] {
            if let Some(n) = get(b, key).and_then(Value::as_u64) {
                let _ = writeln!(out, "  {name}: {n}");
            }
        }
        if let Some(d) = get(b, "DirectRouting").and_then(Value::as_bool) {
            let _ = writeln!(out, "  directRouting: {d}");
        }
    }
    if get(obj, "EnableIPv6").and_then(Value::as_bool) == Some(true) {
        let _ = writeln!(out, "# net-conf.json enables IPv6; flannel-gen plans IPv4 only for now.");
    }
    let _ = writeln!(out, "nodes: []");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_flannel_configmap_imports() {
        let conf = r#"{ "Network": "10.244.0.0/16", "EnableNFTables": false, "Backend": { "Type": "vxlan", "vni": 4, "DirectRouting": true } }"#;
        let y = topology_from_netconf(conf, "prod").expect("imports");
        assert!(y.contains("network: 10.244.0.0/16\n"), "{y}");
        assert!(y.contains("backend:\n  type: vxlan\n  vni: 4\n  directRouting: true\n"), "{y}");
        assert!(y.ends_with("nodes: []\n"));
    }

    #[test]
    fn missing_network_is_an_error() {
        assert!(matches!(topology_from_netconf(r#"{"Backend": {}}"#, "c"), Err(NetConfError::Missing("Network"))));
        assert!(matches!(topology_from_netconf("[]", "c"), Err(NetConfError::NotAnObject)));
    }
}
