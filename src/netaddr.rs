//! IP address rules shared by the topology, the lock file and the plan reader:
//! strict parsing, which addresses may be an underlay host or a pod network,
//! and family-independent arithmetic on subnets (addresses as `u128`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// An address family. flannel runs each one with its own network, subnets,
/// device and VTEP MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[serde(rename = "ipv4")]
    V4,
    #[serde(rename = "ipv6")]
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    pub fn of_net(net: &IpNet) -> Family {
        Family::of(net.addr())
    }

    /// Address width in bits.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value per address family; either may be absent (IPv4-only, IPv6-only, dual-stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PerFamily<T> {
    pub v4: Option<T>,
    pub v6: Option<T>,
}

impl<T> Default for PerFamily<T> {
    fn default() -> Self {
        PerFamily { v4: None, v6: None }
    }
}

impl<T> PerFamily<T> {
    pub fn get(&self, f: Family) -> Option<&T> {
        match f {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }

    pub fn set(&mut self, f: Family, v: Option<T>) {
        match f {
            Family::V4 => self.v4 = v,
            Family::V6 => self.v6 = v,
        }
    }

    /// The families that have a value, IPv4 first.
    pub fn iter(&self) -> impl Iterator<Item = (Family, &T)> {
        self.v4.iter().map(|v| (Family::V4, v)).chain(self.v6.iter().map(|v| (Family::V6, v)))
    }
}

/// An address as an integer, for arithmetic that works the same in both families.
pub fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of `family` with integer value `bits` (truncated to the family's width).
pub fn from_bits(family: Family, bits: u128) -> IpAddr {
    match family {
        // Truncation is the point: callers stay inside the family's range.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

/// Addresses in a subnet of prefix `len` (as a u128; a /0 of IPv6 saturates).
pub fn subnet_size(family: Family, len: u8) -> u128 {
    let host = u32::from(family.bits().saturating_sub(len));
    1u128.checked_shl(host).unwrap_or(u128::MAX)
}

/// The subnet's first host: flannel's gateway (`.1`, or `::1` in the subnet).
pub fn first_host(net: IpNet) -> IpAddr {
    from_bits(Family::of_net(&net), to_bits(net.network()) + 1)
}

/// Why a text is not the address or network it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("`{0}` has an octet with a leading zero (ambiguous: octal to some tools, decimal to others)")]
    LeadingZero(String),
    #[error("`{0}` is not an IPv4 address")]
    NotIpv4(String),
    #[error("`{0}` is not an IPv6 address")]
    NotIpv6(String),
    #[error("`{text}` needs a prefix length, e.g. `{text}/{len}`")]
    NeedsPrefix { text: String, len: u8 },
    #[error("`{0}` is not a CIDR (expected e.g. 10.244.0.0/16)")]
    NotCidr(String),
    #[error("`{0}` has an invalid prefix length")]
    BadPrefix(String),
    #[error("`{text}` has host bits set (did you mean `{network}`?)")]
    HostBits { text: String, network: IpNet },
}

/// Parses an IPv4 address in strict dotted-quad form. Leading zeros are
/// refused: some tools read `010` as octal 8, others as decimal 10.
pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr, AddrError> {
    let octets: Vec<&str> = s.split('.').collect();
    if octets.iter().any(|o| o.len() > 1 && o.starts_with('0') && o.bytes().all(|b| b.is_ascii_digit())) {
        return Err(AddrError::LeadingZero(s.to_string()));
    }
    let digits = octets.len() == 4 && octets.iter().all(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()));
    if !digits {
        return Err(AddrError::NotIpv4(s.to_string()));
    }
    s.parse().map_err(|_| AddrError::NotIpv4(s.to_string()))
}

/// Parses an address of either family (IPv4 strictly, see [`parse_ipv4`]).
pub fn parse_ip(s: &str) -> Result<IpAddr, AddrError> {
    if s.contains(':') {
        return s.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| AddrError::NotIpv6(s.to_string()));
    }
    parse_ipv4(s).map(IpAddr::V4)
}

/// Parses `ADDR/LEN` of either family; `host_bits` says whether bits right
/// of the prefix may be set (an interface address) or not (a network).
pub fn parse_cidr(s: &str, host_bits: bool) -> Result<IpNet, AddrError> {
    let s = s.trim();
    let Some((addr, len)) = s.split_once('/') else {
        return Err(match parse_ip(s) {
            Ok(a) => AddrError::NeedsPrefix { text: s.to_string(), len: if a.is_ipv6() { 64 } else { 24 } },
            Err(_) => AddrError::NotCidr(s.to_string()),
        });
    };
    let addr = parse_ip(addr).map_err(|e| match e {
        AddrError::LeadingZero(_) => e,
        _ => AddrError::NotCidr(s.to_string()),
    })?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= Family::of(addr).bits() && (len.len() == 1 || !len.starts_with('0')))
        .ok_or_else(|| AddrError::BadPrefix(s.to_string()))?;
    let net = IpNet::new(addr, len).map_err(|_| AddrError::BadPrefix(s.to_string()))?;
    if !host_bits && net.trunc() != net {
        return Err(AddrError::HostBits { text: s.to_string(), network: net.trunc() });
    }
    Ok(net)
}

