//! Semantic validation: a parsed [`TopologyDoc`] becomes a [`Cluster`], or
//! every rule it breaks is reported at the value that breaks it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ipnet::{IpNet, Ipv4Net};

use super::schema::{S, TopologyDoc};
use super::{
    Backend, BackendKind, Cluster, DEFAULT_INTERFACE, DEFAULT_MTU, DEFAULT_PORT, DEFAULT_VNI, Node, subnet_step,
};
use crate::diag::{Diagnostics, Pos, Reporter};
use crate::mac::Mac;

const MAX_VNI: u64 = 16_777_215;
/// Every IPv4 host must accept 576-byte datagrams (RFC 791); pods get no less.
pub const MIN_POD_MTU: u64 = 576;
const MAX_MTU: u64 = 65_535;
/// A subnet needs a network address, the gateway (.1) and at least one pod.
const MAX_SUBNET_LEN: u8 = 30;
/// host-gw pairs listed before "and N more".
const MAX_PAIRS_SHOWN: usize = 5;

fn pos<T>(s: &S<T>) -> Pos {
    Pos::from(s.referenced)
}

/// An IPv4 CIDR; `host_bits` says whether bits right of the prefix are allowed.
fn parse_cidr(s: &str, host_bits: bool) -> Result<Ipv4Net, String> {
    let s = s.trim();
    if !s.contains('/') {
        return Err(match s.parse::<IpAddr>() {
            Ok(_) => format!("`{s}` needs a prefix length, e.g. `{s}/24`"),
            Err(_) => format!("`{s}` is not a CIDR (expected e.g. 10.244.0.0/16)"),
        });
    }
    match s.parse::<IpNet>() {
        Ok(IpNet::V4(n)) => {
            if !host_bits && n.trunc() != n {
                Err(format!("`{s}` has host bits set (did you mean `{}`?)", n.trunc()))
            } else {
                Ok(n)
            }
        }
        Ok(IpNet::V6(_)) => Err(format!("`{s}` is IPv6; only IPv4 is supported in version 1 (IPv6 is planned)")),
        Err(_) => Err(format!("`{s}` is not a CIDR (expected e.g. 10.244.0.0/16)")),
    }
}

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

fn in_range<T: Copy>(r: &mut Reporter, v: &S<u64>, field: &str, lo: u64, hi: u64, ok: impl Fn(u64) -> T) -> Option<T> {
    if v.value < lo || v.value > hi {
        r.error(pos(v), field, format!("{} is outside {lo}..={hi}", v.value));
        None
    } else {
        Some(ok(v.value))
    }
}

