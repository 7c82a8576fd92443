//! flanneld's lease registry — the etcd keys and Kubernetes Node
//! annotations a running flannel cluster keeps its facts in — read by
//! `import` and written by `publish`, in flanneld's exact formats.
//!
//! * [`format`]: lease values (Go's JSON of `lease.LeaseAttrs`) and subnet keys.
//! * [`config`]: `<prefix>/config` from a topology, and checking an existing one.
//! * [`etcd`]: the etcd v3 store: read a prefix, commit guarded transactions.
//! * [`kube`]: Node objects (`kubectl get nodes -o json`) and the patches that publish.
//! * [`import`]: leases + net-conf -> topology and lock, checked against the leases.
//! * [`publish`]: topology -> the keys flanneld peers read, with ownership rules.
//! * [`read`]: an etcd snapshot as flanneld reads it (config and leases).
//! * [`names`]: the optional IP -> node name file.

pub mod config;
pub mod etcd;
pub mod format;
pub mod import;
pub mod kube;
pub mod names;
pub mod publish;
pub mod read;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::mac::Mac;
use crate::netaddr::Family;
use crate::plan::NodePlan;
use crate::wireguard::key::Key;

/// The vxlan backend's per-family lease data (`vxlanLeaseAttrs`,
/// pkg/backend/vxlan/vxlan_network.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanData {
    pub vni: u32,
    pub vtep_mac: Mac,
}

/// The wireguard backend's per-family lease data (`wireguardLeaseAttrs`,
/// pkg/backend/wireguard/wireguard_network.go). Port 0 is "the receiver's
/// own port", as flanneld reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireguardData {
    pub public_key: Key,
    pub port: u16,
}

/// A backend's per-family lease data, for the backends that carry any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendData {
    Vxlan(VxlanData),
    Wireguard(WireguardData),
}

/// flanneld's `lease.LeaseAttrs` (pkg/lease/lease.go), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseAttrs {
    /// `0.0.0.0` when the lease has no IPv4 side (Go's zero `ip.IP4`).
    pub public_ip: Ipv4Addr,
    pub public_ipv6: Option<Ipv6Addr>,
    pub backend_type: String,
    /// `None`: absent, JSON `null`, or a backend that carries none (host-gw).
    pub backend_data: Option<BackendData>,
    pub backend_v6_data: Option<BackendData>,
}

impl LeaseAttrs {
    pub fn public_ip(&self, f: Family) -> Option<std::net::IpAddr> {
        match f {
            Family::V4 => (!self.public_ip.is_unspecified()).then_some(self.public_ip.into()),
            Family::V6 => self.public_ipv6.map(Into::into),
        }
    }

    pub fn data(&self, f: Family) -> Option<BackendData> {
        match f {
            Family::V4 => self.backend_data,
            Family::V6 => self.backend_v6_data,
        }
    }

    pub fn vxlan(&self, f: Family) -> Option<VxlanData> {
        match self.data(f)? {
            BackendData::Vxlan(d) => Some(d),
            BackendData::Wireguard(_) => None,
        }
    }

    pub fn wireguard(&self, f: Family) -> Option<WireguardData> {
        match self.data(f)? {
            BackendData::Wireguard(d) => Some(d),
            BackendData::Vxlan(_) => None,
        }
    }
}

/// Where a lease was read, for messages and for the ownership rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Etcd {
        key: String,
        /// etcd lease id; 0 is a reservation (no TTL).
        lease_id: i64,
        /// Seconds left on the etcd lease, when it has one.
        ttl: Option<i64>,
    },
    Kube {
        /// The NODES.json file the object was read from.
        file: PathBuf,
        node: String,
    },
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::Etcd { key, lease_id: 0, .. } => format!("{key} (reservation)"),
            Origin::Etcd { key, ttl: Some(t), .. } => format!("{key} (flanneld lease, {t} s left)"),
            Origin::Etcd { key, .. } => format!("{key} (flanneld lease)"),
            Origin::Kube { node, .. } => format!("Node {node}"),
        }
    }

    /// What names the lease in an error, in place of a file name.
    pub fn label(&self) -> String {
        match self {
            Origin::Etcd { key, .. } => format!("etcd:{key}"),
            Origin::Kube { file, node } => format!("{} (Node {node})", file.display()),
        }
    }
}

/// One node's lease: its subnets and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub subnet: Option<Ipv4Net>,
    pub subnet6: Option<Ipv6Net>,
    pub attrs: LeaseAttrs,
    pub origin: Origin,
    /// A name the store gives the node (Kubernetes), if any.
    pub name: Option<String>,
}

/// The `BackendType` a backend's leases carry. flanneld's udp backend sets
/// none (pkg/backend/udp/udp_amd64.go builds `LeaseAttrs{PublicIP}` only),
/// and neither do the cloud ones: such a lease reads as any of the three.
pub fn lease_type(kind: crate::topology::BackendKind) -> &'static str {
    use crate::topology::BackendKind;
    match kind {
        // aws-vpc and gce too (flannel v0.19 backend/awsvpc/awsvpc.go and
        // backend/gce/gce.go acquire `LeaseAttrs{PublicIP}` only).
        BackendKind::Udp | BackendKind::AwsVpc | BackendKind::Gce => "",
        k => k.as_str(),
    }
}

/// Whether a lease of type `t` belongs to a cluster of backend `kind`
/// (for udp, a lease that says `udp` too).
pub fn of_backend(kind: crate::topology::BackendKind, t: &str) -> bool {
    t == lease_type(kind) || t == kind.as_str()
}

/// What a flannel-gen node publishes: its subnets and attributes, from its
/// plan (the one contract `apply` programs too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub node: String,
    pub subnet: Option<Ipv4Net>,
    pub subnet6: Option<Ipv6Net>,
    pub attrs: LeaseAttrs,
}

impl Published {
    pub fn of_plan(p: &NodePlan) -> Published {
        let d = p.data();
        let vni = d.backend.vni();
        let data = |f: Family| -> Option<BackendData> {
            if let Some((public_key, port)) = p.wireguard_identity(f) {
                return Some(BackendData::Wireguard(WireguardData { public_key, port }));
            }
            Some(BackendData::Vxlan(VxlanData { vni: vni?, vtep_mac: d.family(f)?.vtep_mac? }))
        };
        let addr = |f: Family| d.uplink.published(f);
        let attrs = LeaseAttrs {
            public_ip: match addr(Family::V4) {
                Some(std::net::IpAddr::V4(a)) => a,
                _ => Ipv4Addr::UNSPECIFIED,
            },
            public_ipv6: match addr(Family::V6) {
                Some(std::net::IpAddr::V6(a)) => Some(a),
                _ => None,
            },
            backend_type: lease_type(d.backend.kind()).to_string(),
            backend_data: data(Family::V4),
            backend_v6_data: data(Family::V6),
        };
        let subnet = d.family(Family::V4).and_then(|f| crate::netaddr::v4(f.subnet));
        let subnet6 = d.family(Family::V6).and_then(|f| crate::netaddr::v6(f.subnet));
        Published { node: d.node.clone(), subnet, subnet6, attrs }
    }
}

impl Lease {
    pub fn subnet(&self, f: Family) -> Option<IpNet> {
        match f {
            Family::V4 => self.subnet.map(IpNet::V4),
            Family::V6 => self.subnet6.map(IpNet::V6),
        }
    }
}
