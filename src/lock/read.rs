//! Reading a lock file into typed leases. Two parsers fill one raw form: a
//! fast one for exactly the layout [`super::render`] writes (5000 nodes in
//! ~1 ms against ~20 ms through YAML), and serde-saphyr for anything else
//! (hand edits, other quoting). Both keep line:column of every value, so the
//! typed conversion reports each problem located in the lock file.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use foldhash::{HashMap, HashMapExt};
use ipnet::IpNet;
use serde::Deserialize;

use super::{FamilyLease, LOCK_VERSION, LeasePos, Lock, LockedNetwork, WIREGUARD_KEY, keys, lock_path};
use crate::diag::{Diagnostics, Pos, Reporter};
use crate::mac::Mac;
use crate::netaddr::{self, Family, PerFamily};
use crate::wireguard::key::Key;

/// A value as written, and where.
#[derive(Debug, Clone)]
struct Val<'a> {
    text: Cow<'a, str>,
    pos: Pos,
}

#[derive(Debug, Default)]
struct RawNode<'a> {
    name: Cow<'a, str>,
    pos: Pos,
    /// Per family (IPv4, IPv6): subnet and VTEP MAC as written.
    leases: [Option<(Val<'a>, Val<'a>)>; 2],
    wireguard_key: Option<Val<'a>>,
}

#[derive(Debug, Default)]
struct Raw<'a> {
    version: Option<Val<'a>>,
    cluster: Option<Val<'a>>,
    /// Per family: network and subnet length as written.
    networks: [Option<(Val<'a>, Val<'a>)>; 2],
    nodes: Vec<RawNode<'a>>,
}

fn slot(f: Family) -> usize {
    match f {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

/// Reads the lock file beside `topology`; `Ok(None)` when there is none.
pub fn read_lock(topology: &Path) -> Result<Option<Lock>, Diagnostics> {
    let path = lock_path(topology);
    if crate::input::is_stdin(topology) || !path.exists() {
        return Ok(None);
    }
    let text = crate::input::read_text(&path)?;
    parse_lock(&path, &text).map(Some)
}

/// Parses lock-file text; `path` names it in diagnostics.
pub fn parse_lock(path: &Path, text: &str) -> Result<Lock, Diagnostics> {
    let raw = match parse_fast(text) {
        Some(raw) => raw,
        None => parse_yaml(path, text)?,
    };
    typed(path, raw)
}

/// The YAML parser alone, to show the fast path reads the same (tests).
#[cfg(test)]
pub fn parse_lock_slow(path: &Path, text: &str) -> Result<Lock, Diagnostics> {
    typed(path, parse_yaml(path, text)?)
}

/// Whether the YAML subset reader reads `text` and, as serde-saphyr does (tests).
#[cfg(test)]
pub fn subset_reads_as_serde_saphyr(text: &str) -> bool {
    let fast = crate::yaml::read_subset::<LockDoc>(text);
    fast.is_some() && fast == crate::yaml::read_full::<LockDoc>(text)
}

/// Whether the fast path accepts `text` (tests).
#[cfg(test)]
pub fn fast_path_accepts(text: &str) -> bool {
    parse_fast(text).is_some()
}

/// The layout `render` writes, line by line; `None` on any deviation.
fn parse_fast(text: &str) -> Option<Raw<'_>> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.starts_with('#')).peekable();
    let mut raw = Raw::default();
    let field = |lines: &mut std::iter::Peekable<_>, key: &str, indent: usize| -> Option<Val<'_>> {
        let (i, line): (usize, &str) = *lines.peek()?;
        let padded = line.get(..indent)?.bytes().all(|b| b == b' ');
        let rest = line[indent..].strip_prefix(key)?.strip_prefix(": ").filter(|_| padded)?;
        lines.next();
        let quoted = rest.strip_prefix('"').and_then(|r| r.strip_suffix('"'));
        // Where the YAML parser puts it too: at the opening quote, if any.
        let col = indent + key.len() + 3;
        let text = quoted.unwrap_or(rest);
        // Quoted, base64's `+` and `=` read the same to YAML.
        let extra: &[u8] = if quoted.is_some() { b"-./:+=" } else { b"-./:" };
        let plain = !text.is_empty() && text.bytes().all(|c| c.is_ascii_alphanumeric() || extra.contains(&c));
        plain.then(|| Val { text: Cow::Borrowed(text), pos: Pos::new(i as u64 + 1, col as u64) })
    };
    raw.version = Some(field(&mut lines, "version", 0)?);
    raw.cluster = Some(field(&mut lines, "cluster", 0)?);
    for f in Family::ALL {
        let k = keys(f);
        if let Some(net) = field(&mut lines, k[0], 0) {
            raw.networks[slot(f)] = Some((net, field(&mut lines, k[1], 0)?));
        }
    }
    match lines.next()?.1 {
        "nodes: {}" => return lines.next().is_none().then_some(raw),
        "nodes:" => {}
        _ => return None,
    }
    while let Some((i, head)) = lines.next() {
        let name = head.strip_prefix("  ")?.strip_suffix(':')?;
        let mut node = RawNode { name: Cow::Borrowed(name), pos: Pos::new(i as u64 + 1, 3), ..RawNode::default() };
        for f in Family::ALL {
            let k = keys(f);
            if let Some(subnet) = field(&mut lines, k[2], 4) {
                node.leases[slot(f)] = Some((subnet, field(&mut lines, k[3], 4)?));
            }
        }
        node.wireguard_key = field(&mut lines, WIREGUARD_KEY, 4);
        raw.nodes.push(node);
    }
    Some(raw)
}

