//! Kernel constants the reconciler, the desired state and the changes all
//! speak: one home below them, so none imports another for a number.

use ipnet::IpNet;

use crate::plan::objects::Scope;

/// rtm_protocol of the routes flannel-gen installs (networkd's and `ip`'s `static`).
pub const ROUTE_PROTOCOL_STATIC: u8 = 4;
/// RTPROT_BOOT: flanneld's routes (vishvananda/netlink's `NewRtMsg`
/// default), and flannel-gen's with `routeStyle: plain`.
pub const ROUTE_PROTOCOL_BOOT: u8 = 3;
/// RT_SCOPE_UNIVERSE: the scope of every route flannel-gen (and flanneld)
/// makes but wireguard's network route.
pub const ROUTE_SCOPE_UNIVERSE: u8 = 0;
/// RT_SCOPE_LINK: wireguard's network route.
pub const ROUTE_SCOPE_LINK: u8 = 253;

/// rtm_scope of a planned route.
pub fn route_scope(s: Scope) -> u8 {
    match s {
        Scope::Global => ROUTE_SCOPE_UNIVERSE,
        Scope::Link => ROUTE_SCOPE_LINK,
    }
}

/// A live route's scope as a planned one; `None` for any other (host, site).
pub fn planned_scope(rtm: u8) -> Option<Scope> {
    match rtm {
        ROUTE_SCOPE_UNIVERSE => Some(Scope::Global),
        ROUTE_SCOPE_LINK => Some(Scope::Link),
        _ => None,
    }
}
/// IN6_ADDR_GEN_MODE_NONE: no IPv6 link-local address on the overlay device.
pub const ADDRGEN_NONE: u8 = 1;

/// The metric a route gets when none is given: 0 for IPv4, 1024 for IPv6
/// (net/ipv6/route.c `IP6_RT_PRIO_USER`). flannel-gen's and flanneld's
/// routes carry it; a route with another metric is someone else's.
pub fn default_metric(dst: &IpNet) -> u32 {
    if dst.addr().is_ipv4() { 0 } else { 1024 }
}

/// A route protocol the way `ip route` names it (rt_protos).
pub fn protocol_name(p: u8) -> String {
    match p {
        0 => "unspec".into(),
        1 => "redirect".into(),
        2 => "kernel".into(),
        3 => "boot".into(),
        4 => "static".into(),
        8 => "gated".into(),
        9 => "ra".into(),
        11 => "zebra".into(),
        12 => "bird".into(),
        16 => "dhcp".into(),
        18 => "keepalived".into(),
        42 => "babel".into(),
        186 => "bgp".into(),
        187 => "isis".into(),
        188 => "ospf".into(),
        189 => "rip".into(),
        192 => "eigrp".into(),
        n => n.to_string(),
    }
}
