//! The node list: names, underlay addresses, interfaces, MTUs and pins.

use std::net::IpAddr;

use foldhash::HashMap;
use ipnet::IpNet;

use super::{Defaults, is_dns_label};
use crate::diag::{Pos, Reporter};
use crate::mac::Mac;
use crate::netaddr::{self, Family, PerFamily, SubnetPool};
use crate::topology::schema::{NodeDoc, S, TopologyDoc};
use crate::topology::{Connected, Located, Node, Pins};

/// `nodes[2].ip`: written out only when an error names it (most nodes
/// have none, and 5000 of them would format it for nothing).
#[derive(Clone, Copy)]
struct Field {
    index: usize,
    key: &'static str,
}

impl From<Field> for String {
    fn from(f: Field) -> String {
        f.to_string()
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "nodes[{}].{}", self.index, self.key)
    }
}

/// What the nodes before this one took, to report duplicates at the second use.
#[derive(Default)]
struct Seen<'a> {
    names: HashMap<&'a str, Pos>,
    ips: HashMap<IpAddr, (Pos, &'a str)>,
    macs: HashMap<(Family, Mac), &'a str>,
    subnets: HashMap<IpNet, &'a str>,
}

pub fn nodes(r: &mut Reporter, doc: &TopologyDoc, d: &Defaults, pools: &PerFamily<SubnetPool>) -> Vec<Node> {
    let requested = super::network::requested(doc);
    if doc.nodes.value.is_empty() {
        r.error(doc.nodes.pos, "nodes", "a cluster needs at least one node");
    }
    let mut seen = Seen::default();
    let mut out = Vec::with_capacity(doc.nodes.value.len());
    for (i, n) in doc.nodes.value.iter().enumerate() {
        let before = r.count();
        let node = node(r, i, n, d, (pools, &requested), &mut seen);
        if r.count() == before {
            out.extend(node);
        }
    }
    peer_special_addresses(r, doc, &out);
    out
}

/// A node whose underlay address is another node's on-link network or
/// broadcast address: that node's FDB entry or route would send the peer's
/// traffic to the whole segment (or nowhere). One pass over a map, not pairs.
fn peer_special_addresses(r: &mut Reporter, doc: &TopologyDoc, nodes: &[Node]) {
    let mut special: HashMap<IpAddr, (&str, IpNet, &str)> = HashMap::default();
    for n in nodes {
        for (family, ip) in n.ips.iter() {
            if family == Family::V4 && ip.prefix_len() < 31 {
                special.entry(ip.network()).or_insert((&n.name, ip.trunc(), "network"));
                special.entry(ip.broadcast()).or_insert((&n.name, ip.trunc(), "broadcast"));
            } else if family == Family::V6 && ip.prefix_len() < 127 {
                special.entry(ip.network()).or_insert((&n.name, ip.trunc(), "subnet-router anycast"));
            }
        }
    }
    for n in nodes {
        for (family, ip) in n.ips.iter() {
            let Some((other, net, what)) = special.get(&ip.addr()).filter(|(o, _, _)| *o != n.name) else {
                continue;
            };
            let doc_node = &doc.nodes.value[n.index].value;
            let (key, pos) = match family {
                Family::V4 => ("ip", doc_node.ip.as_ref().map_or(n.pos, |v| v.pos)),
                Family::V6 => ("ip6", doc_node.ip6.as_ref().map_or(n.pos, |v| v.pos)),
            };
            let m = format!("{} is the {what} address of node `{other}`'s underlay {net}", ip.addr());
            r.error(pos, Field { index: n.index, key }, m);
        }
    }
}