pub fn validate(path: &Path, doc: &TopologyDoc) -> Result<Cluster, Diagnostics> {
    let mut r = Reporter::new(path);

    if doc.version.value != 1 {
        r.error(
            pos(&doc.version),
            "version",
            format!("unsupported version {}; this flannel-gen reads version 1", doc.version.value),
        );
    }
    let cluster = &doc.cluster;
    let cluster_ok = !cluster.value.is_empty()
        && cluster.value.len() <= 63
        && cluster.value.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if !cluster_ok {
        r.error(pos(cluster), "cluster", format!("`{}` must be 1-63 characters of [a-z0-9-]", cluster.value));
    }

    let network = parse_cidr(&doc.network.value, false).map_err(|m| r.error(pos(&doc.network), "network", m)).ok();

    // flannel's default: /24 subnets unless the network is smaller than a /22.
    let subnet_len = match (&doc.subnet_len, network) {
        (Some(l), Some(net)) => {
            let lo = u64::from(net.prefix_len()) + 1;
            in_range(&mut r, l, "subnetLen", lo, u64::from(MAX_SUBNET_LEN), |v| v as u8)
        }
        (Some(l), None) => in_range(&mut r, l, "subnetLen", 1, u64::from(MAX_SUBNET_LEN), |v| v as u8),
        (None, Some(net)) if net.prefix_len() <= 22 => Some(24),
        (None, Some(net)) if net.prefix_len() + 2 <= MAX_SUBNET_LEN => Some(net.prefix_len() + 2),
        (None, Some(_)) => {
            r.error(
                pos(&doc.network),
                "network",
                "network is too small to hold node subnets (prefix must be /28 or shorter)",
            );
            None
        }
        (None, None) => None,
    };

    // subnetMin/subnetMax: flannel's defaults are the second and the last subnet.
    let mut bounds = None;
    if let (Some(net), Some(len)) = (network, subnet_len) {
        let step = subnet_step(len);
        let first = u64::from(u32::from(net.network()));
        let last = u64::from(u32::from(net.broadcast())) + 1 - step;
        let bound = |r: &mut Reporter, v: &Option<S<String>>, field: &str, default: u64| -> Option<u64> {
            let Some(v) = v else { return Some(default) };
            let text = v.value.trim();
            let addr = match text.split_once('/') {
                Some((_, l)) if l.parse::<u8>().ok() != Some(len) => {
                    r.error(pos(v), field, format!("`{text}` must be a /{len} (subnetLen) or a bare address"));
                    return None;
                }
                Some((a, _)) => a.parse::<Ipv4Addr>(),
                None => text.parse::<Ipv4Addr>(),
            };
            let Ok(addr) = addr else {
                r.error(pos(v), field, format!("`{text}` is not an IPv4 address"));
                return None;
            };
            let a = u64::from(u32::from(addr));
            if !net.contains(&addr) {
                r.error(pos(v), field, format!("{addr} is outside the network {net}"));
                None
            } else if (a - first) % step != 0 {
                r.error(pos(v), field, format!("{addr} is not aligned to a /{len} subnet"));
                None
            } else {
                Some(a)
            }
        };
        let min = bound(&mut r, &doc.subnet_min, "subnetMin", first + step.min(last - first));
        let max = bound(&mut r, &doc.subnet_max, "subnetMax", last);
        if let (Some(min), Some(max)) = (min, max) {
            if min > max {
                let at = doc.subnet_min.as_ref().map(pos).or(doc.subnet_max.as_ref().map(pos)).unwrap_or_default();
                r.error(
                    at,
                    "subnetMin",
                    format!(
                        "subnetMin {} is above subnetMax {}",
                        Ipv4Addr::from(min as u32),
                        Ipv4Addr::from(max as u32)
                    ),
                );
            } else {
                bounds = Some((Ipv4Addr::from(min as u32), Ipv4Addr::from(max as u32)));
            }
        }
    }

    let b = &doc.backend.value;
    let kind = match b.kind.value.as_str() {
        "vxlan" => Some(BackendKind::Vxlan),
        "host-gw" => Some(BackendKind::HostGw),
        other @ ("udp" | "ipip" | "wireguard" | "ipsec" | "alloc") => {
            r.error(
                pos(&b.kind),
                "backend.type",
                format!("backend `{other}` is not supported yet; use vxlan or host-gw"),
            );
            None
        }
        other => {
            let hint = crate::diag::suggest(other, ["vxlan", "host-gw"])
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            r.error(
                pos(&b.kind),
                "backend.type",
                format!("unknown backend `{other}`{hint}; expected vxlan or host-gw"),
            );
            None
        }
    };
    let vni = match &b.vni {
        Some(v) => in_range(&mut r, v, "backend.vni", 1, MAX_VNI, |v| v as u32),
        None => Some(DEFAULT_VNI),
    };
    let port = match &b.port {
        Some(v) => in_range(&mut r, v, "backend.port", 1, 65_535, |v| v as u16),
        None => Some(DEFAULT_PORT),
    };
    let direct_routing = b.direct_routing.as_ref().is_some_and(|d| d.value);
    if direct_routing && kind == Some(BackendKind::HostGw) {
        let at = b.direct_routing.as_ref().map(pos).unwrap_or_default();
        r.error(at, "backend.directRouting", "directRouting is a vxlan option; host-gw routes directly already");
    }

    let defaults = doc.defaults.as_ref().map(|d| &d.value);
    let default_if = defaults.and_then(|d| d.interface.as_ref());
    if let Some(i) = default_if.filter(|i| !is_ifname(&i.value)) {
        r.error(
            pos(i),
            "defaults.interface",
            format!("`{}` is not a valid interface name (1-15 characters, no `/`, `:` or spaces)", i.value),
        );
    }
    let default_if = default_if.map_or(DEFAULT_INTERFACE, |i| i.value.as_str());
    let mtu = match defaults.and_then(|d| d.mtu.as_ref()) {
        Some(m) => {
            let overhead = kind.map_or(0, |k| u64::from(k.overhead()));
            let lo = MIN_POD_MTU + overhead;
            if m.value < lo {
                let kind = kind.map_or("", |k| k.as_str());
                r.error(pos(m), "defaults.mtu", format!("{} is too small: {kind} takes {overhead} bytes and pods need at least {MIN_POD_MTU}, so the underlay MTU must be >= {lo}", m.value));
                None
            } else {
                in_range(&mut r, m, "defaults.mtu", lo, MAX_MTU, |v| v as u32)
            }
        }
        None => Some(DEFAULT_MTU),
    };

    let pool = match (network, subnet_len, bounds) {
        (Some(net), Some(len), Some((min, max))) => Some(Pool { net, len, min, max }),
        _ => None,
    };
    let nodes = validate_nodes(&mut r, doc, default_if, network, pool);

    if let Some(Pool { net, len, min, max }) = pool {
        let capacity = super::subnet_capacity(min, max, len);
        if (nodes.len() as u64) > capacity {
            r.error(
                pos(&doc.nodes),
                "nodes",
                format!("{} nodes but {net} has only {capacity} /{len} subnets between {min} and {max}", nodes.len()),
            );
        }
    }
    if kind == Some(BackendKind::HostGw) {
        check_host_gw_segments(&mut r, &nodes);
    }

    if r.has_errors() {
        return Err(r.finish());
    }
    // No errors means every Option above is Some; the match keeps that explicit.
    match (network, subnet_len, bounds, kind, vni, port, mtu) {
        (
            Some(network),
            Some(subnet_len),
            Some((subnet_min, subnet_max)),
            Some(kind),
            Some(vni),
            Some(port),
            Some(mtu),
        ) => Ok(Cluster {
            source: path.to_path_buf(),
            name: cluster.value.clone(),
            network,
            subnet_len,
            subnet_min,
            subnet_max,
            ip_masq: doc.ip_masq.as_ref().is_some_and(|m| m.value),
            backend: Backend { kind, vni, port, direct_routing },
            mtu,
            nodes,
        }),
        _ => {
            r.error(Pos::FILE, "", "internal: validation incomplete");
            Err(r.finish())
        }
    }
}