/// Why `ip` cannot be a node's underlay address, if it cannot.
pub fn underlay_refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => {
            let first = a.octets()[0];
            if first == 0 {
                Some("is in 0.0.0.0/8 (\"this network\"), not a host address")
            } else if a.is_loopback() {
                Some("is a loopback address")
            } else if a.is_multicast() {
                Some("is a multicast address")
            } else if a.is_broadcast() || first >= 240 {
                Some("is in the reserved range 240.0.0.0/4 (or the broadcast address)")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            if a.is_unspecified() {
                Some("is the unspecified address")
            } else if a.is_loopback() {
                Some("is the loopback address")
            } else if a.is_multicast() {
                Some("is a multicast address")
            } else if a.is_unicast_link_local() {
                Some("is link-local; VXLAN and routes need a global or unique-local address")
            } else if a.to_ipv4_mapped().is_some() {
                Some("is an IPv4-mapped address; give the IPv4 address as `ip` instead")
            } else {
                None
            }
        }
    }
}

/// Ranges no pod network may overlap, with why.
const RESERVED_V4: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this network\""),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
];
const RESERVED_V6: &[(&str, &str)] = &[
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    // Addresses that stand for IPv4 ones (RFC 4291 2.5.5.2, RFC 6052): the
    // kernel and every peer treat them as IPv4 traffic, never as pods.
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("64:ff9b::/96", "NAT64 well-known"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
];

/// Why `net` cannot be a pod network, if it cannot.
pub fn pod_network_refusal(net: IpNet) -> Option<String> {
    let table = match net {
        IpNet::V4(_) => RESERVED_V4,
        IpNet::V6(_) => RESERVED_V6,
    };
    table.iter().find_map(|(cidr, what)| {
        let r: IpNet = cidr.parse().ok()?;
        overlaps(net, r).then(|| format!("{net} overlaps the {what} range {r}"))
    })
}

/// Whether two networks share any address.
pub fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

pub fn v4(net: IpNet) -> Option<Ipv4Net> {
    match net {
        IpNet::V4(n) => Some(n),
        IpNet::V6(_) => None,
    }
}

pub fn v6(net: IpNet) -> Option<Ipv6Net> {
    match net {
        IpNet::V6(n) => Some(n),
        IpNet::V4(_) => None,
    }
}

/// Where node subnets come from: `network` cut into `/len` subnets, of which
/// `min..=max` (subnet network addresses) may be handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetPool {
    pub network: IpNet,
    pub len: u8,
    pub min: IpAddr,
    pub max: IpAddr,
}

impl SubnetPool {
    pub fn family(&self) -> Family {
        Family::of_net(&self.network)
    }

    pub fn step(&self) -> u128 {
        subnet_size(self.family(), self.len)
    }

    /// How many subnets lie in min..=max (saturating).
    pub fn capacity(&self) -> u128 {
        let span = to_bits(self.max).saturating_sub(to_bits(self.min));
        (span / self.step()).saturating_add(1)
    }

