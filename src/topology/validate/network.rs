//! The pod networks: per family, the network, subnet length and the range of
//! subnets that may be handed out, with flanneld's defaults and rules
//! (pkg/subnet/config.go `CheckNetworkConfig`).

use std::net::IpAddr;

use crate::diag::Reporter;
use crate::netaddr::{self, Family, PerFamily, SubnetPool, from_bits, subnet_size, to_bits};
use crate::topology::RouteStyle;
use crate::topology::schema::{S, TopologyDoc};

/// The keys that describe one family's network, and their names in the file.
struct Keys<'a> {
    family: Family,
    network: Option<&'a S<String>>,
    len: Option<&'a S<u64>>,
    min: Option<&'a S<String>>,
    max: Option<&'a S<String>>,
    names: [&'static str; 4],
}

/// Which families the topology asks for (its network key is present, valid or not).
pub fn requested(doc: &TopologyDoc) -> PerFamily<()> {
    PerFamily { v4: doc.network.as_ref().map(|_| ()), v6: doc.ipv6_network.as_ref().map(|_| ()) }
}

pub fn pools(r: &mut Reporter, doc: &TopologyDoc) -> PerFamily<SubnetPool> {
    let v4 = Keys {
        family: Family::V4,
        network: doc.network.as_ref(),
        len: doc.subnet_len.as_ref(),
        min: doc.subnet_min.as_ref(),
        max: doc.subnet_max.as_ref(),
        names: ["network", "subnetLen", "subnetMin", "subnetMax"],
    };
    let v6 = Keys {
        family: Family::V6,
        network: doc.ipv6_network.as_ref(),
        len: doc.ipv6_subnet_len.as_ref(),
        min: doc.ipv6_subnet_min.as_ref(),
        max: doc.ipv6_subnet_max.as_ref(),
        names: ["ipv6Network", "ipv6SubnetLen", "ipv6SubnetMin", "ipv6SubnetMax"],
    };
    if doc.network.is_none() && doc.ipv6_network.is_none() {
        r.error(doc.cluster.pos, "network", "required key `network` is missing (or `ipv6Network` for IPv6-only)");
    }
    let mut pools = PerFamily::default();
    for keys in [v4, v6] {
        let family = keys.family;
        pools.set(family, pool(r, &keys));
    }
    pools
}

fn pool(r: &mut Reporter, k: &Keys) -> Option<SubnetPool> {
    let Some(net_s) = k.network else {
        for (v, name) in [(k.min, k.names[2]), (k.max, k.names[3])] {
            if let Some(v) = v {
                r.error(v.pos, name, format!("`{name}` needs `{}`", k.names[0]));
            }
        }
        return None;
    };
    let network = match netaddr::parse_cidr(&net_s.value, false) {
        Ok(n) if netaddr::Family::of_net(&n) != k.family => {
            let other = if k.family == Family::V4 { "ipv6Network" } else { "network" };
            r.error(net_s.pos, k.names[0], format!("`{n}` is not {}; put it in `{other}`", k.family));
            return None;
        }
        Ok(n) => n,
        Err(m) => {
            r.error(net_s.pos, k.names[0], m);
            return None;
        }
    };
    if let Some(why) = netaddr::pod_network_refusal(network) {
        r.error(net_s.pos, k.names[0], why);
        return None;
    }
    let len = subnet_len(r, k, net_s, network.prefix_len())?;
    bounds(r, k, network, len)
}

/// flanneld: 0 or absent means the default (/24, or prefix+2 for small
/// networks); otherwise at most /30 (/126) and at least prefix+2, as the
/// first subnet is never used and a network must hold four.
fn subnet_len(r: &mut Reporter, k: &Keys, net_s: &S<String>, prefix: u8) -> Option<u8> {
    let (max_len, usual, small) = match k.family {
        Family::V4 => (30u8, 24u8, 22u8),
        Family::V6 => (126, 64, 62),
    };
    match k.len.filter(|l| l.value != 0) {
        Some(l) => {
            let lo = u64::from(prefix) + 2;
            if l.value < lo || l.value > u64::from(max_len) {
                r.error(
                    l.pos,
                    k.names[1],
                    format!(
                        "{} is outside {lo}..={max_len}: the network must hold at least four subnets and each subnet at least four addresses",
                        l.value
                    ),
                );
                return None;
            }
            // In range of u8 by the check above.
            Some(l.value as u8)
        }
        None if prefix <= small => Some(usual),
        None if prefix + 2 <= max_len => Some(prefix + 2),
        None => {
            r.error(
                net_s.pos,
                k.names[0],
                format!("network is too small to hold node subnets (prefix must be /{} or shorter)", max_len - 2),
            );
            None
        }
    }
}

