//! The source language: a cluster topology file, parsed with locations
//! ([`schema`], [`parse`]) and validated into a typed [`Cluster`] ([`validate`]).

pub mod netconf;
pub mod parse;
pub mod schema;
pub mod validate;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostics, Pos};
use crate::mac::Mac;

/// flanneld's defaults, and the kernel's VXLAN port that flannel relies on.
pub const DEFAULT_VNI: u32 = 1;
pub const DEFAULT_PORT: u16 = 8472;
pub const DEFAULT_INTERFACE: &str = "eth0";
pub const DEFAULT_MTU: u32 = 1500;
/// Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers.
pub const VXLAN_OVERHEAD: u32 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    Vxlan,
    HostGw,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Vxlan => "vxlan",
            BackendKind::HostGw => "host-gw",
        }
    }

    /// Bytes the encapsulation takes from the underlay MTU.
    pub fn overhead(self) -> u32 {
        match self {
            BackendKind::Vxlan => VXLAN_OVERHEAD,
            BackendKind::HostGw => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub kind: BackendKind,
    pub vni: u32,
    pub port: u16,
    pub direct_routing: bool,
}

/// A validated cluster: every value typed and every rule checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub source: PathBuf,
    pub name: String,
    pub network: Ipv4Net,
    pub subnet_len: u8,
    /// First and last subnet that may be allocated (network addresses).
    pub subnet_min: Ipv4Addr,
    pub subnet_max: Ipv4Addr,
    pub ip_masq: bool,
    pub backend: Backend,
    /// Underlay MTU.
    pub mtu: u32,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Position in the file's `nodes` list, for error messages.
    pub index: usize,
    pub name: String,
    /// Underlay address with its prefix, e.g. `192.168.31.61/24`.
    pub ip: Ipv4Net,
    pub interface: String,
    pub subnet: Option<Ipv4Net>,
    pub vtep_mac: Option<Mac>,
    pub pos: Pos,
}

impl Node {
    pub fn addr(&self) -> Ipv4Addr {
        self.ip.addr()
    }

    /// The L2 segment: nodes on the same one reach each other without a router.
    pub fn segment(&self) -> Ipv4Net {
        self.ip.trunc()
    }
}

impl Cluster {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// MTU of the flannel device and of pods.
    pub fn pod_mtu(&self) -> u32 {
        self.mtu - self.backend.kind.overhead()
    }

    /// How many subnets lie in subnetMin..=subnetMax.
    pub fn subnet_capacity(&self) -> u64 {
        subnet_capacity(self.subnet_min, self.subnet_max, self.subnet_len)
    }
}

/// How many /len subnets lie in min..=max (both subnet network addresses).
pub fn subnet_capacity(min: Ipv4Addr, max: Ipv4Addr, len: u8) -> u64 {
    (u64::from(u32::from(max)) - u64::from(u32::from(min))) / subnet_step(len) + 1
}

/// Addresses per subnet of length `len`.
pub fn subnet_step(len: u8) -> u64 {
    1u64 << (32 - u32::from(len))
}

/// Parse and validate a topology file; every problem is a located diagnostic.
pub fn load(path: &Path) -> Result<Cluster, Diagnostics> {
    let doc = parse::read_topology(path)?;
    validate::validate(path, &doc)
}
