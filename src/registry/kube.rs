//! flanneld's kube subnet manager (pkg/subnet/kube/): a node's lease lives
//! in its Node object — the subnet in `spec.podCIDR(s)`, the attributes in
//! annotations under a prefix (default `flannel.alpha.coreos.com`,
//! pkg/subnet/kube/annotations.go). Read from `kubectl get nodes -o json`;
//! published as merge patches in the bytes flanneld writes.

use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::{Map, Value, json};

use super::format::{Bad, data_json, decode_data};
use super::{BackendData, Lease, LeaseAttrs, Origin, Published};
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::json_path::locate;

/// flanneld's default `--kube-annotation-prefix`.
pub const DEFAULT_PREFIX: &str = "flannel.alpha.coreos.com";

/// Annotation names under a prefix, built as flanneld's `newAnnotations` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotations {
    pub kube_subnet_manager: String,
    pub backend_type: String,
    pub backend_data: String,
    pub backend_v6_data: String,
    pub public_ip: String,
    pub public_ipv6: String,
    /// Set by an operator to make flanneld publish another address (a node
    /// behind NAT); flanneld copies it into `public-ip` when it runs.
    pub public_ip_overwrite: String,
    pub public_ipv6_overwrite: String,
}

impl Annotations {
    pub fn new(prefix: &str) -> Result<Annotations, String> {
        let slashes = prefix.matches('/').count();
        let mut p = prefix.to_string();
        if slashes > 1 {
            return Err(format!("annotation prefix `{prefix}` may contain at most one `/`"));
        }
        if slashes == 0 {
            p.push('/');
        }
        if !p.ends_with('/') && !p.ends_with('-') {
            p.push('-');
        }
        let (domain, rest) = p.split_once('/').unwrap_or((&p, ""));
        let label = |s: &str| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
        };
        if !domain.contains('.') || !domain.split('.').all(label) || !(rest.is_empty() || label(rest)) {
            return Err(format!("annotation prefix `{prefix}` must look like fqdn/[0-9a-z-_]*"));
        }
        let n = |s: &str| format!("{p}{s}");
        Ok(Annotations {
            kube_subnet_manager: n("kube-subnet-manager"),
            backend_type: n("backend-type"),
            backend_data: n("backend-data"),
            backend_v6_data: n("backend-v6-data"),
            public_ip: n("public-ip"),
            public_ipv6: n("public-ipv6"),
            public_ip_overwrite: n("public-ip-overwrite"),
            public_ipv6_overwrite: n("public-ipv6-overwrite"),
        })
    }
}

/// `overwrite` when the node carries it (non-empty), else `plain`.
fn overwritten<'a>(get: &dyn Fn(&str) -> Option<&'a str>, overwrite: &'a str, plain: &'a str) -> &'a str {
    if get(overwrite).is_some_and(|v| !v.is_empty()) { overwrite } else { plain }
}

/// What reading the Node list found.
#[derive(Debug, Default)]
pub struct Read {
    pub leases: Vec<Lease>,
    /// Nodes flanneld would not treat as leases, and why.
    pub skipped: Vec<String>,
}

/// Reads `kubectl get nodes -o json` (a List, or one Node).
pub fn read(file: &Path, text: &str, a: &Annotations) -> Result<Read, Diagnostics> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        Diagnostics::one(file, Pos::new(e.line() as u64, e.column() as u64), "", format!("not JSON: {e}"))
    })?;
    let (items, base): (Vec<&Value>, &str) = match v.get("items").and_then(Value::as_array) {
        Some(items) => (items.iter().collect(), "items"),
        None if v.get("kind").and_then(Value::as_str) == Some("Node") => (vec![&v], ""),
        None => {
            return Err(Diagnostics::one(
                file,
                Pos::new(1, 1),
                "",
                "expected `kubectl get nodes -o json` output (a List with `items`, or a Node)",
            ));
        }
    };
    let mut out = Read::default();
    let mut problems = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = if base.is_empty() { String::new() } else { format!("{base}[{i}]") };
        let at = NodeAt { file, text, path };
        match node(&at, item, a) {
            Ok(Ok(l)) => out.leases.push(l),
            Ok(Err(why)) => out.skipped.push(why),
            Err(mut d) => problems.append(&mut d),
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(Diagnostics(problems)) }
}

struct NodeAt<'a> {
    file: &'a Path,
    text: &'a str,
    path: String,
}

impl NodeAt<'_> {
    fn field(&self, rest: &str) -> String {
        if self.path.is_empty() { rest.to_string() } else { format!("{}.{rest}", self.path) }
    }

    /// A problem at `rest` (a path below the node), located in the file.
    fn fail(&self, rest: &str, message: String) -> Diagnostic {
        let pos = locate(self.text, &self.field(rest)).unwrap_or(Pos::FILE);
        Diagnostic::new(self.file, pos, self.field(rest), message)
    }
}

