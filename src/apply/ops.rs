//! The changes apply makes, one per kernel object, printed the way `ip`
//! would, and the stage each runs in.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::mac::Mac;
use crate::netaddr::Family;
use crate::plan::objects::{Fdb, Neighbour, Route, TunDevice, VxlanDevice, WireguardDevice};
use crate::topology::RulesBackend;

/// In-place corrections of an existing device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkFix {
    pub mtu: Option<(u32, u32)>,
    pub mac: Option<(Mac, Mac)>,
    pub learning: Option<(bool, bool)>,
    pub addrgen_none: bool,
    /// Set the device up (or down, restoring a snapshot).
    pub up: Option<bool>,
    /// The alias, from -> to: flannel-gen's marker when adopting a device.
    pub alias: Option<(Option<String>, Option<String>)>,
    /// Transmit checksum offload.
    pub tx_checksum: Option<(bool, bool)>,
}

/// One owned iptables chain or nftables table made exactly as planned, or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesChange {
    pub backend: RulesBackend,
    pub family: Family,
    /// `nat FLANNEL-POSTRTG`, `ip flannel-ipv4`.
    pub target: String,
    pub count: usize,
    /// How many rules there were, when the chain or table existed.
    pub was: Option<usize>,
    /// What `iptables-restore --noflush` or `nft -f -` is fed: one commit.
    pub payload: String,
}

impl LinkFix {
    pub fn is_empty(&self) -> bool {
        *self == LinkFix::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Sysctl {
        key: String,
        from: String,
        to: String,
    },
    /// Delete a device we own: to replace it (before anything else), or
    /// because the plan has none (after routes moved off it).
    DeleteLink {
        name: String,
        why: String,
        replacing: bool,
    },
    CreateLink {
        device: VxlanDevice,
        /// flannel-gen's marker (or none, restoring an unmarked device).
        alias: Option<String>,
        up: bool,
    },
    /// The udp backend's persistent TUN device (ioctl, then netlink).
    CreateTun {
        device: TunDevice,
        alias: Option<String>,
        up: bool,
    },
    /// A userspace WireGuard device: its implementation started (it makes
    /// the device and its UAPI socket), then configured as `ConfigureWireguard`.
    CreateWireguard {
        device: WireguardDevice,
        alias: Option<String>,
        up: bool,
    },
    /// The device's key, port and peers set over its UAPI socket, replacing
    /// what it had.
    ConfigureWireguard {
        device: WireguardDevice,
        why: String,
    },
    FixLink {
        name: String,
        fix: LinkFix,
    },
    AddAddress {
        dev: String,
        addr: IpNet,
    },
    DelAddress {
        dev: String,
        addr: IpNet,
    },
    AddNeigh(Neighbour),
    DelNeigh {
        dev: String,
        ip: IpAddr,
        lladdr: Option<Mac>,
    },
    AddFdb(Fdb),
    DelFdb {
        dev: String,
        lladdr: Mac,
        dst: Option<IpAddr>,
    },
    /// Install or switch a route in place (route replace).
    ReplaceRoute {
        route: Route,
        /// rtm_protocol: static, or what a restored snapshot had.
        protocol: u8,
        /// The nexthop object's (`route.nhid`), usually the same.
        nexthop_protocol: u8,
        was: Option<String>,
    },
    DelRoute {
        dst: IpNet,
        desc: String,
    },
    /// `route replace blackhole DST metric BLACKHOLE_METRIC`.
    AddBlackhole {
        dst: IpNet,
    },
    DelBlackhole {
        dst: IpNet,
    },
    /// A nexthop object no planned route uses (after the routes moved off it).
    DelNexthop {
        id: u32,
        desc: String,
    },
    SetRules(RulesChange),
    DelRules(RulesChange),
}

/// When an op runs. Stages run in this order; ops within a stage are
/// independent of each other and may be pipelined, except link creation and
/// deletion, which run one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Devices in the way go first, taking what is on them along.
    ReplaceLinks,
    CreateLinks,
    /// Per-device settings need the device.
    Settings,
    /// Masquerade and forward rules, before any route carries traffic.
    Rules,
    Addresses,
    /// Every neighbour and FDB entry before any route that needs them.
    NeighboursAndFdb,
    Routes,
    PruneRoutes,
    /// Nexthops no planned route goes through, then neighbours and FDB
    /// entries no route needs any more.
    PruneNeighboursAndFdb,
    /// Unplanned devices last, once no route points at them.
    DeleteLinks,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::ReplaceLinks,
        Stage::CreateLinks,
        Stage::Settings,
        Stage::Rules,
        Stage::Addresses,
        Stage::NeighboursAndFdb,
        Stage::Routes,
        Stage::PruneRoutes,
        Stage::PruneNeighboursAndFdb,
        Stage::DeleteLinks,
    ];

    /// Link creation and deletion change the name -> index map: one at a time.
    pub fn sequential(self) -> bool {
        matches!(self, Stage::ReplaceLinks | Stage::CreateLinks | Stage::DeleteLinks)
    }
}

