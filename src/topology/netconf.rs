//! Importing flannel's own net-conf.json (the kube-flannel ConfigMap, or the
//! etcd `<prefix>/config` key) as a topology, read the way flanneld reads it
//! (pkg/subnet/config.go, pkg/backend/*): keys matched case-insensitively
//! (Go's encoding/json), `SubnetLen: 0` and `Port: 0` meaning "unset", a
//! Network with host bits masked, a value of the wrong type fatal. What
//! flanneld honours is honoured or refused — never dropped: an unknown key is
//! a located error too. `ipMasq` is flanneld's `--ip-masq` flag, not a
//! net-conf key, so the caller says it.

use std::fmt::Write;
use std::path::Path;

use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::json_path::locate;
use crate::netaddr::{self, Family};

/// A topology skeleton and what the import had to say about it.
#[derive(Debug)]
pub struct Imported {
    pub yaml: String,
    pub warnings: Vec<String>,
}

const TOP_KEYS: &[&str] = &[
    "EnableIPv4",
    "EnableIPv6",
    "EnableNFTables",
    "Network",
    "IPv6Network",
    "SubnetMin",
    "SubnetMax",
    "IPv6SubnetMin",
    "IPv6SubnetMax",
    "SubnetLen",
    "IPv6SubnetLen",
    "Backend",
];
const VXLAN_KEYS: &[&str] = &["Type", "VNI", "Port", "MTU", "GBP", "Learning", "DirectRouting"];
const HOSTGW_KEYS: &[&str] = &["Type"];

/// Reads a JSON object's fields the way Go does, and collects located problems.
struct Reader<'a> {
    file: &'a Path,
    text: &'a str,
    problems: Vec<Diagnostic>,
    warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    fn fail(&mut self, path: &str, message: impl Into<String>) {
        let pos = locate(self.text, path).unwrap_or(Pos::FILE);
        self.problems.push(Diagnostic::new(self.file, pos, path, message));
    }

    /// The value of `key`: the exact spelling first, then any case, as Go matches.
    fn field<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<(&'v str, &'v Value)> {
        obj.get_key_value(key)
            .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
            .map(|(k, v)| (k.as_str(), v))
    }

    fn path(prefix: &str, key: &str) -> String {
        if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
    }

    /// Keys flanneld does not read: refused, so nothing is silently dropped.
    fn unknown(&mut self, obj: &Map<String, Value>, prefix: &str, known: &[&str]) {
        for k in obj.keys() {
            if !known.iter().any(|n| n.eq_ignore_ascii_case(k)) {
                let hint = crate::diag::suggest(k, known.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                self.fail(&Self::path(prefix, k), format!("`{k}` is not a key flanneld reads here{hint}; remove it"));
            }
        }
    }

    fn typed<T>(
        &mut self,
        obj: &Map<String, Value>,
        prefix: &str,
        key: &str,
        what: &str,
        f: impl Fn(&Value) -> Option<T>,
    ) -> Option<T> {
        let (k, v) = Self::field(obj, key)?;
        if v.is_null() {
            return None;
        }
        let got = f(v);
        if got.is_none() {
            self.fail(&Self::path(prefix, k), format!("expected {what}, got {v} (flanneld refuses this config)"));
        }
        got
    }

    fn string(&mut self, obj: &Map<String, Value>, prefix: &str, key: &str) -> Option<String> {
        self.typed(obj, prefix, key, "a string", |v| v.as_str().map(str::to_string))
    }

    fn uint(&mut self, obj: &Map<String, Value>, prefix: &str, key: &str) -> Option<u64> {
        self.typed(obj, prefix, key, "a non-negative whole number", Value::as_u64)
    }

    fn boolean(&mut self, obj: &Map<String, Value>, prefix: &str, key: &str) -> Option<bool> {
        self.typed(obj, prefix, key, "true or false", Value::as_bool)
    }

    /// A network: host bits are masked, as flanneld's net.ParseCIDR does, with a warning.
    fn network(&mut self, obj: &Map<String, Value>, key: &str, family: Family) -> Option<IpNet> {
        let text = self.string(obj, "", key)?;
        let path = Self::field(obj, key).map(|(k, _)| k.to_string()).unwrap_or_default();
        match netaddr::parse_cidr(&text, true) {
            Ok(n) if Family::of_net(&n) != family => {
                self.fail(&path, format!("`{text}` is not {family}"));
                None
            }
            Ok(n) => {
                if n.trunc() != n {
                    self.warnings.push(format!(
                        "{path} `{text}` has host bits set; flanneld uses {}, and so does the topology",
                        n.trunc()
                    ));
                }
                Some(n.trunc())
            }
            Err(e) => {
                self.fail(&path, e.to_string());
                None
            }
        }
    }
}

/// What a family's keys say.
#[derive(Default)]
struct FamilyConf {
    network: Option<IpNet>,
    subnet_len: Option<u64>,
    min: Option<String>,
    max: Option<String>,
}

fn family(r: &mut Reader, obj: &Map<String, Value>, f: Family) -> FamilyConf {
    let k: [&str; 4] = match f {
        Family::V4 => ["Network", "SubnetLen", "SubnetMin", "SubnetMax"],
        Family::V6 => ["IPv6Network", "IPv6SubnetLen", "IPv6SubnetMin", "IPv6SubnetMax"],
    };
    let network = r.network(obj, k[0], f);
    let subnet_len = r.uint(obj, "", k[1]).filter(|l| *l != 0);
    // flanneld's CheckNetworkConfig: at most /30 (/126), at least prefix + 2.
    if let (Some(n), Some(l)) = (network, subnet_len) {
        let (lo, hi) = (u64::from(n.prefix_len()) + 2, u64::from(f.bits()) - 2);
        if l < lo || l > hi {
            let path = Reader::field(obj, k[1]).map(|(p, _)| p.to_string()).unwrap_or_default();
            r.fail(
                &path,
                format!("{l} is outside {lo}..={hi}: flanneld needs room for four subnets of at least four addresses"),
            );
        }
    }
    FamilyConf { network, subnet_len, min: r.string(obj, "", k[2]), max: r.string(obj, "", k[3]) }
}

