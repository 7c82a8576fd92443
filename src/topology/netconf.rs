//! Importing flannel's own net-conf.json (the kube-flannel ConfigMap, or the
//! etcd `<prefix>/config` key) as a topology, read the way flanneld reads it
//! (pkg/subnet/config.go, pkg/backend/*): keys matched case-insensitively
//! (Go's encoding/json), `SubnetLen: 0` and `Port: 0` meaning "unset", a
//! Network with host bits masked, a value of the wrong type fatal. What
//! flanneld honours is honoured or refused; what it ignores (an unknown key)
//! is ignored here too, with a located warning, so every file flanneld
//! accepts imports. `ipMasq` is flanneld's `--ip-masq` flag, not a
//! net-conf key, so the caller says it.

use std::fmt::Write;
use std::path::Path;

use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::json_path::locate;
use crate::netaddr::{self, Family};
use crate::topology::BackendKind;

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
const UDP_KEYS: &[&str] = &["Type", "Port"];
/// pkg/backend/wireguard/wireguard.go, RegisterNetwork's config struct.
const WIREGUARD_KEYS: &[&str] =
    &["Type", "ListenPort", "ListenPortV6", "MTU", "PSK", "PersistentKeepaliveInterval", "Mode"];

/// Where an imported wireguard topology expects the pre-shared key that
/// net-conf.json held (never in git).
pub const IMPORTED_PSK_FILE: &str = "/etc/flannel-gen/wireguard.psk";

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

    fn field<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<(&'v str, &'v Value)> {
        crate::json_path::go_field(obj, key)
    }

    fn path(prefix: &str, key: &str) -> String {
        if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
    }

    /// Keys flanneld does not read. Go's encoding/json ignores them, so
    /// flanneld accepts the file, and so does the import; but a typo
    /// (`VNl`) silently changes the cluster, so each gets a located warning.
    fn unknown(&mut self, obj: &Map<String, Value>, prefix: &str, known: &[&str]) {
        for k in obj.keys() {
            if !known.iter().any(|n| n.eq_ignore_ascii_case(k)) {
                let hint = crate::diag::suggest(k, known.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                let path = Self::path(prefix, k);
                let at = locate(self.text, &path).unwrap_or(Pos::FILE);
                self.warnings.push(format!(
                    "{}:{}: {path}: `{k}` is not a key flanneld reads here{hint}; flanneld ignores it, and so does the import",
                    at.line, at.column
                ));
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

/// What a family's keys say (only for an enabled family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyConf {
    pub network: IpNet,
    pub subnet_len: Option<u64>,
    pub min: Option<String>,
    pub max: Option<String>,
}

/// The backend section, as flanneld reads it; `None` is flanneld's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConf {
    pub kind: BackendKind,
    pub vni: Option<u64>,
    pub port: Option<u64>,
    pub direct_routing: bool,
    pub gbp: bool,
    pub learning: bool,
    /// flanneld's backend MTU, which replaces the interface MTU on every node.
    pub mtu: Option<u64>,
    /// aws-vpc's `RouteTableID` (a string or a list).
    pub route_tables: Vec<String>,
    /// gce's project and network: flanneld read them from the instance
    /// metadata, so they come from the caller (`import --gce-project`), not the file.
    pub gce: Option<(String, String)>,
    /// wireguard's `ListenPortV6` (`port` holds `ListenPort`).
    pub port_v6: Option<u64>,
    /// wireguard's `PersistentKeepaliveInterval`, in seconds (flanneld
    /// multiplies the number by a second).
    pub persistent_keepalive: Option<u64>,
    /// wireguard: net-conf.json holds a `PSK`, which the topology expects in
    /// a file on each node instead.
    pub psk: bool,
}

impl BackendConf {
    /// The VNI flanneld runs with: `VNI` as given (0 included), else 1.
    pub fn effective_vni(&self) -> u64 {
        self.vni.unwrap_or(u64::from(crate::topology::DEFAULT_VNI))
    }

    /// The port wireguard listens on for family `f`: as given, else flanneld's default.
    pub fn wireguard_port(&self, f: Family) -> u16 {
        use crate::topology::{DEFAULT_WG_PORT, DEFAULT_WG_PORT_V6};
        let (given, default) = match f {
            Family::V4 => (self.port, DEFAULT_WG_PORT),
            Family::V6 => (self.port_v6, DEFAULT_WG_PORT_V6),
        };
        given.and_then(|p| u16::try_from(p).ok()).unwrap_or(default)
    }
}

/// flannel's net-conf.json, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConf {
    pub v4: Option<FamilyConf>,
    pub v6: Option<FamilyConf>,
    pub nftables: bool,
    pub backend: BackendConf,
}

fn family(r: &mut Reader, obj: &Map<String, Value>, f: Family) -> Option<FamilyConf> {
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
    let (min, max) = (r.string(obj, "", k[2]), r.string(obj, "", k[3]));
    Some(FamilyConf { network: network?, subnet_len, min, max })
}

/// The backend section, checked per type as flanneld reads it.
fn backend(r: &mut Reader, obj: &Map<String, Value>) -> Option<BackendConf> {
    let mut conf = BackendConf {
        kind: BackendKind::Udp,
        vni: None,
        port: None,
        direct_routing: false,
        gbp: false,
        learning: false,
        mtu: None,
        route_tables: Vec::new(),
        gce: None,
        port_v6: None,
        persistent_keepalive: None,
        psk: false,
    };
    // pkg/subnet/config.go parseBackendType: no Backend at all is udp.
    let Some((bkey, b)) = Reader::field(obj, "Backend") else {
        r.warnings.push("no `Backend`: flanneld runs its udp backend, and so does the topology".into());
        return Some(conf);
    };
    let Some(b) = b.as_object() else {
        r.fail(bkey, format!("expected an object, got {b}"));
        return None;
    };
    let kind = r.string(b, bkey, "Type").unwrap_or_default().to_ascii_lowercase();
    match kind.as_str() {
        "vxlan" => {
            r.unknown(b, bkey, VXLAN_KEYS);
            conf.kind = BackendKind::Vxlan;
            conf.vni = r.uint(b, bkey, "VNI");
            conf.port = r.uint(b, bkey, "Port").filter(|n| *n != 0);
            conf.direct_routing = r.boolean(b, bkey, "DirectRouting").unwrap_or(false);
            conf.gbp = r.boolean(b, bkey, "GBP").unwrap_or(false);
            conf.learning = r.boolean(b, bkey, "Learning").unwrap_or(false);
            conf.mtu = r.uint(b, bkey, "MTU").filter(|m| *m != 0);
        }
        "host-gw" => {
            r.unknown(b, bkey, HOSTGW_KEYS);
            conf.kind = BackendKind::HostGw;
        }
        "udp" => {
            r.unknown(b, bkey, UDP_KEYS);
            conf.port = r.uint(b, bkey, "Port").filter(|n| *n != 0);
        }
        "aws-vpc" => {
            r.unknown(b, bkey, &["Type", "RouteTableID"]);
            conf.kind = BackendKind::AwsVpc;
            conf.route_tables = route_table_ids(r, b, bkey)?;
        }
        "gce" => {
            r.unknown(b, bkey, &["Type"]);
            conf.kind = BackendKind::Gce;
        }
        "wireguard" => wireguard(r, b, bkey, &mut conf),
        "" => {
            r.fail(&Reader::path(bkey, "Type"), "the backend needs a `Type`");
            return None;
        }
        other => {
            let path = Reader::field(b, "Type").map(|(k, _)| Reader::path(bkey, k)).unwrap_or_default();
            r.fail(
                &path,
                format!("backend `{other}` is not one flannel-gen builds; use {}", BackendKind::names_text()),
            );
            return None;
        }
    }
    Some(conf)
}

/// wireguard's keys, as RegisterNetwork reads them (pkg/backend/wireguard).
fn wireguard(r: &mut Reader, b: &Map<String, Value>, bkey: &str, conf: &mut BackendConf) {
    r.unknown(b, bkey, WIREGUARD_KEYS);
    conf.kind = BackendKind::Wireguard;
    conf.port = r.uint(b, bkey, "ListenPort");
    conf.port_v6 = r.uint(b, bkey, "ListenPortV6");
    conf.mtu = r.uint(b, bkey, "MTU").filter(|m| *m != 0);
    conf.persistent_keepalive = r.uint(b, bkey, "PersistentKeepaliveInterval").filter(|s| *s != 0);
    conf.psk = r.string(b, bkey, "PSK").is_some_and(|p| !p.is_empty());
    if conf.psk {
        r.warnings.push(format!(
            "`PSK` is set: flannel-gen keeps the pre-shared key out of git; write it (as it is in net-conf.json) to {IMPORTED_PSK_FILE} on every node, mode 0600, which the topology's `pskFile` names"
        ));
    }
    if let Some(mode) = r.string(b, bkey, "Mode").filter(|m| !m.eq_ignore_ascii_case("separate")) {
        let path = Reader::field(b, "Mode").map(|(k, _)| Reader::path(bkey, k)).unwrap_or_default();
        r.fail(
            &path,
            format!("wireguard mode `{mode}` is not built yet: flannel-gen runs `separate` (flanneld's default)"),
        );
    }
}

/// aws-vpc's `RouteTableID`: one id or a list of them (flannel v0.19
/// backend/awsvpc/awsvpc.go `routeTables`).
fn route_table_ids(r: &mut Reader, b: &Map<String, Value>, bkey: &str) -> Option<Vec<String>> {
    let Some((k, v)) = Reader::field(b, "RouteTableID") else { return Some(Vec::new()) };
    let path = Reader::path(bkey, k);
    let ids: Option<Vec<String>> = match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => None,
    };
    match ids {
        Some(ids) => Some(ids),
        None => {
            r.fail(&path, format!("expected a route table id or a list of them, got {v}"));
            None
        }
    }
}