impl Op {
    pub fn stage(&self) -> Stage {
        match self {
            Op::DeleteLink { replacing: true, .. } => Stage::ReplaceLinks,
            Op::CreateLink { .. } | Op::CreateTun { .. } | Op::CreateWireguard { .. } => Stage::CreateLinks,
            Op::Sysctl { .. } | Op::FixLink { .. } | Op::ConfigureWireguard { .. } => Stage::Settings,
            Op::SetRules(_) => Stage::Rules,
            Op::DelRules(_) => Stage::PruneRoutes,
            Op::AddAddress { .. } => Stage::Addresses,
            Op::AddNeigh(_) | Op::AddFdb(_) => Stage::NeighboursAndFdb,
            Op::ReplaceRoute { .. } | Op::AddBlackhole { .. } => Stage::Routes,
            Op::DelRoute { .. } | Op::DelBlackhole { .. } | Op::DelAddress { .. } => Stage::PruneRoutes,
            Op::DelFdb { .. } | Op::DelNeigh { .. } | Op::DelNexthop { .. } => Stage::PruneNeighboursAndFdb,
            Op::DeleteLink { replacing: false, .. } => Stage::DeleteLinks,
        }
    }

    /// `+` new object, `~` changed in place, `-` removed.
    pub fn sign(&self) -> char {
        match self {
            Op::Sysctl { .. }
            | Op::FixLink { .. }
            | Op::ConfigureWireguard { .. }
            | Op::ReplaceRoute { was: Some(_), .. } => '~',
            Op::SetRules(r) if r.was.is_some() => '~',
            Op::SetRules(_) => '+',
            Op::DelRules(_) => '-',
            Op::CreateLink { .. }
            | Op::CreateTun { .. }
            | Op::CreateWireguard { .. }
            | Op::AddAddress { .. }
            | Op::AddNeigh(_)
            | Op::AddFdb(_)
            | Op::ReplaceRoute { .. }
            | Op::AddBlackhole { .. } => '+',
            Op::DeleteLink { .. }
            | Op::DelAddress { .. }
            | Op::DelNeigh { .. }
            | Op::DelFdb { .. }
            | Op::DelRoute { .. }
            | Op::DelBlackhole { .. }
            | Op::DelNexthop { .. } => '-',
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Op::Sysctl { .. } => "sysctl",
            Op::DeleteLink { .. }
            | Op::CreateLink { .. }
            | Op::CreateTun { .. }
            | Op::CreateWireguard { .. }
            | Op::FixLink { .. } => "link",
            Op::ConfigureWireguard { .. } => "wireguard",
            Op::AddAddress { .. } | Op::DelAddress { .. } => "address",
            Op::AddNeigh(_) | Op::DelNeigh { .. } => "neigh",
            Op::AddFdb(_) | Op::DelFdb { .. } => "fdb",
            Op::ReplaceRoute { .. } | Op::DelRoute { .. } | Op::AddBlackhole { .. } | Op::DelBlackhole { .. } => {
                "route"
            }
            Op::DelNexthop { .. } => "nexthop",
            Op::SetRules(_) | Op::DelRules(_) => "rules",
        }
    }