/// Where node subnets come from: the network, cut into /len, between min and max.
#[derive(Clone, Copy)]
struct Pool {
    net: Ipv4Net,
    len: u8,
    min: Ipv4Addr,
    max: Ipv4Addr,
}

impl Pool {
    /// Why a pinned subnet cannot be used, if it cannot.
    fn refuse(&self, s: Ipv4Net) -> Option<String> {
        let Pool { net, len, min, max } = *self;
        if !net.contains(&s) {
            Some(format!("{s} is outside the network {net}"))
        } else if s.prefix_len() != len {
            Some(format!("{s} is a /{} but subnetLen is {len}", s.prefix_len()))
        } else if s.network() < min || s.network() > max {
            Some(format!("{s} is outside subnetMin..subnetMax ({min}..{max})"))
        } else {
            None
        }
    }
}

fn validate_nodes(
    r: &mut Reporter,
    doc: &TopologyDoc,
    default_if: &str,
    network: Option<Ipv4Net>,
    pool: Option<Pool>,
) -> Vec<Node> {
    if doc.nodes.value.is_empty() {
        r.error(pos(&doc.nodes), "nodes", "a cluster needs at least one node");
    }
    let mut names: HashMap<&str, Pos> = HashMap::new();
    let mut ips: HashMap<Ipv4Addr, (Pos, &str)> = HashMap::new();
    let mut macs: HashMap<Mac, &str> = HashMap::new();
    let mut pinned: HashMap<Ipv4Addr, &str> = HashMap::new();
    let mut nodes = Vec::with_capacity(doc.nodes.value.len());
    for (i, n) in doc.nodes.value.iter().enumerate() {
        let at = pos(n);
        let n = &n.value;
        let f = |k: &str| format!("nodes[{i}].{k}");
        let name = n.name.value.as_str();
        let mut ok = true;
        if !is_dns_label(name) {
            r.error(
                pos(&n.name),
                f("name"),
                format!("`{name}` is not a DNS-1123 label (1-63 of [a-z0-9-], starting and ending alphanumeric)"),
            );
            ok = false;
        } else if let Some(first) = names.insert(name, pos(&n.name)) {
            r.error(
                pos(&n.name),
                f("name"),
                format!("duplicate node name `{name}` (first defined at line {})", first.line),
            );
            ok = false;
        }
        let ip = match parse_cidr(&n.ip.value, true) {
            Ok(ip) => {
                let a = ip.addr();
                if ip.prefix_len() < 31 && (a == ip.network() || a == ip.broadcast()) {
                    r.error(pos(&n.ip), f("ip"), format!("{a} is the network or broadcast address of {}", ip.trunc()));
                    ok = false;
                } else if let Some(net) = network.filter(|net| {
                    net.contains(&a) || ip.trunc().contains(&net.network()) || net.contains(&ip.network())
                }) {
                    r.error(
                        pos(&n.ip),
                        f("ip"),
                        format!("underlay subnet {} overlaps the pod network {net}", ip.trunc()),
                    );
                    ok = false;
                }
                if let Some((first, other)) = ips.insert(a, (pos(&n.ip), name)) {
                    r.error(
                        pos(&n.ip),
                        f("ip"),
                        format!("duplicate node ip {a} (also node `{other}`, line {})", first.line),
                    );
                    ok = false;
                }
                Some(ip)
            }
            Err(m) => {
                r.error(pos(&n.ip), f("ip"), m);
                None
            }
        };
        let interface = match &n.interface {
            Some(i) if !is_ifname(&i.value) => {
                r.error(
                    pos(i),
                    f("interface"),
                    format!("`{}` is not a valid interface name (1-15 characters, no `/`, `:` or spaces)", i.value),
                );
                ok = false;
                String::new()
            }
            Some(i) => i.value.clone(),
            None => default_if.to_string(),
        };
        let subnet = match &n.subnet {
            Some(s) => match parse_cidr(&s.value, false) {
                Ok(net) => {
                    if let Some(why) = pool.and_then(|p| p.refuse(net)) {
                        r.error(pos(s), f("subnet"), why);
                        ok = false;
                    } else if let Some(other) = pinned.insert(net.network(), name) {
                        r.error(pos(s), f("subnet"), format!("{net} is also pinned by node `{other}`"));
                        ok = false;
                    }
                    Some(net)
                }
                Err(m) => {
                    r.error(pos(s), f("subnet"), m);
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let vtep_mac = match &n.vtep_mac {
            Some(m) => {
                match m.value.parse::<Mac>() {
                    Ok(mac) if !mac.is_unicast() || mac.is_zero() => {
                        r.error(pos(m), f("vtepMAC"), format!("{mac} is not a unicast address (the first octet's lowest bit must be 0, and not all zero)"));
                        ok = false;
                        None
                    }
                    Ok(mac) => {
                        if let Some(other) = macs.insert(mac, name) {
                            r.error(pos(m), f("vtepMAC"), format!("duplicate vtepMAC {mac} (also node `{other}`)"));
                            ok = false;
                        }
                        Some(mac)
                    }
                    Err(e) => {
                        r.error(pos(m), f("vtepMAC"), e.to_string());
                        ok = false;
                        None
                    }
                }
            }
            None => None,
        };
        if let (true, Some(ip)) = (ok, ip) {
            nodes.push(Node { index: i, name: name.to_string(), ip, interface, subnet, vtep_mac, pos: at });
        }
    }
    nodes
}

/// host-gw needs every node pair on one L2 segment: name the pairs that are not.
fn check_host_gw_segments(r: &mut Reporter, nodes: &[Node]) {
    let mut segments: BTreeMap<Ipv4Net, Vec<&Node>> = BTreeMap::new();
    for n in nodes {
        segments.entry(n.segment()).or_default().push(n);
    }
    let mut groups: Vec<(Ipv4Net, Vec<&Node>)> = segments.into_iter().collect();
    // The largest segment is taken as "the" cluster segment; the others are reported.
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let Some((main_net, main)) = groups.first() else {
        return;
    };
    for (net, members) in &groups[1..] {
        r.error(
            members[0].pos,
            format!("nodes[{}]", members[0].index),
            format!(
                "host-gw needs every node pair on one L2 subnet, but {} ({net}) and {} ({main_net}) share none; use `type: vxlan` with `directRouting: true` to route directly where nodes share a subnet",
                name_list(members),
                name_list(main),
            ),
        );
    }
}

fn name_list(nodes: &[&Node]) -> String {
    let shown: Vec<&str> = nodes.iter().take(MAX_PAIRS_SHOWN).map(|n| n.name.as_str()).collect();
    match nodes.len().saturating_sub(MAX_PAIRS_SHOWN) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests;
