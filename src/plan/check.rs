//! The plan's invariants. A plan that passes can be rendered and applied
//! without surprises: every route lies inside the cluster network and off
//! the node's own subnet, every gateway and MAC is unicast, every device name
//! is derived (never the uplink), every sysctl is one the plan's own devices
//! call for. Problems name the JSON path of the offending value.

use std::fmt;
use std::net::IpAddr;

use foldhash::{HashSet, HashSetExt};
use ipnet::IpNet;

use super::{BackendPlan, FORMAT_VERSION, Peer, PlanData};
use crate::netaddr::{self, Family};
use crate::topology::RouteStyle;
use crate::topology::validate::{interface_refusal, is_dns_label};

/// One broken invariant: where (a JSON path such as `peers[3].subnet`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { path: path.into(), message: message.into() });
    }
}

const MIN_MTU: u32 = 68;
const MAX_MTU: u32 = 65_535;
const MAX_VNI: u32 = 16_777_215;

/// Every invariant of `p`; empty when the plan is sound.
pub fn check(p: &PlanData) -> Vec<Problem> {
    let mut c = Checker::default();
    header(&mut c, p);
    uplink(&mut c, p);
    for f in Family::ALL {
        family(&mut c, p, f);
    }
    peers(&mut c, p);
    sysctls(&mut c, p);
    c.problems
}

fn header(c: &mut Checker, p: &PlanData) {
    if p.format_version != FORMAT_VERSION {
        c.fail(
            "formatVersion",
            format!(
                "formatVersion {} is not {FORMAT_VERSION}; render the plan again with this flannel-gen",
                p.format_version
            ),
        );
    }
    let cluster_ok = !p.cluster.is_empty()
        && p.cluster.len() <= 63
        && p.cluster.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !cluster_ok {
        c.fail("cluster", format!("`{}` is not a cluster name ([a-z0-9-], 1-63)", p.cluster));
    }
    if !is_dns_label(&p.node) {
        c.fail("node", format!("`{}` is not a DNS-1123 label", p.node));
    }
    if let BackendPlan::Vxlan { vni, port, .. } = p.backend {
        if vni > MAX_VNI {
            c.fail("backend.vni", format!("{vni} is outside 0..={MAX_VNI}"));
        }
        if port == 0 {
            c.fail("backend.port", "0 is not a UDP port");
        }
    }
    if let BackendPlan::Udp { port: 0 } = p.backend {
        c.fail("backend.port", "0 is not a UDP port");
    }
    wireguard(c, p);
    if matches!(p.backend, BackendPlan::Udp { .. }) && p.ipv6.is_some() {
        c.fail("ipv6", "the udp backend carries IPv4 only");
    }
    cloud(c, p);
    if p.ipv4.is_none() && p.ipv6.is_none() {
        c.fail("ipv4", "the plan has neither ipv4 nor ipv6");
    }
}

fn uplink(c: &mut Checker, p: &PlanData) {
    for (i, con) in p.connected.iter().enumerate() {
        let why = interface_refusal(&con.interface).or_else(|| {
            let twice = p.connected[..i].iter().any(|o| o.interface == con.interface);
            (con.interface == p.uplink.name || twice).then(|| "is the uplink or listed twice".to_string())
        });
        if let Some(why) = why {
            c.fail(format!("connected[{i}].interface"), why);
        }
    }
    if let Some(why) = interface_refusal(&p.uplink.name) {
        c.fail("uplink.name", why);
    }
    let overhead = p.backend.kind().overhead();
    if !(MIN_MTU..=MAX_MTU).contains(&p.uplink.mtu) {
        c.fail("uplink.mtu", format!("{} is outside {MIN_MTU}..={MAX_MTU}", p.uplink.mtu));
    } else if p.mtu.checked_add(overhead) != Some(p.uplink.mtu) {
        c.fail(
            "mtu",
            format!(
                "{} is not the uplink MTU {} less the {} bytes {} takes",
                p.mtu,
                p.uplink.mtu,
                overhead,
                p.backend.kind().as_str()
            ),
        );
    }
}