    /// The object, without sign and kind.
    pub fn object(&self) -> String {
        match self {
            Op::Sysctl { key, from, to } => format!("{key}={to} (was {from})"),
            Op::AddBlackhole { dst } | Op::DelBlackhole { dst } => {
                format!("blackhole {dst} metric {}", crate::plan::objects::BLACKHOLE_METRIC)
            }
            Op::DeleteLink { name, why, .. } => format!("{name} ({why})"),
            Op::CreateLink { device, .. } => device.to_string(),
            Op::CreateTun { device, .. } => device.to_string(),
            Op::CreateWireguard { device, .. } => {
                format!("{} type wireguard (userspace) mtu {} listen-port {}", device.name, device.mtu, device.port)
            }
            Op::ConfigureWireguard { device, why } => {
                format!("{} listen-port {}, {} peers ({why})", device.name, device.port, device.peers.len())
            }
            Op::FixLink { name, fix } => format!("{name} ({})", fix_parts(fix).join(", ")),
            Op::AddAddress { dev, addr } | Op::DelAddress { dev, addr } => format!("{addr} dev {dev}"),
            Op::AddNeigh(n) => n.to_string(),
            Op::DelNeigh { dev, ip, lladdr } => match lladdr {
                Some(m) => format!("{ip} lladdr {m} dev {dev}"),
                None => format!("{ip} dev {dev}"),
            },
            Op::AddFdb(f) => f.to_string(),
            Op::DelFdb { dev, lladdr, dst } => match dst {
                Some(d) => format!("{lladdr} dst {d} dev {dev} self"),
                None => format!("{lladdr} dev {dev} self"),
            },
            Op::ReplaceRoute { route, protocol, was, .. } => {
                let mut s = route.to_string();
                if *protocol != crate::apply::kernel::ROUTE_PROTOCOL_STATIC {
                    s.push_str(&format!(" proto {}", crate::apply::kernel::protocol_name(*protocol)));
                }
                if let Some(w) = was {
                    s.push_str(&format!(" (was {w})"));
                }
                s
            }
            Op::DelRoute { desc, .. } | Op::DelNexthop { desc, .. } => desc.clone(),
            Op::SetRules(r) => match r.was {
                Some(was) => format!("{} {} ({} rules, was {was})", r.backend.as_str(), r.target, r.count),
                None => format!("{} {} ({} rules)", r.backend.as_str(), r.target, r.count),
            },
            Op::DelRules(r) => format!("{} {}", r.backend.as_str(), r.target),
        }
    }
}

fn fix_parts(fix: &LinkFix) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some((a, b)) = fix.mtu {
        parts.push(format!("mtu {a}→{b}"));
    }
    if let Some((a, b)) = fix.mac {
        parts.push(format!("address {a}→{b}"));
    }
    if let Some((a, b)) = fix.learning {
        parts.push(format!("learning {a}→{b}"));
    }
    if fix.addrgen_none {
        parts.push("addrgenmode none".into());
    }
    match fix.up {
        Some(true) => parts.push("up".into()),
        Some(false) => parts.push("down".into()),
        None => {}
    }
    if let Some((a, b)) = fix.tx_checksum {
        let onoff = |v: bool| if v { "on" } else { "off" };
        parts.push(format!("tx-checksum-ip-generic {}→{}", onoff(a), onoff(b)));
    }
    match &fix.alias {
        Some((None, Some(m))) => parts.push(format!("adopted, alias \"{m}\"")),
        Some((_, Some(m))) => parts.push(format!("alias \"{m}\"")),
        Some((_, None)) => parts.push("alias cleared".into()),
        None => {}
    }
    parts
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.sign(), self.kind(), self.object())
    }
}