type S<T> = crate::yaml::Located<T>;

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LockDoc {
    version: Option<S<u64>>,
    cluster: Option<S<String>>,
    network: Option<S<String>>,
    subnet_len: Option<S<u64>>,
    ipv6_network: Option<S<String>>,
    ipv6_subnet_len: Option<S<u64>>,
    nodes: Option<BTreeMap<String, S<LockNodeDoc>>>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockNodeDoc {
    subnet: Option<S<String>>,
    #[serde(rename = "vtepMAC")]
    vtep_mac: Option<S<String>>,
    subnet6: Option<S<String>>,
    #[serde(rename = "vtepMAC6")]
    vtep_mac6: Option<S<String>>,
    #[serde(rename = "wireguardKey")]
    wireguard_key: Option<S<String>>,
}

fn val<T: ToString>(s: &S<T>) -> Val<'static> {
    Val { text: Cow::Owned(s.value.to_string()), pos: s.pos }
}

fn pair(a: &Option<S<String>>, b: &Option<S<u64>>) -> (Option<Val<'static>>, Option<Val<'static>>) {
    (a.as_ref().map(val), b.as_ref().map(val))
}

fn parse_yaml(path: &Path, text: &str) -> Result<Raw<'static>, Diagnostics> {
    let doc: LockDoc = crate::yaml::parse_document(path, text, &[]).map_err(|mut d| {
        for x in &mut d.0 {
            x.message =
                format!("not a flannel-gen lock file: {}; fix it, or delete it and run `flannel-gen lock`", x.message);
        }
        d
    })?;
    let mut r = Reporter::new(path);
    let missing = |r: &mut Reporter, key: &str| r.error(Pos::FILE, key, format!("required key `{key}` is missing"));
    let mut raw =
        Raw { version: doc.version.as_ref().map(val), cluster: doc.cluster.as_ref().map(val), ..Raw::default() };
    for (f, (net, len)) in
        [(Family::V4, pair(&doc.network, &doc.subnet_len)), (Family::V6, pair(&doc.ipv6_network, &doc.ipv6_subnet_len))]
    {
        match (net, len) {
            (Some(n), Some(l)) => raw.networks[slot(f)] = Some((n, l)),
            (None, None) => {}
            (Some(_), None) => missing(&mut r, keys(f)[1]),
            (None, Some(_)) => missing(&mut r, keys(f)[0]),
        }
    }
    for (name, n) in doc.nodes.unwrap_or_default() {
        let mut node = RawNode {
            name: Cow::Owned(name.clone()),
            pos: n.pos,
            wireguard_key: n.value.wireguard_key.as_ref().map(val),
            ..RawNode::default()
        };
        for (f, subnet, mac) in
            [(Family::V4, &n.value.subnet, &n.value.vtep_mac), (Family::V6, &n.value.subnet6, &n.value.vtep_mac6)]
        {
            match (subnet, mac) {
                (Some(s), Some(m)) => node.leases[slot(f)] = Some((val(s), val(m))),
                (None, None) => {}
                _ => r.error(
                    node.pos,
                    format!("nodes.{name}"),
                    format!("`{}` and `{}` go together", keys(f)[2], keys(f)[3]),
                ),
            }
        }
        raw.nodes.push(node);
    }
    if r.has_errors() { Err(r.finish()) } else { Ok(raw) }
}

