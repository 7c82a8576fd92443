//! A cluster of namespace "nodes" on a namespace "switch" (one bridge per L2
//! segment, routing between segments), with "pods" attached by the real CNI
//! bridge + host-local plugins from each node's rendered conflist.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::netns::{Netns, must};
use super::{code, run, stderr, stdout};

pub const CNI_PATH: &str = "/usr/lib/cni";

pub struct Pod {
    pub ns: Netns,
    pub node: String,
    /// The pod's IPv4 address (IPv6 in an IPv6-only cluster).
    pub ip: String,
    /// Its IPv6 address in a dual-stack cluster.
    pub ip6: Option<String>,
}

pub struct Node {
    pub ns: Netns,
    pub name: String,
    /// Underlay address with prefix: IPv4, or IPv6 in an IPv6-only cluster.
    pub ip: String,
    /// Underlay IPv6 address with prefix, when the node has one.
    pub ip6: Option<String>,
    /// Where it is plugged in (bridge, port number, addresses), for [`Cluster::replug`].
    port: (String, usize, Vec<String>),
}

/// Fields drop in order: pods, hosts, then nodes, then the switch.
pub struct Cluster {
    pub pods: Vec<Pod>,
    /// Hosts on the underlay that are not nodes (no route to the pod network).
    pub hosts: Vec<Netns>,
    pub nodes: Vec<Node>,
    pub switch: Netns,
    /// Underlay segment (network) -> its bridge in the switch.
    pub segments: BTreeMap<String, String>,
    pub dir: tempfile::TempDir,
    /// When set, each node's flannel-gen runs see `<views>/<node>` as
    /// `/run/wireguard` ([`super::views`]).
    pub views: Option<PathBuf>,
}

/// The segment router's address (its first host) with the segment's prefix.
fn router(addr: &str) -> String {
    let net: ipnet::IpNet = addr.parse().expect("cidr");
    let first = net.trunc().hosts().next().expect("host");
    format!("{first}/{}", net.prefix_len())
}

fn plan(overlay: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(overlay.join("etc/flannel-gen/plan.json")).expect("plan.json"))
        .expect("json")
}

/// The bridge plugin's own config from a rendered conflist: its first
/// plugin, with the list's cniVersion and name (what a runtime hands it).
pub fn bridge_conf(conflist: &Path) -> Value {
    let list: Value = serde_json::from_str(&std::fs::read_to_string(conflist).expect("conflist")).expect("json");
    let mut conf = list["plugins"][0].clone();
    conf["cniVersion"] = list["cniVersion"].clone();
    conf["name"] = list["name"].clone();
    conf
}