/// A public address (behind NAT): of its family, unicast, outside the pod
/// network, and not the uplink's own.
fn uplink_public_ip(c: &mut Checker, p: &PlanData, f: Family) {
    let (key, public) = match f {
        Family::V4 => ("uplink.publicIPv4", p.uplink.public_ipv4),
        Family::V6 => ("uplink.publicIPv6", p.uplink.public_ipv6),
    };
    let Some(a) = public else { return };
    let why = if Family::of(a) != f {
        Some(format!("{a} is not {f}"))
    } else if let Some(why) = netaddr::underlay_refusal(a) {
        Some(format!("{a} {why}"))
    } else if p.family(f).is_some_and(|fam| fam.network.contains(&a)) {
        Some(format!("{a} is inside the pod network"))
    } else if p.uplink.address(f).is_none_or(|own| own.addr() == a) {
        Some(format!("{a} is the uplink's own address (or the uplink has no {f} address)"))
    } else {
        None
    };
    if let Some(why) = why {
        c.fail(key, why);
    }
}

fn family(c: &mut Checker, p: &PlanData, f: Family) {
    uplink_public_ip(c, p, f);
    let key = if f == Family::V4 { "ipv4" } else { "ipv6" };
    let addr = p.uplink.address(f);
    let Some(fam) = p.family(f) else {
        if addr.is_some() {
            c.fail(format!("uplink.{key}"), format!("the plan has no {key}, so the uplink needs no {f} address"));
        }
        return;
    };
    let family_of = |n: &IpNet| Family::of_net(n) == f;
    if !family_of(&fam.network) || fam.network.trunc() != fam.network {
        c.fail(format!("{key}.network"), format!("{} is not an {f} network without host bits", fam.network));
    } else if let Some(why) = netaddr::pod_network_refusal(fam.network) {
        c.fail(format!("{key}.network"), why);
    }
    let s = fam.subnet;
    let room = f.bits().saturating_sub(2);
    if !family_of(&s) || s.trunc() != s || !fam.network.contains(&s) || s.prefix_len() <= fam.network.prefix_len() {
        c.fail(format!("{key}.subnet"), format!("{s} is not a subnet of the network {}", fam.network));
    } else if s.prefix_len() > room {
        c.fail(format!("{key}.subnet"), format!("{s} leaves no room for a gateway and pods (at most /{room})"));
    }
    match addr {
        None => c.fail(format!("uplink.{key}"), format!("the node needs an {f} underlay address")),
        Some(a) if !family_of(&a) => c.fail(format!("uplink.{key}"), format!("{a} is not {f}")),
        Some(a) => {
            if let Some(why) = netaddr::underlay_refusal(a.addr()) {
                c.fail(format!("uplink.{key}"), format!("{} {why}", a.addr()));
            } else if netaddr::overlaps(a.trunc(), fam.network) {
                c.fail(format!("uplink.{key}"), format!("{a} overlaps the pod network {}", fam.network));
            }
        }
    }
    let vxlan = matches!(p.backend, BackendPlan::Vxlan { .. });
    match (vxlan, fam.vtep_mac) {
        (true, None) => c.fail(format!("{key}.vtepMAC"), "a vxlan plan needs the node's VTEP MAC"),
        (false, Some(_)) => c.fail(format!("{key}.vtepMAC"), "only a vxlan plan has a VTEP MAC"),
        (true, Some(m)) => {
            if let Some(why) = m.refusal() {
                c.fail(format!("{key}.vtepMAC"), why);
            }
        }
        (false, None) => {}
    }
}