/// Reads net-conf.json the way flanneld does; warnings are what flanneld
/// accepts silently but a reader should know.
pub fn parse(file: &Path, text: &str) -> Result<(NetConf, Vec<String>), Diagnostics> {
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
    let nftables = r.boolean(obj, "", "EnableNFTables").unwrap_or(false);
    let (v4, v6) = (family(&mut r, obj, Family::V4), family(&mut r, obj, Family::V6));
    if v4_on && v4.is_none() && Reader::field(obj, "Network").is_none() {
        r.fail("", "`Network` is required while IPv4 is enabled (set `EnableIPv4: false` for IPv6-only)");
    }
    if v6_on && v6.is_none() && Reader::field(obj, "IPv6Network").is_none() {
        r.fail("", "`IPv6Network` is required with `EnableIPv6: true`");
    }
    let backend = backend(&mut r, obj);
    match backend {
        Some(backend) if r.problems.is_empty() => {
            let conf = NetConf { v4: v4.filter(|_| v4_on), v6: v6.filter(|_| v6_on), nftables, backend };
            Ok((conf, r.warnings))
        }
        _ => Err(Diagnostics(r.problems).sorted()),
    }
}

impl NetConf {
    pub fn family(&self, f: Family) -> Option<&FamilyConf> {
        match f {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }

    /// The topology's cluster-wide part (everything but `nodes`), one key a
    /// line; `interface` is the underlay device for `defaults`.
    pub fn topology_head(&self, cluster: &str, ip_masq: bool, interface: Option<&str>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "version: 1\ncluster: {cluster}");
        for (conf, keys) in [
            (&self.v4, ["network", "subnetLen", "subnetMin", "subnetMax"]),
            (&self.v6, ["ipv6Network", "ipv6SubnetLen", "ipv6SubnetMin", "ipv6SubnetMax"]),
        ] {
            let Some(conf) = conf else { continue };
            let _ = writeln!(out, "{}: {}", keys[0], conf.network);
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
        if self.nftables {
            let _ = writeln!(out, "trafficRules: nftables");
        }
        let b = &self.backend;
        let _ = writeln!(out, "backend:\n  type: {}", b.kind.as_str());
        if !b.route_tables.is_empty() {
            let _ = writeln!(out, "  routeTableIDs: [{}]", b.route_tables.join(", "));
        }
        if let Some((project, network)) = &b.gce {
            let _ = writeln!(out, "  project: {project}\n  network: {network}");
        }
        if b.kind == BackendKind::Wireguard {
            wireguard_head(b, &mut out);
        } else if b.kind != BackendKind::HostGw && !b.kind.is_cloud() {
            for (v, name) in [(b.vni, "vni"), (b.port, "port")] {
                if let Some(n) = v {
                    let _ = writeln!(out, "  {name}: {n}");
                }
            }
            for (v, name) in [(b.direct_routing, "directRouting"), (b.gbp, "gbp"), (b.learning, "learning")] {
                if v {
                    let _ = writeln!(out, "  {name}: true");
                }
            }
        }
        if interface.is_some() || b.mtu.is_some() {
            out.push_str("defaults:\n");
        }
        if let Some(i) = interface {
            let _ = writeln!(out, "  interface: {i}");
        }
        if let Some(m) = b.mtu {
            let _ = writeln!(out, "  mtu: {m}");
        }
        out
    }
}

fn wireguard_head(b: &BackendConf, out: &mut String) {
    for (v, name) in [(b.port, "port"), (b.port_v6, "portV6"), (b.persistent_keepalive, "persistentKeepalive")] {
        if let Some(n) = v {
            let _ = writeln!(out, "  {name}: {n}");
        }
    }
    if b.psk {
        let _ = writeln!(out, "  pskFile: {IMPORTED_PSK_FILE}");
    }
}

/// A topology (version 1) from net-conf.json; nodes are left for the user to list.
pub fn import(file: &Path, text: &str, cluster: &str, ip_masq: bool) -> Result<Imported, Diagnostics> {
    let (conf, warnings) = parse(file, text)?;
    let mut yaml = format!(
        "# Imported from flannel's net-conf.json ({}); list the nodes below, then run `flannel-gen lock`.\n",
        file.display()
    );
    yaml.push_str(&conf.topology_head(cluster, ip_masq, None));
    yaml.push_str("nodes: []\n");
    Ok(Imported { yaml, warnings })
}

#[cfg(test)]
mod tests;