/// Raw values -> a typed lock; every problem located in the lock file.
fn typed(path: &Path, raw: Raw<'_>) -> Result<Lock, Diagnostics> {
    let mut r = Reporter::new(path);
    match &raw.version {
        Some(v) if v.text == LOCK_VERSION.to_string() => {}
        Some(v) => r.error(
            v.pos,
            "version",
            format!("unsupported lock version {}; this flannel-gen reads {LOCK_VERSION}", v.text),
        ),
        None => r.error(Pos::FILE, "version", "required key `version` is missing"),
    }
    let cluster = raw.cluster.as_ref().map(|c| c.text.to_string()).unwrap_or_default();
    let mut networks = PerFamily::default();
    for f in Family::ALL {
        if let Some((net, len)) = &raw.networks[slot(f)] {
            networks.set(f, network(&mut r, f, net, len));
        }
    }
    let mut seen: HashMap<Held, &str> = HashMap::with_capacity(raw.nodes.len() * 2);
    let (mut leases, mut positions) = (Vec::with_capacity(raw.nodes.len()), Vec::with_capacity(raw.nodes.len()));
    let mut names: HashMap<&str, Pos> = HashMap::with_capacity(raw.nodes.len());
    let mut wireguard_keys = Vec::new();
    for node in &raw.nodes {
        if !crate::topology::validate::is_dns_label(&node.name) {
            r.error(node.pos, "nodes", format!("`{}` is not a node name", node.name));
        } else if let Some(first) = names.insert(&node.name, node.pos) {
            // Last-wins would move the node to the second block's lease unnoticed.
            let m = format!("node `{}` is listed twice (first at line {})", node.name, first.line);
            r.error(node.pos, "nodes", m);
        }
        let (mut lease_of, mut pos_of) = (PerFamily::default(), PerFamily::default());
        for f in Family::ALL {
            let Some((subnet, mac)) = &node.leases[slot(f)] else { continue };
            lease_of.set(f, lease(&mut r, f, &node.name, subnet, mac, &networks, &mut seen));
            pos_of.set(f, Some(LeasePos { subnet: subnet.pos, vtep_mac: mac.pos }));
        }
        leases.push((node.name.to_string(), lease_of));
        positions.push((node.name.to_string(), pos_of));
        if let Some(key) = node.wireguard_key.as_ref().and_then(|v| wireguard_key(&mut r, &node.name, v, &mut seen)) {
            wireguard_keys.push((node.name.to_string(), key));
        }
    }
    // Collected, then built: the lock lists nodes sorted, so this is linear.
    let lock = Lock {
        path: path.to_path_buf(),
        cluster,
        networks,
        leases: leases.into_iter().collect(),
        positions: positions.into_iter().collect(),
        wireguard_keys: wireguard_keys.into_iter().collect(),
    };
    if r.has_errors() { Err(r.finish()) } else { Ok(lock) }
}

