//! What the kernel has now, as plain data (dumped by [`super::netlink`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::mac::Mac;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveVxlan {
    pub vni: Option<u32>,
    pub port: Option<u16>,
    /// IFLA_VXLAN_LOCAL or LOCAL6.
    pub local: Option<IpAddr>,
    /// Index of the underlay device.
    pub link: Option<u32>,
    pub learning: Option<bool>,
    /// IFLA_VXLAN_GBP; the kernel cannot change it on an existing device.
    pub gbp: Option<bool>,
}

/// IFLA_TUN_* of a TUN/TAP device (`ip -d link` shows the same).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveTun {
    /// IFLA_TUN_TYPE: 1 tun, 2 tap.
    pub tun_type: Option<u8>,
    pub pi: Option<bool>,
    pub multi_queue: Option<bool>,
    pub persist: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveLink {
    pub index: u32,
    pub name: String,
    /// `info_kind` (vxlan, veth, ...); `None` for devices without one.
    pub kind: Option<String>,
    pub vxlan: Option<LiveVxlan>,
    pub tun: Option<LiveTun>,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub up: bool,
    /// IFLA_INET6_ADDR_GEN_MODE; 1 is "none".
    pub addrgen: Option<u8>,
    /// IFLA_IFALIAS: where flannel-gen keeps its ownership marker.
    pub alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRoute {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub onlink: bool,
    /// rtm_protocol (4 = static).
    pub protocol: u8,
    /// rtm_scope: 0 universe (every route flannel-gen makes), 253 link.
    pub scope: u8,
    /// RTA_NH_ID: the route goes through this nexthop object.
    pub nhid: Option<u32>,
    /// RTA_PRIORITY (the metric).
    pub metric: u32,
}

/// A kernel nexthop object (RTM_NEWNEXTHOP) with one gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveNexthop {
    pub id: u32,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// RTNH_F_ONLINK.
    pub onlink: bool,
    pub protocol: u8,
    /// Anything a single-gateway nexthop of flannel-gen's does not have
    /// (a group, blackhole, encapsulation, FDB nexthop).
    pub other: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveNeigh {
    pub ifindex: u32,
    pub ip: IpAddr,
    pub lladdr: Option<Mac>,
    pub permanent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFdb {
    pub ifindex: u32,
    pub lladdr: Mac,
    pub dst: Option<IpAddr>,
    pub permanent: bool,
}

/// The slice of kernel state apply looks at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Live {
    pub links: BTreeMap<String, LiveLink>,
    /// Addresses per interface index (the uplink and owned devices).
    pub addrs: BTreeMap<u32, Vec<IpNet>>,
    /// Unicast routes of the main table, both families.
    pub routes: Vec<LiveRoute>,
    /// Blackhole routes of the main table, both families.
    pub blackholes: Vec<LiveRoute>,
    /// Nexthop objects with ids in flannel-gen's range, by id.
    pub nexthops: BTreeMap<u32, LiveNexthop>,
    /// Neighbours on owned devices.
    pub neighs: Vec<LiveNeigh>,
    /// FDB entries (NTF_SELF) on owned devices.
    pub fdb: Vec<LiveFdb>,
    pub sysctls: BTreeMap<String, String>,
    /// flannel-gen's traffic rules as their tools show them.
    pub rules: super::rules::LiveRules,
    /// Transmit checksum offload of the planned devices that exist.
    pub tx_checksum: BTreeMap<String, bool>,
    /// Userspace WireGuard devices, by name, as their UAPI socket reports them.
    pub wireguard: BTreeMap<String, crate::wireguard::uapi::DeviceConfig>,
    /// The pre-shared keys the desired devices name, by file (what a
    /// device's peers must have).
    pub psk_files: BTreeMap<String, crate::wireguard::key::Key>,
}

impl Live {
    pub fn name_of(&self, index: u32) -> Option<&str> {
        self.links.values().find(|l| l.index == index).map(|l| l.name.as_str())
    }

    pub fn index_of(&self, name: &str) -> Option<u32> {
        self.links.get(name).map(|l| l.index)
    }

    /// Where a route sends traffic: its nexthop object's gateway, device and
    /// onlink flag when it has one, else its own.
    pub fn path_of(&self, r: &LiveRoute) -> (Option<IpAddr>, Option<u32>, bool) {
        match r.nhid {
            Some(id) => self.nexthops.get(&id).map_or((None, None, false), |n| (n.gateway, n.oif, n.onlink)),
            None => (r.gateway, r.oif, r.onlink),
        }
    }

    pub fn addrs_of(&self, index: u32) -> &[IpNet] {
        self.addrs.get(&index).map_or(&[], Vec::as_slice)
    }
}
