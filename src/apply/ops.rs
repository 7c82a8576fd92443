//! The changes apply makes, one per kernel object, printed the way `ip` would.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::mac::Mac;
use crate::plan::{Fdb, Neighbour, Route, VxlanLink};

/// In-place corrections of an existing device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkFix {
    pub mtu: Option<(u32, u32)>,
    pub mac: Option<(Mac, Mac)>,
    pub learning: Option<(bool, bool)>,
    pub addrgen_none: bool,
    pub up: bool,
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
    CreateLink(VxlanLink),
    FixLink {
        name: String,
        fix: LinkFix,
    },
    AddAddress {
        dev: String,
        addr: Ipv4Net,
    },
    DelAddress {
        dev: String,
        addr: Ipv4Net,
    },
    AddNeigh(Neighbour),
    DelNeigh {
        dev: String,
        ip: Ipv4Addr,
        lladdr: Option<Mac>,
    },
    AddFdb(Fdb),
    DelFdb {
        dev: String,
        lladdr: Mac,
        dst: Option<Ipv4Addr>,
    },
    /// Install or switch a route in place (route replace).
    ReplaceRoute {
        route: Route,
        was: Option<String>,
    },
    DelRoute {
        dst: Ipv4Net,
        desc: String,
    },
}

impl Op {
    /// `+` new object, `~` changed in place, `-` removed.
    pub fn sign(&self) -> char {
        match self {
            Op::Sysctl { .. } | Op::FixLink { .. } => '~',
            Op::ReplaceRoute { was: Some(_), .. } => '~',
            Op::CreateLink(_) | Op::AddAddress { .. } | Op::AddNeigh(_) | Op::AddFdb(_) | Op::ReplaceRoute { .. } => {
                '+'
            }
            Op::DeleteLink { .. }
            | Op::DelAddress { .. }
            | Op::DelNeigh { .. }
            | Op::DelFdb { .. }
            | Op::DelRoute { .. } => '-',
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Op::Sysctl { .. } => "sysctl",
            Op::DeleteLink { .. } | Op::CreateLink(_) | Op::FixLink { .. } => "link",
            Op::AddAddress { .. } | Op::DelAddress { .. } => "address",
            Op::AddNeigh(_) | Op::DelNeigh { .. } => "neigh",
            Op::AddFdb(_) | Op::DelFdb { .. } => "fdb",
            Op::ReplaceRoute { .. } | Op::DelRoute { .. } => "route",
        }
    }

    /// The object, without sign and kind.
    pub fn object(&self) -> String {
        match self {
            Op::Sysctl { key, from, to } => format!("{key}={to} (was {from})"),
            Op::DeleteLink { name, why, .. } => format!("{name} ({why})"),
            Op::CreateLink(l) => l.to_string(),
            Op::FixLink { name, fix } => {
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
                if fix.up {
                    parts.push("up".into());
                }
                format!("{name} ({})", parts.join(", "))
            }
            Op::AddAddress { dev, addr } | Op::DelAddress { dev, addr } => {
                format!("{addr} dev {dev}")
            }
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
            Op::ReplaceRoute { route, was: None } => route.to_string(),
            Op::ReplaceRoute { route, was: Some(w) } => format!("{route} (was {w})"),
            Op::DelRoute { desc, .. } => desc.clone(),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.sign(), self.kind(), self.object())
    }
}