    /// The subnet at `bits` (its network address).
    pub fn subnet_at(&self, bits: u128) -> IpNet {
        // `len` was validated against the family width.
        IpNet::new(from_bits(self.family(), bits), self.len).unwrap_or(self.network)
    }

    /// Why `s` cannot be a node subnet of this pool, if it cannot.
    pub fn refusal(&self, s: IpNet) -> Option<String> {
        let (net, len, min, max) = (self.network, self.len, self.min, self.max);
        if Family::of_net(&s) != self.family() {
            Some(format!("{s} is not {}", self.family()))
        } else if !net.contains(&s) {
            Some(format!("{s} is outside the network {net}"))
        } else if s.prefix_len() != len {
            Some(format!("{s} is a /{} but the subnet length is {len}", s.prefix_len()))
        } else if s.trunc() != s {
            Some(format!("{s} has host bits set"))
        } else if s.network() < min || s.network() > max {
            Some(format!("{s} is outside the allocatable range {min}..{max}"))
        } else {
            None
        }
    }
}

/// Below this MTU the kernel turns IPv6 off on a device and refuses IPv6
/// settings (addrgenmode) on it with EAFNOSUPPORT: an IPv4 overlay on a
/// small underlay MTU simply has none.
pub const IPV6_MIN_MTU: u32 = 1280;

/// Whether a device of this MTU takes IPv6 settings at all.
pub fn takes_ipv6_settings(mtu: u32) -> bool {
    mtu >= IPV6_MIN_MTU
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zeros_are_refused() {
        assert!(matches!(parse_cidr("192.168.077.015/24", true), Err(AddrError::LeadingZero(_))));
        assert!(parse_cidr("010.0.0.0/8", false).is_err());
        assert!(parse_cidr("10.0.0.0/08", false).is_err());
        assert_eq!(parse_cidr("10.0.0.0/8", false), Ok("10.0.0.0/8".parse().expect("net")));
        assert_eq!(parse_ip("0.0.0.0"), Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    }

    #[test]
    fn underlay_classes() {
        for bad in ["127.0.0.1", "224.0.0.5", "0.1.2.3", "255.255.255.255", "240.0.0.1", "::1", "ff02::1", "fe80::1"] {
            assert!(underlay_refusal(bad.parse().expect("ip")).is_some(), "{bad}");
        }
        for good in ["192.168.1.1", "10.0.0.1", "169.254.3.3", "fd00::1", "2001:db8::1"] {
            assert_eq!(underlay_refusal(good.parse().expect("ip")), None, "{good}");
        }
    }

    #[test]
    fn pod_networks_avoid_reserved_ranges() {
        assert!(pod_network_refusal("224.0.0.0/8".parse().expect("n")).is_some());
        assert!(pod_network_refusal("127.16.0.0/16".parse().expect("n")).is_some());
        assert!(pod_network_refusal("0.0.0.0/0".parse().expect("n")).is_some());
        assert!(pod_network_refusal("10.244.0.0/16".parse().expect("n")).is_none());
        assert!(pod_network_refusal("fd00:10:244::/56".parse().expect("n")).is_none());
    }

    #[test]
    fn pool_arithmetic_in_both_families() {
        let p = SubnetPool {
            network: "10.244.0.0/16".parse().expect("n"),
            len: 24,
            min: "10.244.1.0".parse().expect("a"),
            max: "10.244.255.0".parse().expect("a"),
        };
        assert_eq!(p.capacity(), 255);
        assert_eq!(p.refusal("10.244.3.0/25".parse().expect("n")).map(|m| m.contains("/25")), Some(true));
        let p6 = SubnetPool {
            network: "fd00::/48".parse().expect("n"),
            len: 64,
            min: "fd00:0:0:1::".parse().expect("a"),
            max: "fd00:0:0:ffff::".parse().expect("a"),
        };
        assert_eq!(p6.capacity(), 65535);
        assert_eq!(first_host("fd00:0:0:5::/64".parse().expect("n")).to_string(), "fd00:0:0:5::1");
    }
}