/// A new node namespace: eth0 on switch port `p<port>` of `bridge`, `addrs`
/// on it, and a default route per family through the segment's router.
fn plug(switch: &Netns, bridge: &str, port: usize, addrs: &[String]) -> Netns {
    let ns = Netns::new("node");
    let port = format!("p{port}");
    switch.ip(&["link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns.name]);
    switch.ip(&["link", "set", &port, "master", bridge, "up"]);
    for a in addrs {
        ns.ip(&["addr", "add", a, "dev", "eth0", "nodad"]);
    }
    ns.ip(&["link", "set", "eth0", "up"]);
    for a in addrs {
        let gw = router(a);
        let gw = gw.split('/').next().unwrap_or_default();
        ns.ip(&["route", "add", "default", "via", gw]);
    }
    ns
}

impl Cluster {
    /// Builds the underlay for every node of `topology` (nodes are not configured yet).
    pub fn new(topology: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("rendered");
        let o = run(&["render", topology, "--out", out.to_str().expect("utf8")]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let switch = Netns::new("sw");
        must(&mut switch.exec(
            "sh",
            &["-c", "echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding"],
        ));

        let mut plans: Vec<Value> =
            std::fs::read_dir(&out).expect("out").map(|e| plan(&e.expect("entry").path())).collect();
        plans.sort_by_key(|p| p["node"].as_str().unwrap_or_default().to_string());
        let mut segments: BTreeMap<String, String> = BTreeMap::new();
        let mut nodes = Vec::new();
        for (i, p) in plans.iter().enumerate() {
            let name = p["node"].as_str().expect("node").to_string();
            let v4 = p["uplink"]["ipv4"].as_str().map(str::to_string);
            let ip6 = p["uplink"]["ipv6"].as_str().map(str::to_string);
            let ip = v4.clone().or_else(|| ip6.clone()).expect("an underlay address");
            let addrs: Vec<&String> = v4.iter().chain(ip6.iter()).collect();
            // One bridge per segment, named after the node's primary underlay network.
            let primary: ipnet::IpNet = ip.parse().expect("cidr");
            let seg = primary.trunc().to_string();
            let n = segments.len();
            let new = !segments.contains_key(&seg);
            let bridge = segments.entry(seg.clone()).or_insert_with(|| format!("br{n}")).clone();
            if new {
                switch.ip(&["link", "add", &bridge, "type", "bridge"]);
                for a in &addrs {
                    switch.ip(&["addr", "add", &router(a), "dev", &bridge, "nodad"]);
                }
                switch.ip(&["link", "set", &bridge, "up"]);
            }
            let addrs: Vec<String> = addrs.into_iter().cloned().collect();
            let ns = plug(&switch, &bridge, i, &addrs);
            nodes.push(Node { ns, name, ip, ip6: ip6.filter(|_| v4.is_some()), port: (bridge, i, addrs) });
        }
        Cluster { pods: Vec::new(), hosts: Vec::new(), nodes, switch, segments, dir, views: None }
    }

    /// Gives node `name` a fresh namespace on the same switch port, with the
    /// same underlay addresses and default routes: a reboot, as far as the
    /// kernel is concerned (nothing flannel-gen made survives it).
    pub fn replug(&mut self, name: &str) {
        let i = self.nodes.iter().position(|n| n.name == name).expect("node");
        let (bridge, port, addrs) = self.nodes[i].port.clone();
        // The old cable goes first (a namespace dies lazily, its veth with it).
        self.switch.ip(&["link", "del", &format!("p{port}")]);
        let old = std::mem::replace(&mut self.nodes[i].ns, Netns::new("gone"));
        drop(old);
        self.nodes[i].ns = plug(&self.switch, &bridge, port, &addrs);
    }

    /// A host on the underlay segment of `ip` (with prefix) that knows nothing
    /// of the pod network: it can only answer underlay addresses.
    pub fn external_host(&mut self, ip: &str) -> usize {
        self.external_host_with(&[ip])
    }

    /// The same with several addresses (one per family); the first names the segment.
    pub fn external_host_with(&mut self, addrs: &[&str]) -> usize {
        let net: ipnet::IpNet = addrs[0].parse().expect("cidr");
        let bridge = self.segments.get(&net.trunc().to_string()).expect("a segment of the cluster").clone();
        let ns = Netns::new("ext");
        let port = format!("x{}", self.hosts.len());
        self.switch.ip(&["link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns.name]);
        self.switch.ip(&["link", "set", &port, "master", &bridge, "up"]);
        for a in addrs {
            ns.ip(&["addr", "add", a, "dev", "eth0", "nodad"]);
        }
        ns.ip(&["link", "set", "eth0", "up"]);
        self.hosts.push(ns);
        self.hosts.len() - 1
    }

    pub fn overlay(&self, node: &str) -> PathBuf {
        self.dir.path().join("rendered").join(node)
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).expect("node")
    }

    /// `flannel-gen apply TOPO --node N --netns NS [extra]`, asserting exit 0; returns stdout.
    pub fn apply(&self, topology: &str, node: &str, extra: &[&str]) -> String {
        let n = self.node(node);
        let mut args = vec!["apply", topology, "--node", node, "--netns", &n.ns.name];
        args.extend_from_slice(extra);
        let o = match &self.views {
            Some(v) => super::views::on_node(&v.join(node), &args),
            None => run(&args),
        };
        assert_eq!(code(&o), 0, "apply {node}: {}{}", stdout(&o), stderr(&o));
        stdout(&o)
    }

    pub fn apply_all(&self, topology: &str) {
        for n in &self.nodes {
            self.apply(topology, &n.name, &[]);
        }
    }

    /// Attaches `per_node` pods to every node with the CNI bridge plugin,
    /// configured from the node's rendered conflist.
    pub fn attach_pods(&mut self, per_node: usize) {
        for n in &self.nodes {
            let mut conf = bridge_conf(&self.overlay(&n.name).join("etc/cni/net.d/10-flannel.conflist"));
            // host-local keeps leases in /var/lib/cni by default: keep each test's own.
            conf["ipam"]["dataDir"] =
                Value::from(self.dir.path().join("cni").join(&n.name).to_string_lossy().into_owned());
            for _ in 0..per_node {
                let ns = Netns::new("pod");
                let mut child = Command::new("ip")
                    .args(["netns", "exec", &n.ns.name, &format!("{CNI_PATH}/bridge")])
                    .env("CNI_COMMAND", "ADD")
                    .env("CNI_CONTAINERID", &ns.name)
                    .env("CNI_NETNS", format!("/run/netns/{}", ns.name))
                    .env("CNI_IFNAME", "eth0")
                    .env("CNI_PATH", CNI_PATH)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("CNI bridge plugin (containernetworking-plugins)");
                child.stdin.take().expect("stdin").write_all(conf.to_string().as_bytes()).expect("write conf");
                let out = child.wait_with_output().expect("cni");
                assert!(
                    out.status.success(),
                    "CNI ADD on {}: {}{}",
                    n.name,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                let result: Value = serde_json::from_slice(&out.stdout).expect("CNI result");
                let ips: Vec<String> = result["ips"]
                    .as_array()
                    .expect("CNI ips")
                    .iter()
                    .filter_map(|i| i["address"].as_str())
                    .map(|a| a.split('/').next().unwrap_or(a).to_string())
                    .collect();
                let ip = ips.first().expect("a pod address").clone();
                let ip6 = ips.get(1).cloned();
                self.pods.push(Pod { ns, node: n.name.clone(), ip, ip6 });
            }
        }
    }

    /// Every pod pings one pod on every other node, at each address that
    /// pod has (both families in a dual-stack cluster); returns the failures.
    pub fn ping_across(&self) -> Vec<String> {
        let mut failed = Vec::new();
        for a in &self.pods {
            let mut seen = Vec::new();
            for b in self.pods.iter().filter(|b| b.node != a.node) {
                if seen.contains(&b.node) {
                    continue;
                }
                seen.push(b.node.clone());
                for to in std::iter::once(&b.ip).chain(b.ip6.iter()) {
                    let ok = (0..3).any(|_| {
                        a.ns.exec("ping", &["-c", "1", "-W", "2", to])
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status()
                            .is_ok_and(|s| s.success())
                    });
                    if !ok {
                        failed.push(format!("{} ({}) -> {to} ({})", a.ip, a.node, b.node));
                    }
                }
            }
        }
        failed
    }
}
