//! What the kernel has now, as plain data (dumped by [`super::netlink`]).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::mac::Mac;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveVxlan {
    pub vni: Option<u32>,
    pub port: Option<u16>,
    pub local: Option<Ipv4Addr>,
    /// Index of the underlay device.
    pub link: Option<u32>,
    pub learning: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveLink {
    pub index: u32,
    pub name: String,
    /// `info_kind` (vxlan, veth, ...); `None` for devices without one.
    pub kind: Option<String>,
    pub vxlan: Option<LiveVxlan>,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub up: bool,
    /// IFLA_INET6_ADDR_GEN_MODE; 1 is "none".
    pub addrgen: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRoute {
    pub dst: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub oif: Option<u32>,
    pub onlink: bool,
    /// rtm_protocol (4 = static).
    pub protocol: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveNeigh {
    pub ip: Ipv4Addr,
    pub lladdr: Option<Mac>,
    pub permanent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFdb {
    pub lladdr: Mac,
    pub dst: Option<Ipv4Addr>,
    pub permanent: bool,
}

/// The slice of kernel state apply looks at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Live {
    pub links: BTreeMap<String, LiveLink>,
    /// IPv4 addresses per interface index.
    pub addrs: BTreeMap<u32, Vec<Ipv4Net>>,
    /// IPv4 unicast routes of the main table.
    pub routes: Vec<LiveRoute>,
    /// IPv4 neighbours on the flannel device.
    pub neighs: Vec<LiveNeigh>,
    /// FDB entries (NTF_SELF) on the flannel device.
    pub fdb: Vec<LiveFdb>,
    pub sysctls: BTreeMap<String, String>,
}

impl Live {
    pub fn name_of(&self, index: u32) -> Option<&str> {
        self.links.values().find(|l| l.index == index).map(|l| l.name.as_str())
    }
}