/// subnetMin/subnetMax: flannel's defaults are the second and the last subnet.
fn bounds(r: &mut Reporter, k: &Keys, network: ipnet::IpNet, len: u8) -> Option<SubnetPool> {
    let step = subnet_size(k.family, len);
    let first = to_bits(network.network());
    let last = to_bits(network.broadcast()) - (step - 1);
    let min = bound(r, k.min, k.names[2], network, len, first + step.min(last - first))?;
    let max = bound(r, k.max, k.names[3], network, len, last)?;
    if min > max {
        let at = k.min.or(k.max).map(|v| v.pos).unwrap_or_default();
        let (a, b) = (from_bits(k.family, min), from_bits(k.family, max));
        r.error(at, k.names[2], format!("{} {a} is above {} {b}", k.names[2], k.names[3]));
        return None;
    }
    Some(SubnetPool { network, len, min: from_bits(k.family, min), max: from_bits(k.family, max) })
}

/// One bound: an address, or a `/len` CIDR, aligned and inside the network.
fn bound(
    r: &mut Reporter,
    v: Option<&S<String>>,
    field: &str,
    network: ipnet::IpNet,
    len: u8,
    default: u128,
) -> Option<u128> {
    let Some(v) = v else { return Some(default) };
    let text = v.value.trim();
    let addr = match text.split_once('/') {
        Some((_, l)) if l.parse::<u8>().ok() != Some(len) => {
            r.error(v.pos, field, format!("`{text}` must be a /{len} (the subnet length) or a bare address"));
            return None;
        }
        Some((a, _)) => netaddr::parse_ip(a),
        None => netaddr::parse_ip(text),
    };
    let addr: IpAddr = match addr {
        Ok(a) => a,
        Err(m) => {
            r.error(v.pos, field, m);
            return None;
        }
    };
    let step = subnet_size(Family::of_net(&network), len);
    let a = to_bits(addr);
    if !network.contains(&addr) {
        r.error(v.pos, field, format!("{addr} is outside the network {network}"));
        None
    } else if !(a - to_bits(network.network())).is_multiple_of(step) {
        r.error(v.pos, field, format!("{addr} is not aligned to a /{len} subnet"));
        None
    } else {
        Some(a)
    }
}

/// With routeStyle nexthop a nexthop's id holds its subnet's index in the
/// network ([`RouteStyle::NEXTHOP_INDEX_BITS`] bits).
pub fn nexthop_ids(r: &mut Reporter, doc: &TopologyDoc, pools: &PerFamily<SubnetPool>, style: RouteStyle) {
    if style != RouteStyle::Nexthop {
        return;
    }
    let bits = RouteStyle::NEXTHOP_INDEX_BITS;
    for (f, pool) in pools.iter() {
        let index_bits = u32::from(pool.len.saturating_sub(pool.network.prefix_len()));
        if index_bits <= bits {
            continue;
        }
        let (at, field) = match f {
            Family::V4 => (doc.network.as_ref(), "network"),
            Family::V6 => (doc.ipv6_network.as_ref(), "ipv6Network"),
        };
        let at = at.map(|v| v.pos).or_else(|| doc.backend.value.route_style.as_ref().map(|v| v.pos));
        if let Some(at) = at {
            r.error(
                at,
                field,
                format!(
                    "{} holds 2^{index_bits} subnets; routeStyle nexthop numbers them in {bits} bits: use a longer network prefix, or routeStyle: plain",
                    pool.network
                ),
            );
        }
    }
}