fn peers(c: &mut Checker, p: &PlanData) {
    let mut public = foldhash::HashMap::default();
    let mut subnets = HashSet::new();
    let mut names = HashSet::new();
    let mut macs = HashSet::new();
    for (i, peer) in p.peers.iter().enumerate() {
        let at = |k: &str| format!("peers[{i}].{k}");
        let f = peer.family();
        if !is_dns_label(peer.node()) || peer.node() == p.node {
            c.fail(at("node"), format!("`{}` is not another node's name", peer.node()));
        } else if !names.insert((peer.node(), f)) {
            c.fail(at("node"), format!("node `{}` is listed twice for {f}", peer.node()));
        }
        let Some(fam) = p.family(f) else {
            c.fail(at("subnet"), format!("{} is {f}, which this plan does not run", peer.subnet()));
            continue;
        };
        let s = peer.subnet();
        if s.trunc() != s || !fam.network.contains(&s) || s.prefix_len() != fam.subnet.prefix_len() {
            c.fail(
                at("subnet"),
                format!("{s} is not a /{} subnet of the network {}", fam.subnet.prefix_len(), fam.network),
            );
        } else if netaddr::overlaps(s, fam.subnet) {
            c.fail(at("subnet"), format!("{s} is this node's own subnet"));
        } else if !subnets.insert(s) {
            c.fail(at("subnet"), format!("{s} is listed for two peers"));
        } else if p.route_style == RouteStyle::Nexthop && super::objects::nexthop_id(fam.network, s).is_none() {
            c.fail(at("subnet"), format!("{s}: its index in {} does not fit a nexthop id", fam.network));
        }
        public_ip(c, p, i, peer, f);
        // Two peers at one address: one FDB destination or gateway for two
        // nodes' subnets, so one of them is unreachable (NAT cannot tell them apart either).
        if let Some(other) = public.insert(peer.public_ip(), peer.node()).filter(|o| *o != peer.node()) {
            c.fail(at("publicIP"), format!("{} is node `{other}`'s address too", peer.public_ip()));
        }
        if let Peer::Vxlan { vtep_mac, .. } = peer {
            if let Some(why) = vtep_mac.refusal() {
                c.fail(at("vtepMAC"), why);
            } else if Some(*vtep_mac) == fam.vtep_mac || !macs.insert((f, *vtep_mac)) {
                c.fail(at("vtepMAC"), format!("{vtep_mac} is another node's VTEP MAC too"));
            }
        }
    }
}

/// A peer's underlay address: a unicast host of the peer's family, outside
/// the pod networks; on-link where the peer is routed to directly; and a
/// path the backend has.
fn public_ip(c: &mut Checker, p: &PlanData, i: usize, peer: &Peer, f: Family) {
    let at = format!("peers[{i}].publicIP");
    let ip: IpAddr = peer.public_ip();
    if Family::of(ip) != f {
        c.fail(at, format!("{ip} is not {f}, as the peer's subnet is"));
        return;
    }
    if let Some(why) = netaddr::underlay_refusal(ip) {
        c.fail(at, format!("{ip} {why}"));
        return;
    }
    if p.families().any(|(_, fam)| fam.network.contains(&ip)) {
        c.fail(at, format!("{ip} is inside a pod network"));
        return;
    }
    if let Some(why) = p.uplink.address(f).and_then(|own| own_segment_refusal(own, ip)) {
        c.fail(at, format!("{ip} {why}"));
        return;
    }
    let on_link = p.uplink.address(f).is_some_and(|a| a.trunc().contains(&ip))
        || p.connected.iter().any(|c| c.ip.trunc().contains(&ip));
    let cloud = p.backend.kind().is_cloud();
    match (&p.backend, peer) {
        (_, Peer::Cloud { .. }) if cloud => {}
        (_, _) if cloud => c.fail(format!("peers[{i}].path"), "a cloud plan reaches every peer through the cloud"),
        (_, Peer::Cloud { .. }) => c.fail(format!("peers[{i}].path"), "only an aws-vpc or gce plan has cloud peers"),
        (BackendPlan::Wireguard { public_key, .. }, Peer::Wireguard { public_key: theirs, .. })
            if theirs == public_key =>
        {
            c.fail(format!("peers[{i}].publicKey"), "is this node's own public key")
        }
        (BackendPlan::Wireguard { .. }, Peer::Wireguard { .. }) => {}
        (BackendPlan::Wireguard { .. }, _) => {
            c.fail(format!("peers[{i}].path"), "a wireguard plan reaches every peer over wireguard")
        }
        (_, Peer::Wireguard { .. }) => c.fail(format!("peers[{i}].path"), "only a wireguard plan has wireguard peers"),
        (BackendPlan::Udp { .. }, Peer::Udp { .. }) => {}
        (BackendPlan::Udp { .. }, _) => c.fail(format!("peers[{i}].path"), "a udp plan reaches every peer over udp"),
        (_, Peer::Udp { .. }) => c.fail(format!("peers[{i}].path"), "only a udp plan has udp peers"),
        (BackendPlan::HostGw, Peer::Vxlan { .. }) => {
            c.fail(format!("peers[{i}].path"), "a host-gw plan has no VXLAN device to reach a vxlan peer")
        }
        (BackendPlan::Vxlan { direct_routing: false, .. }, Peer::HostGw { .. }) => {
            c.fail(format!("peers[{i}].path"), "a host-gw peer in a vxlan plan needs directRouting")
        }
        (_, Peer::HostGw { .. }) if !on_link => c.fail(
            at,
            format!(
                "{ip} is not on-link from the uplink {} or a connected network; it cannot be a direct gateway",
                p.uplink.name
            ),
        ),
        _ => {}
    }
}