fn str_at<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v str> {
    keys.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// A Node's lease; `Ok(Err(why))` for a node flanneld does not route to.
fn node(at: &NodeAt, item: &Value, a: &Annotations) -> Result<Result<Lease, String>, Vec<Diagnostic>> {
    let Some(name) = str_at(item, &["metadata", "name"]) else {
        return Err(vec![at.fail("metadata", "a Node without `metadata.name`".into())]);
    };
    let empty = Map::new();
    let ann = item.pointer("/metadata/annotations").and_then(Value::as_object).unwrap_or(&empty);
    let get = |k: &str| ann.get(k).and_then(Value::as_str);
    let cidrs = pod_cidrs(item);
    if cidrs.is_empty() {
        return Ok(Err(format!("Node {name}: no spec.podCIDR yet; left out")));
    }
    if get(&a.kube_subnet_manager) != Some("true") {
        return Ok(Err(format!(
            "Node {name}: no `{}: \"true\"` (flanneld has not run there); left out",
            a.kube_subnet_manager
        )));
    }
    let mut bad = Vec::new();
    let subnets = subnets_of(&cidrs).map_err(|m| vec![at.fail("spec", m)])?;
    let ann_fail = |key: &str, m: String| at.fail(&format!("metadata.annotations[\"{key}\"]"), m);
    // The overwrite wins, as in flanneld's AcquireLease (pkg/subnet/kube/kube.go),
    // which copies it into `public-ip` the next time it runs.
    let (v4_key, v6_key) = (
        overwritten(&get, &a.public_ip_overwrite, &a.public_ip),
        overwritten(&get, &a.public_ipv6_overwrite, &a.public_ipv6),
    );
    let public_ip = match get(v4_key) {
        None => Ipv4Addr::UNSPECIFIED,
        Some(s) => crate::netaddr::parse_ipv4(s).unwrap_or_else(|e| {
            bad.push(ann_fail(v4_key, e.to_string()));
            Ipv4Addr::UNSPECIFIED
        }),
    };
    let public_ipv6 = get(v6_key)
        .and_then(|s| s.parse().map_err(|_| bad.push(ann_fail(v6_key, format!("`{s}` is not an IPv6 address")))).ok());
    let backend_type = get(&a.backend_type).unwrap_or_default().to_string();
    let mut data = |key: &str| -> Option<BackendData> {
        let text = get(key)?;
        if !carries_data(&backend_type) {
            return None;
        }
        let v: Value =
            serde_json::from_str(text).map_err(|e| bad.push(ann_fail(key, format!("not JSON: {e}")))).ok()?;
        decode_data(&backend_type, &v).map_err(|b| bad.extend(b.iter().map(|b: &Bad| ann_fail(key, inner(b))))).ok()?
    };
    let backend_data = data(&a.backend_data);
    let backend_v6_data = data(&a.backend_v6_data);
    if !bad.is_empty() {
        return Err(bad);
    }
    let attrs = LeaseAttrs { public_ip, public_ipv6, backend_type, backend_data, backend_v6_data };
    let origin = Origin::Kube { file: at.file.to_path_buf(), node: name.to_string() };
    Ok(Ok(Lease { subnet: subnets.0, subnet6: subnets.1, attrs, origin, name: Some(name.to_string()) }))
}

/// The backends whose leases carry per-family data flanneld reads.
fn carries_data(backend_type: &str) -> bool {
    matches!(backend_type, "vxlan" | "wireguard")
}

fn inner(b: &Bad) -> String {
    if b.path.is_empty() { b.message.clone() } else { format!("{}: {}", b.path, b.message) }
}

fn pod_cidrs(item: &Value) -> Vec<String> {
    let list: Vec<String> = item
        .pointer("/spec/podCIDRs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if !list.is_empty() {
        return list;
    }
    str_at(item, &["spec", "podCIDR"]).filter(|s| !s.is_empty()).map(|s| vec![s.to_string()]).unwrap_or_default()
}

/// podCIDRs as flanneld reads them: at most two, one per family.
fn subnets_of(cidrs: &[String]) -> Result<(Option<Ipv4Net>, Option<Ipv6Net>), String> {
    if cidrs.len() > 2 {
        return Err("pod CIDRs should be IPv4, IPv6 or one of each (flanneld refuses more)".into());
    }
    let mut out = (None, None);
    for c in cidrs {
        // Kubernetes stores the network; flanneld's net.ParseCIDR masks host bits.
        let net = crate::netaddr::parse_cidr(c, true).map_err(|e| e.to_string())?.trunc();
        match net {
            IpNet::V4(n) => out.0 = Some(n),
            IpNet::V6(n) => out.1 = Some(n),
        }
    }
    Ok(out)
}

/// What `publish kube` writes besides flanneld's annotations.
#[derive(Debug, Clone, Copy)]
pub struct KubeOptions {
    /// Also `spec.podCIDR(s)`. flanneld never writes them (it reads them and
    /// fails "pod cidr not assigned"): only for clusters whose
    /// controller-manager does not allocate node CIDRs.
    pub pod_cidr: bool,
    /// The `NetworkUnavailable=False` condition (`Reason: FlannelIsUp`) that
    /// flanneld's CompleteLease sets (its --set-node-network-unavailable, on by default).
    pub network_available: bool,
}

/// flanneld's condition (pkg/subnet/kube/kube.go, CompleteLease), with both
/// times given by the caller (the script fills in the time it runs).
pub fn condition(now: &str) -> Value {
    json!({"status": {"conditions": [{
        "type": "NetworkUnavailable",
        "status": "False",
        "reason": "FlannelIsUp",
        "message": "Flannel is running on this node",
        "lastTransitionTime": now,
        "lastHeartbeatTime": now,
    }]}})
}

/// A merge patch giving a Node what flanneld's `AcquireLease` writes
/// (pkg/subnet/kube/kube.go): the annotations; the pod CIDRs only when asked.
pub fn patch(p: &Published, a: &Annotations, o: KubeOptions) -> Value {
    let at = &p.attrs;
    let vxlan = at.backend_type == "vxlan";
    let data = |d: &Option<BackendData>| d.as_ref().map_or_else(|| "null".to_string(), data_json);
    let mut ann = Map::new();
    ann.insert(a.backend_type.clone(), json!(at.backend_type));
    // flanneld writes the IPv4 side when it has vxlan data, or for any other
    // backend; the IPv6 side of vxlan and wireguard only with their data.
    if !vxlan || at.backend_data.is_some() {
        ann.insert(a.backend_data.clone(), json!(data(&at.backend_data)));
        ann.insert(a.public_ip.clone(), json!(at.public_ip.to_string()));
    }
    if let Some(ip6) = at.public_ipv6.filter(|_| !carries_data(&at.backend_type) || at.backend_v6_data.is_some()) {
        ann.insert(a.backend_v6_data.clone(), json!(data(&at.backend_v6_data)));
        ann.insert(a.public_ipv6.clone(), json!(ip6.to_string()));
    }
    ann.insert(a.kube_subnet_manager.clone(), json!("true"));
    let mut patch = json!({ "metadata": { "annotations": ann } });
    if o.pod_cidr {
        let cidrs: Vec<String> =
            p.subnet.map(|s| s.to_string()).into_iter().chain(p.subnet6.map(|s| s.to_string())).collect();
        patch["spec"] = json!({ "podCIDR": cidrs.first(), "podCIDRs": cidrs });
    }
    patch
}

/// `sh` single-quoting.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The placeholder the script replaces with the time it runs.
const NOW: &str = "@NOW@";

/// A script of `kubectl patch` commands: per node the annotations (and pod
/// CIDRs when asked), then the condition on the status subresource, as a
/// strategic merge (conditions merge by type, as flanneld's PatchStatus does).
pub fn script(cluster: &str, nodes: &[Published], a: &Annotations, o: KubeOptions) -> String {
    let mut out = format!(
        "#!/bin/sh\n# flannel-gen publish kube: cluster {cluster}, {} node(s), as flanneld's kube subnet manager\n\
         # annotates them (pkg/subnet/kube/kube.go). Kubernetes sets spec.podCIDR only while it is empty.\nset -eu\n",
        nodes.len()
    );
    if o.network_available {
        out.push_str("now=$(date -u +%Y-%m-%dT%H:%M:%SZ)\n");
    }
    let condition = serde_json::to_string(&condition(NOW)).unwrap_or_default();
    // The time goes in between two single-quoted halves, in double quotes.
    let condition = quote(&condition).replace(NOW, "'\"$now\"'");
    for p in nodes {
        let body = serde_json::to_string(&patch(p, a, o)).unwrap_or_default();
        out.push_str(&format!("kubectl patch node {} --type=merge -p {}\n", quote(&p.node), quote(&body)));
        if o.network_available {
            out.push_str(&format!(
                "kubectl patch node {} --subresource=status --type=strategic -p {condition}\n",
                quote(&p.node)
            ));
        }
    }
    out
}

/// The same as partial Node objects in a List (`kubectl apply --server-side
/// -f`). Apply does not write the status subresource, so the condition is
/// the script's alone.
pub fn list(nodes: &[Published], a: &Annotations, o: KubeOptions) -> String {
    let items: Vec<Value> = nodes
        .iter()
        .map(|p| {
            let mut n = patch(p, a, o);
            n["apiVersion"] = json!("v1");
            n["kind"] = json!("Node");
            n["metadata"]["name"] = json!(p.node);
            n
        })
        .collect();
    let doc = json!({ "apiVersion": "v1", "kind": "List", "items": items });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}