fn node<'a>(
    r: &mut Reporter,
    i: usize,
    n: &'a S<NodeDoc>,
    d: &Defaults,
    (pools, requested): (&PerFamily<SubnetPool>, &PerFamily<()>),
    seen: &mut Seen<'a>,
) -> Option<Node> {
    let at = n.pos;
    let n = &n.value;
    let f = |key| Field { index: i, key };
    let name = n.name.value.as_str();
    if !is_dns_label(name) {
        let m = format!("`{name}` is not a DNS-1123 label (1-63 of [a-z0-9-], starting and ending alphanumeric)");
        r.error(n.name.pos, f("name"), m);
    } else if let Some(first) = seen.names.insert(name, n.name.pos) {
        r.error(n.name.pos, f("name"), format!("duplicate node name `{name}` (first defined at line {})", first.line));
    }
    let mut ips = PerFamily::default();
    let mut pins = PerFamily::default();
    for family in Family::ALL {
        let (ip, subnet, mac, keys) = match family {
            Family::V4 => (&n.ip, &n.subnet, &n.vtep_mac, ["ip", "subnet", "vtepMAC"]),
            Family::V6 => (&n.ip6, &n.subnet6, &n.vtep_mac6, ["ip6", "subnet6", "vtepMAC6"]),
        };
        let pool = pools.get(family);
        if pool.is_none() {
            // An invalid or missing network is reported once, at the network.
            if requested.get(family).is_none() && requested.iter().next().is_some() {
                unused(r, family, [(ip, keys[0]), (subnet, keys[1]), (mac, keys[2])], &f);
            }
            continue;
        }
        match ip {
            Some(ip) => ips.set(family, underlay(r, f(keys[0]), ip, family, pools, name, seen)),
            None => r.error(at, f(keys[0]), format!("required key `{}` is missing: the cluster has {family}", keys[0])),
        }
        let subnet = subnet.as_ref().and_then(|s| pin_subnet(r, f(keys[1]), s, pool, name, seen));
        let vtep_mac = mac.as_ref().and_then(|m| pin_mac(r, f(keys[2]), m, family, name, seen));
        pins.set(family, Some(Pins { subnet, vtep_mac }));
    }
    let public = public_ips(r, n, &ips, pools, (name, &f), seen);
    let interface = interface(r, f("interface"), n.interface.as_ref(), d);
    let connected = connected(r, n, &interface, pools, (name, &f), seen);
    let mtu = match &n.mtu {
        Some(m) => super::mtu(r, &String::from(f("mtu")), m, d),
        None => Some(d.mtu),
    };
    let (index, name) = (i, name.to_string());
    Some(Node {
        index,
        name,
        pos: at,
        ips,
        public,
        interface,
        connected,
        mtu: mtu?,
        pins,
        cloud: None,
        wireguard_key: None,
    })
}

/// `publicIP` / `publicIP6`: a plain address of the family, a usable
/// unicast one outside the pod network, other than the node's own `ip` and
/// every other node's addresses.
fn public_ips<'a>(
    r: &mut Reporter,
    n: &NodeDoc,
    ips: &PerFamily<IpNet>,
    pools: &PerFamily<SubnetPool>,
    (name, f): (&'a str, &dyn Fn(&'static str) -> Field),
    seen: &mut Seen<'a>,
) -> PerFamily<IpAddr> {
    let mut out = PerFamily::default();
    for (family, v, key) in [(Family::V4, &n.public_ip, "publicIP"), (Family::V6, &n.public_ip6, "publicIP6")] {
        let Some(s) = v else { continue };
        let field = f(key);
        let a = match s.value.parse::<IpAddr>() {
            Ok(a) if Family::of(a) == family => a,
            Ok(a) => {
                r.error(s.pos, field, format!("{a} is not {family}"));
                continue;
            }
            Err(_) => {
                r.error(
                    s.pos,
                    field,
                    format!("`{}` is not an IP address (no prefix: the public address alone)", s.value),
                );
                continue;
            }
        };
        let why = if let Some(why) = netaddr::underlay_refusal(a) {
            Some(format!("{a} {why}"))
        } else if let Some(net) = pools.iter().map(|(_, p)| p.network).find(|net| net.contains(&a)) {
            Some(format!("{a} is inside the pod network {net}"))
        } else if ips.get(family).is_none_or(|ip| ip.addr() == a) {
            Some(format!("{a} is the node's own `ip` (or it has none of {family}): leave `{key}` out"))
        } else {
            None
        };
        if let Some(why) = why {
            r.error(s.pos, field, why);
            continue;
        }
        if let Some((first, other)) = seen.ips.insert(a, (s.pos, name)) {
            r.error(s.pos, field, format!("duplicate address {a} (also node `{other}`, line {})", first.line));
            continue;
        }
        out.set(family, Some(a));
    }
    out
}

/// `connected`: each an interface other than the uplink (once), and an
/// underlay address with its prefix, held by no other node.
fn connected<'a>(
    r: &mut Reporter,
    n: &'a NodeDoc,
    uplink: &str,
    pools: &PerFamily<SubnetPool>,
    (name, f): (&'a str, &dyn Fn(&'static str) -> Field),
    seen: &mut Seen<'a>,
) -> Vec<Connected> {
    let mut out: Vec<Connected> = Vec::new();
    for c in n.connected.iter().flat_map(|l| &l.value) {
        let c = &c.value;
        let dev = &c.interface;
        if let Some(why) = super::interface_refusal(&dev.value) {
            r.error(dev.pos, f("connected"), why);
            continue;
        }
        if dev.value == uplink || out.iter().any(|o| o.interface == dev.value) {
            r.error(dev.pos, f("connected"), format!("interface `{}` is the uplink or listed twice", dev.value));
            continue;
        }
        let family = if c.ip.value.contains(':') { Family::V6 } else { Family::V4 };
        if let Some(ip) = underlay(r, f("connected"), &c.ip, family, pools, name, seen) {
            out.push(Connected { interface: dev.value.clone(), ip });
        }
    }
    out
}