/// A wireguard plan's ports and key file paths (they go into networkd files).
fn wireguard(c: &mut Checker, p: &PlanData) {
    let BackendPlan::Wireguard { port, port_v6, key_file, psk_file, .. } = &p.backend else { return };
    for (at, v) in [("backend.port", port), ("backend.portV6", port_v6)] {
        if *v == 0 {
            c.fail(at, "0 is not a UDP port");
        }
    }
    let node_path = |s: &str| s.starts_with('/') && s.len() < 4096 && s.bytes().all(|b| b.is_ascii_graphic());
    for (at, v) in [("backend.keyFile", Some(key_file)), ("backend.pskFile", psk_file.as_ref())] {
        if let Some(v) = v.filter(|v| !node_path(v)) {
            c.fail(at, format!("`{v}` is not an absolute path without spaces"));
        }
    }
}

/// A cloud plan's instance, in the forms validation allows; IPv4 only.
fn cloud(c: &mut Checker, p: &PlanData) {
    use crate::topology::validate::cloud as form;
    match &p.backend {
        BackendPlan::AwsVpc { instance_id } if !form::is_ec2_id(instance_id, "i") => {
            c.fail("backend.instanceID", format!("`{instance_id}` is not an EC2 instance id"));
        }
        BackendPlan::Gce { instance, zone } => {
            if !form::is_gce_name(instance) {
                c.fail("backend.instance", format!("`{instance}` is not a GCE instance name"));
            }
            if !form::is_gce_zone(zone) {
                c.fail("backend.zone", format!("`{zone}` is not a GCE zone"));
            }
        }
        _ => {}
    }
    if p.backend.kind().is_cloud() && p.ipv6.is_some() {
        c.fail("ipv6", format!("the {} backend routes IPv4 only", p.backend.kind().as_str()));
    }
}

/// Why `ip` cannot be a peer seen from the uplink address `own`: it is this
/// node (the FDB entry would loop its traffic back), or the on-link
/// network's network or broadcast address.
fn own_segment_refusal(own: IpNet, ip: IpAddr) -> Option<String> {
    let net = own.trunc();
    if ip == own.addr() {
        return Some(format!("is this node's own underlay address ({})", own));
    }
    let roomy = own.prefix_len() + 1 < Family::of(ip).bits();
    if roomy && ip == own.network() {
        return Some(format!("is the network address of this node's underlay {net}"));
    }
    if roomy && Family::of(ip) == Family::V4 && ip == own.broadcast() {
        return Some(format!("is the broadcast address of this node's underlay {net}"));
    }
    None
}

fn sysctls(c: &mut Checker, p: &PlanData) {
    let wanted = super::build::sysctls(p);
    let allowed: Vec<String> = wanted.iter().map(|s| s.key.clone()).collect();
    let mut seen = HashSet::new();
    for (i, s) in p.sysctls.iter().enumerate() {
        let Some(w) = wanted.iter().find(|w| w.key == s.key) else {
            c.fail(
                format!("sysctls[{i}].key"),
                format!("`{}` is not a setting this plan's devices call for (allowed: {})", s.key, allowed.join(", ")),
            );
            continue;
        };
        if !seen.insert(&s.key) {
            c.fail(format!("sysctls[{i}].key"), format!("`{}` is set twice", s.key));
        }
        if s.only_from != w.only_from {
            let want = w.only_from.as_deref().map_or("absent".to_string(), |f| format!("`{f}`"));
            c.fail(format!("sysctls[{i}].onlyFrom"), format!("must be {want} for `{}`", s.key));
        }
        let exact = [w.value.as_str()];
        let values: &[&str] = match s.key.rsplit('/').next() {
            Some("rp_filter") => &["0", "1", "2"],
            Some("accept_ra") => &exact,
            _ => &["1"],
        };
        if !values.contains(&s.value.as_str()) {
            c.fail(format!("sysctls[{i}].value"), format!("`{}` is not one of {}", s.value, values.join(", ")));
        }
    }
}