fn network(r: &mut Reporter, f: Family, net: &Val, len: &Val) -> Option<LockedNetwork> {
    let k = keys(f);
    let network = match netaddr::parse_cidr(&net.text, false) {
        Ok(n) if Family::of_net(&n) == f => n,
        Ok(n) => {
            r.error(net.pos, k[0], format!("`{n}` is not {f}"));
            return None;
        }
        Err(m) => {
            r.error(net.pos, k[0], m);
            return None;
        }
    };
    match len.text.parse::<u8>() {
        Ok(l) if l > network.prefix_len() && l <= f.bits() => {
            Some(LockedNetwork { network, subnet_len: l, pos: net.pos })
        }
        _ => {
            r.error(len.pos, k[1], format!("`{}` is not a subnet length within {network}", len.text));
            None
        }
    }
}

/// What one lease holds and no other may: its subnet, its MAC in its family.
#[derive(PartialEq, Eq, Hash)]
enum Held {
    Subnet(IpNet),
    Mac(Family, Mac),
    WireguardKey(Key),
}

/// A node's public key: base64 of 32 bytes, and no other node's.
fn wireguard_key<'a>(r: &mut Reporter, node: &'a str, v: &Val, seen: &mut HashMap<Held, &'a str>) -> Option<Key> {
    let field = format!("nodes.{node}.{WIREGUARD_KEY}");
    match v.text.parse::<Key>() {
        Ok(k) => {
            if let Some(other) = seen.insert(Held::WireguardKey(k), node) {
                r.error(v.pos, field, format!("also node `{other}`'s key: each node makes its own"));
                return None;
            }
            Some(k)
        }
        Err(e) => {
            r.error(v.pos, field, format!("not a WireGuard public key: {e}"));
            None
        }
    }
}

/// One lease: syntax, family, inside the lock's own network and aligned,
/// a unicast MAC, and no subnet or MAC held twice.
fn lease<'a>(
    r: &mut Reporter,
    f: Family,
    node: &'a str,
    subnet: &Val,
    mac: &Val,
    networks: &PerFamily<LockedNetwork>,
    seen: &mut HashMap<Held, &'a str>,
) -> Option<FamilyLease> {
    let k = keys(f);
    let field = |key: &str| format!("nodes.{node}.{key}");
    let parsed: Result<IpNet, String> = netaddr::parse_cidr(&subnet.text, false).map_err(|e| e.to_string());
    let subnet_ok = match (&parsed, networks.get(f)) {
        (Err(m), _) => Err(m.clone()),
        (Ok(_), None) => Err(format!("the lock file has no `{}` for this lease", k[0])),
        (Ok(s), Some(n)) if !n.network.contains(s) => Err(format!("{s} is outside the network {}", n.network)),
        (Ok(s), Some(n)) if s.prefix_len() != n.subnet_len => {
            Err(format!("{s} is a /{} but the lock's {} is {}", s.prefix_len(), k[1], n.subnet_len))
        }
        (Ok(s), _) => Ok(*s),
    };
    let subnet_v = match subnet_ok {
        Ok(s) => Some(s),
        Err(m) => {
            r.error(subnet.pos, field(k[2]), m);
            None
        }
    };
    let mac_v = match mac.text.parse::<Mac>().map_err(|e| e.to_string()).and_then(|m| m.refusal().map_or(Ok(m), Err)) {
        Ok(m) => Some(m),
        Err(m) => {
            r.error(mac.pos, field(k[3]), m);
            None
        }
    };
    for (key, pos, what) in
        [(subnet_v.map(Held::Subnet), subnet.pos, k[2]), (mac_v.map(|m| Held::Mac(f, m)), mac.pos, k[3])]
    {
        if let Some(other) = key.and_then(|key| seen.insert(key, node)) {
            r.error(pos, field(what), format!("also leased to node `{other}`: a lease belongs to one node"));
        }
    }
    Some(FamilyLease { subnet: subnet_v?, vtep_mac: mac_v? })
}