/// Keys of a family the cluster does not run are mistakes, not no-ops.
fn unused(
    r: &mut Reporter,
    family: Family,
    keys: [(&Option<S<String>>, &'static str); 3],
    f: &dyn Fn(&'static str) -> Field,
) {
    let enable = if family == Family::V4 { "network" } else { "ipv6Network" };
    for (v, key) in keys {
        if let Some(v) = v {
            r.error(v.pos, f(key), format!("the cluster has no {family} network (set `{enable}` to enable {family})"));
        }
    }
}

fn underlay<'a>(
    r: &mut Reporter,
    field: Field,
    s: &S<String>,
    family: Family,
    pools: &PerFamily<SubnetPool>,
    name: &'a str,
    seen: &mut Seen<'a>,
) -> Option<IpNet> {
    let ip = match netaddr::parse_cidr(&s.value, true) {
        Ok(ip) if Family::of_net(&ip) != family => {
            let key = if family == Family::V4 { "ip6" } else { "ip" };
            r.error(s.pos, field, format!("`{ip}` is not {family}; put it in `{key}`"));
            return None;
        }
        Ok(ip) => ip,
        Err(m) => {
            r.error(s.pos, field, m);
            return None;
        }
    };
    let a = ip.addr();
    let small = ip.prefix_len() >= family.bits() - 1;
    if let Some(why) = netaddr::underlay_refusal(a) {
        r.error(s.pos, field, format!("{a} {why}"));
    } else if family == Family::V4 && !small && (a == ip.network() || a == ip.broadcast()) {
        r.error(s.pos, field, format!("{a} is the network or broadcast address of {}", ip.trunc()));
    } else if let Some(net) = pools.iter().map(|(_, p)| p.network).find(|net| netaddr::overlaps(*net, ip.trunc())) {
        r.error(s.pos, field, format!("underlay subnet {} overlaps the pod network {net}", ip.trunc()));
    }
    if let Some((first, other)) = seen.ips.insert(a, (s.pos, name)) {
        r.error(s.pos, field, format!("duplicate node ip {a} (also node `{other}`, line {})", first.line));
    }
    Some(ip)
}

fn interface(r: &mut Reporter, field: Field, v: Option<&S<String>>, d: &Defaults) -> String {
    match v {
        Some(i) => {
            if let Some(why) = super::interface_refusal(&i.value) {
                r.error(i.pos, field, why);
            }
            i.value.clone()
        }
        None => d.interface.clone(),
    }
}

fn pin_subnet<'a>(
    r: &mut Reporter,
    field: Field,
    s: &S<String>,
    pool: Option<&SubnetPool>,
    name: &'a str,
    seen: &mut Seen<'a>,
) -> Option<Located<IpNet>> {
    let net = match netaddr::parse_cidr(&s.value, false) {
        Ok(net) => net,
        Err(m) => {
            r.error(s.pos, field, m);
            return None;
        }
    };
    if let Some(why) = pool.and_then(|p| p.refusal(net)) {
        r.error(s.pos, field, why);
        return None;
    }
    if let Some(other) = seen.subnets.insert(net, name) {
        r.error(s.pos, field, format!("{net} is also pinned by node `{other}`"));
        return None;
    }
    Some(Located { value: net, pos: s.pos })
}

fn pin_mac<'a>(
    r: &mut Reporter,
    field: Field,
    m: &S<String>,
    family: Family,
    name: &'a str,
    seen: &mut Seen<'a>,
) -> Option<Located<Mac>> {
    let mac = match m.value.parse::<Mac>() {
        Ok(mac) => mac,
        Err(e) => {
            r.error(m.pos, field, e.to_string());
            return None;
        }
    };
    if let Some(why) = mac.refusal() {
        r.error(m.pos, field, why);
        return None;
    }
    if let Some(other) = seen.macs.insert((family, mac), name) {
        r.error(m.pos, field, format!("duplicate {} {mac} (also node `{other}`)", field.key));
        return None;
    }
    Some(Located { value: mac, pos: m.pos })
}
