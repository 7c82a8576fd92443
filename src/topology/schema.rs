//! The topology file as written (schema version 1): every value keeps its
//! source location so that semantic errors can point at it.

use serde::Deserialize;

pub type S<T> = crate::yaml::Located<T>;

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TopologyDoc {
    pub version: S<u64>,
    pub cluster: S<String>,
    pub network: Option<S<String>>,
    pub subnet_len: Option<S<u64>>,
    pub subnet_min: Option<S<String>>,
    pub subnet_max: Option<S<String>>,
    pub ipv6_network: Option<S<String>>,
    pub ipv6_subnet_len: Option<S<u64>>,
    pub ipv6_subnet_min: Option<S<String>>,
    pub ipv6_subnet_max: Option<S<String>>,
    pub ip_masq: Option<S<bool>>,
    pub ip_masq_random_fully: Option<S<bool>>,
    /// flanneld's --ip-blackhole-route: a blackhole route for the node's own subnet.
    pub ip_blackhole_route: Option<S<bool>>,
    pub traffic_rules: Option<S<String>>,
    pub forward_rules: Option<S<bool>>,
    pub backend: S<BackendDoc>,
    pub defaults: Option<S<DefaultsDoc>>,
    pub nodes: S<Vec<S<NodeDoc>>>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendDoc {
    #[serde(rename = "type")]
    pub kind: S<String>,
    pub vni: Option<S<u64>>,
    pub port: Option<S<u64>>,
    pub direct_routing: Option<S<bool>>,
    pub gbp: Option<S<bool>>,
    pub learning: Option<S<bool>>,
    pub tx_checksum_offload: Option<S<bool>>,
    pub route_style: Option<S<String>>,
    /// aws-vpc: flannel's `RouteTableID`, as a list.
    #[serde(rename = "routeTableIDs")]
    pub route_table_ids: Option<S<Vec<S<String>>>>,
    /// gce: the project and the network of the routes.
    pub project: Option<S<String>>,
    pub network: Option<S<String>>,
    /// wireguard: the IPv6 device's port, the keepalive (seconds), the
    /// key files on the node, and the mode (flanneld's `separate` only).
    #[serde(rename = "portV6")]
    pub port_v6: Option<S<u64>>,
    pub persistent_keepalive: Option<S<u64>>,
    pub key_file: Option<S<String>>,
    pub psk_file: Option<S<String>>,
    pub mode: Option<S<String>>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DefaultsDoc {
    pub interface: Option<S<String>>,
    pub mtu: Option<S<u64>>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeDoc {
    pub name: S<String>,
    pub ip: Option<S<String>>,
    pub ip6: Option<S<String>>,
    pub interface: Option<S<String>>,
    pub mtu: Option<S<u64>>,
    pub subnet: Option<S<String>>,
    pub subnet6: Option<S<String>>,
    #[serde(rename = "vtepMAC")]
    pub vtep_mac: Option<S<String>>,
    #[serde(rename = "vtepMAC6")]
    pub vtep_mac6: Option<S<String>>,
    /// The address peers reach this node at when it is behind NAT
    /// (flanneld's `--public-ip`); `ip` stays the local one.
    #[serde(rename = "publicIP")]
    pub public_ip: Option<S<String>>,
    #[serde(rename = "publicIP6")]
    pub public_ip6: Option<S<String>>,
    /// Other networks the node has an interface on, without a router:
    /// directRouting reaches peers there directly, as flanneld does.
    pub connected: Option<S<Vec<S<ConnectedDoc>>>>,
    /// aws-vpc: the node's EC2 instance.
    #[serde(rename = "instanceID")]
    pub instance_id: Option<S<String>>,
    /// gce: the node's instance name and zone.
    pub instance: Option<S<String>>,
    pub zone: Option<S<String>>,
    /// wireguard: the node's public key (or the lock file records it).
    pub wireguard_key: Option<S<String>>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectedDoc {
    pub interface: S<String>,
    /// The node's address there, with the prefix (either family).
    pub ip: S<String>,
}

/// Keys accepted at each level, for "did you mean" suggestions.
pub const TOP_KEYS: &[&str] = &[
    "version",
    "cluster",
    "network",
    "subnetLen",
    "subnetMin",
    "subnetMax",
    "ipv6Network",
    "ipv6SubnetLen",
    "ipv6SubnetMin",
    "ipv6SubnetMax",
    "ipMasq",
    "ipMasqRandomFully",
    "ipBlackholeRoute",
    "trafficRules",
    "forwardRules",
    "backend",
    "defaults",
    "nodes",
];
pub const BACKEND_KEYS: &[&str] = &[
    "type",
    "vni",
    "port",
    "directRouting",
    "gbp",
    "learning",
    "txChecksumOffload",
    "routeStyle",
    "routeTableIDs",
    "project",
    "network",
    "portV6",
    "persistentKeepalive",
    "keyFile",
    "pskFile",
    "mode",
];
pub const DEFAULTS_KEYS: &[&str] = &["interface", "mtu"];
pub const NODE_KEYS: &[&str] = &[
    "name",
    "ip",
    "ip6",
    "interface",
    "mtu",
    "subnet",
    "subnet6",
    "vtepMAC",
    "vtepMAC6",
    "publicIP",
    "publicIP6",
    "connected",
    "instanceID",
    "instance",
    "zone",
    "wireguardKey",
];

pub const CONNECTED_KEYS: &[&str] = &["interface", "ip"];

/// Every level's keys, with the dotted path that leads to it.
pub const KEY_LEVELS: &[(&str, &[&str])] = &[
    ("", TOP_KEYS),
    ("backend", BACKEND_KEYS),
    ("defaults", DEFAULTS_KEYS),
    ("nodes[]", NODE_KEYS),
    ("nodes[].connected[]", CONNECTED_KEYS),
];
