//! The node side of aws-vpc: no overlay device and no routes to peers on the
//! node (flannel v0.19 backend/awsvpc returns a `SimpleNetwork`: lease and
//! external interface, nothing in the kernel), flanneld's MTU (the uplink's),
//! the usual rules and pods. Three namespace nodes in three subnets; the
//! switch namespace routes between them, and a route per node subnet on it
//! stands in for the VPC route table (no VPC data plane runs here: what the
//! cloud does with the table is untested). Needs root; skips loudly otherwise.

mod common;

use common::cluster::Cluster;
use common::netns::root_or_skip;
use common::{code, run, stdout};

const VXLAN: &str = "tests/fixtures/cloud-vxlan.yaml";
const AWS: &str = "tests/fixtures/cloud-aws-vpc.yaml";

fn subnet_of(node: &str) -> String {
    format!("10.244.{}.0/24", node.trim_start_matches("node-"))
}

#[test]
fn aws_vpc_nodes_carry_pods_over_the_vpc_routes_and_leave_vxlan_behind() {
    if !root_or_skip("aws_vpc_nodes_carry_pods_over_the_vpc_routes_and_leave_vxlan_behind") {
        return;
    }
    let mut c = Cluster::new(VXLAN);
    c.apply_all(VXLAN);
    c.attach_pods(1);
    assert_eq!(c.ping_across(), Vec::<String>::new(), "vxlan before the move");

    // The VPC route table, as `cloud apply` would leave it: each node's
    // subnet to that node.
    for n in &c.nodes {
        let ip = n.ip.split('/').next().expect("address");
        c.switch.ip(&["route", "add", &subnet_of(&n.name), "via", ip]);
    }
    for n in &c.nodes {
        c.apply(AWS, &n.name, &[]);
    }
    for n in &c.nodes {
        let vxlan = n.ns.ip(&["-d", "-o", "link", "show", "type", "vxlan"]);
        assert!(vxlan.trim().is_empty(), "{}: the VXLAN device is gone: {vxlan}", n.name);
        let routes = n.ns.ip(&["route", "show", "root", "10.244.0.0/16"]);
        let own = subnet_of(&n.name);
        let lines: Vec<&str> = routes.lines().collect();
        assert_eq!(lines.len(), 1, "{}: only its own bridge route: {routes}", n.name);
        assert!(lines[0].starts_with(&format!("{own} dev cni0")), "{}: {routes}", n.name);
        let dry = run(&["apply", AWS, "--node", &n.name, "--netns", &n.ns.name, "--dry-run"]);
        assert_eq!(code(&dry), 0, "{}: converged: {}", n.name, stdout(&dry));
    }
    assert_eq!(c.ping_across(), Vec::<String>::new(), "pods over the VPC routes");

    // The table carries the traffic: without node-2's route its pods are cut off.
    let ip2 = c.node("node-2").ip.split('/').next().expect("address").to_string();
    c.switch.ip(&["route", "del", &subnet_of("node-2"), "via", &ip2]);
    let failed = c.ping_across();
    assert!(
        !failed.is_empty() && failed.iter().all(|f| f.contains("node-2")),
        "only node-2's pods are unreachable: {failed:?}"
    );
}

#[test]
fn aws_vpc_subnet_env_has_the_uplink_mtu() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = run(&["render", AWS, "--out", &dir.path().to_string_lossy()]);
    assert_eq!(code(&out), 0);
    // flannel v0.19 backend/awsvpc: SimpleNetwork's MTU is the external
    // interface's, so subnet.env carries the uplink MTU (1500 here).
    let env = std::fs::read_to_string(dir.path().join("node-1/run/flannel/subnet.env")).expect("subnet.env");
    assert_eq!(
        env,
        "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n"
    );
    let files: Vec<String> = walk(dir.path());
    assert!(!files.iter().any(|f| f.contains(".netdev")), "no overlay device file: {files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}