/// The backend section as topology lines, checked per type as flanneld reads it.
fn backend(r: &mut Reader, obj: &Map<String, Value>, out: &mut String, defaults: &mut String) {
    let Some((bkey, b)) = Reader::field(obj, "Backend") else {
        r.fail("", "no `Backend`: flanneld would run its udp backend, which flannel-gen does not build; set Backend.Type to vxlan or host-gw");
        return;
    };
    let Some(b) = b.as_object() else {
        r.fail(bkey, format!("expected an object, got {b}"));
        return;
    };
    let kind = r.string(b, bkey, "Type").unwrap_or_default().to_ascii_lowercase();
    match kind.as_str() {
        "vxlan" => {
            r.unknown(b, bkey, VXLAN_KEYS);
            let _ = writeln!(out, "backend:\n  type: vxlan");
            for (key, name) in [("VNI", "vni"), ("Port", "port")] {
                if let Some(n) = r.uint(b, bkey, key).filter(|n| key == "VNI" || *n != 0) {
                    let _ = writeln!(out, "  {name}: {n}");
                }
            }
            for (key, name) in [("DirectRouting", "directRouting"), ("GBP", "gbp"), ("Learning", "learning")] {
                if let Some(v) = r.boolean(b, bkey, key).filter(|v| *v) {
                    let _ = writeln!(out, "  {name}: {v}");
                }
            }
            // flanneld's backend MTU replaces the interface MTU on every node.
            if let Some(m) = r.uint(b, bkey, "MTU").filter(|m| *m != 0) {
                let _ = writeln!(defaults, "  mtu: {m}");
            }
        }
        "host-gw" => {
            r.unknown(b, bkey, HOSTGW_KEYS);
            let _ = writeln!(out, "backend:\n  type: host-gw");
        }
        "" => r.fail(&Reader::path(bkey, "Type"), "the backend needs a `Type`"),
        other => {
            let path = Reader::field(b, "Type").map(|(k, _)| Reader::path(bkey, k)).unwrap_or_default();
            r.fail(&path, format!("backend `{other}` is not one flannel-gen builds; use vxlan or host-gw"));
        }
    }
}

/// A topology (version 1) from net-conf.json; nodes are left for the user to list.
pub fn import(file: &Path, text: &str, cluster: &str, ip_masq: bool) -> Result<Imported, Diagnostics> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        Diagnostics::one(file, Pos::new(e.line() as u64, e.column() as u64), "", format!("not JSON: {e}"))
    })?;
    let Some(obj) = v.as_object() else {
        return Err(Diagnostics::one(file, Pos::new(1, 1), "", "expected a JSON object (flannel's net-conf.json)"));
    };
    let mut r = Reader { file, text, problems: Vec::new(), warnings: Vec::new() };
    r.unknown(obj, "", TOP_KEYS);
    let v4_on = r.boolean(obj, "", "EnableIPv4").unwrap_or(true);
    let v6_on = r.boolean(obj, "", "EnableIPv6").unwrap_or(false);
    let nft = r.boolean(obj, "", "EnableNFTables").unwrap_or(false);
    let (v4, v6) = (family(&mut r, obj, Family::V4), family(&mut r, obj, Family::V6));
    if v4_on && v4.network.is_none() && Reader::field(obj, "Network").is_none() {
        r.fail("", "`Network` is required while IPv4 is enabled (set `EnableIPv4: false` for IPv6-only)");
    }
    if v6_on && v6.network.is_none() && Reader::field(obj, "IPv6Network").is_none() {
        r.fail("", "`IPv6Network` is required with `EnableIPv6: true`");
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported from flannel's net-conf.json ({}); list the nodes below, then run `flannel-gen lock`.",
        file.display()
    );
    let _ = writeln!(out, "version: 1\ncluster: {cluster}");
    for (on, conf, keys) in [
        (v4_on, &v4, ["network", "subnetLen", "subnetMin", "subnetMax"]),
        (v6_on, &v6, ["ipv6Network", "ipv6SubnetLen", "ipv6SubnetMin", "ipv6SubnetMax"]),
    ] {
        let Some(net) = conf.network.filter(|_| on) else { continue };
        let _ = writeln!(out, "{}: {net}", keys[0]);
        if let Some(l) = conf.subnet_len {
            let _ = writeln!(out, "{}: {l}", keys[1]);
        }
        for (v, k) in [(&conf.min, keys[2]), (&conf.max, keys[3])] {
            if let Some(v) = v {
                let _ = writeln!(out, "{k}: {v}");
            }
        }
    }
    let _ = writeln!(out, "ipMasq: {ip_masq}");
    if nft {
        let _ = writeln!(out, "trafficRules: nftables");
    }
    let mut defaults = String::new();
    backend(&mut r, obj, &mut out, &mut defaults);
    if !defaults.is_empty() {
        let _ = write!(out, "defaults:\n{defaults}");
    }
    out.push_str("nodes: []\n");
    if r.problems.is_empty() {
        Ok(Imported { yaml: out, warnings: r.warnings })
    } else {
        Err(Diagnostics(r.problems).sorted())
    }
}

#[cfg(test)]
mod tests;
