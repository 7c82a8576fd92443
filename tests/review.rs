//! #26: reviewing a change. `diff --format markdown` for every kind of change
//! the examples allow (golden files in golden/review/, reviewed output), and
//! the cluster pictures of `graph`.

mod common;

use common::{code, golden, root, run, stderr, stdout};

/// (golden name, old, new, exit code, disruption the headline names).
const CHANGES: &[(&str, &str, &str, i32, &str)] = &[
    ("vxlan-to-hostgw", "examples/vxlan-3node.yaml", "examples/hostgw-3node.yaml", 1, "phased rollout required"),
    ("vxlan-to-udp", "examples/vxlan-3node.yaml", "examples/udp-3node.yaml", 1, "phased rollout required"),
    ("udp-to-vxlan", "examples/udp-3node.yaml", "examples/vxlan-3node.yaml", 1, "phased rollout required"),
    ("vni-change", "examples/vxlan-3node.yaml", "tests/fixtures/review/vni2.yaml", 1, "phased rollout required"),
    ("mtu-and-masquerade", "examples/vxlan-3node.yaml", "tests/fixtures/review/jumbo.yaml", 1, "per-peer in place"),
    ("nodes-replaced", "examples/hostgw-3node.yaml", "examples/vxlan-directrouting.yaml", 1, "disruptive"),
    (
        "dual-stack-vxlan-to-hostgw",
        "examples/vxlan-dualstack.yaml",
        "examples/hostgw-dualstack.yaml",
        1,
        "phased rollout required",
    ),
    ("no-change", "examples/vxlan-3node.yaml", "examples/vxlan-3node.yaml", 0, ""),
];

#[test]
fn markdown_summaries_match_their_golden_files() {
    for (name, old, new, want, class) in CHANGES {
        let o = run(&["diff", old, new, "--format", "markdown"]);
        assert_eq!(code(&o), *want, "{name}: {}", stderr(&o));
        let md = stdout(&o);
        assert!(md.contains(&format!("disruption: {class}")) || class.is_empty(), "{name}: headline\n{md}");
        golden(&root().join(format!("golden/review/{name}.md")), &md);
    }
}

/// The acceptance case: a row per node, and the phases with each node's command.
#[test]
fn vxlan_to_hostgw_names_every_node_and_its_phase_commands() {
    let md = stdout(&run(&["diff", "examples/vxlan-3node.yaml", "examples/hostgw-3node.yaml", "--format", "markdown"]));
    for node in ["node-1", "node-2", "node-3"] {
        assert!(md.contains(&format!("| `{node}` | changed | phased rollout required | vxlan → host-gw |")), "{md}");
        for phase in [1, 2] {
            let cmd = format!("flannel-gen apply examples/hostgw-3node.yaml --node {node} --phase {phase}");
            assert!(md.contains(&cmd), "missing `{cmd}`");
        }
    }
    let (p1, p2) = (md.find("--phase 1").expect("phase 1"), md.find("--phase 2").expect("phase 2"));
    assert!(p1 < p2, "phase 1 comes first");
    assert_eq!(md.matches("<details>").count(), 3, "one folded diff per node");
}

/// The udp rollouts start the forwarder between phase 1 and 2, and stop it last.
#[test]
fn udp_rollouts_place_the_forwarder_between_the_phases() {
    let rollout = |md: String| md[md.find("### Rollout").expect("a rollout")..].to_string();
    let onto = rollout(stdout(&run(&[
        "diff",
        "examples/vxlan-3node.yaml",
        "examples/udp-3node.yaml",
        "--format",
        "markdown",
    ])));
    let start = onto.find("systemctl enable --now flannel-gen-udp.service").expect("start");
    assert!(onto.find("--phase 1").expect("p1") < start && start < onto.find("--phase 2").expect("p2"), "{onto}");
    let off = rollout(stdout(&run(&[
        "diff",
        "examples/udp-3node.yaml",
        "examples/vxlan-3node.yaml",
        "--format",
        "markdown",
    ])));
    let stop = off.find("systemctl disable --now flannel-gen-udp.service").expect("stop");
    assert!(off.find("vxlan-3node.yaml --node node-3\n").expect("plain apply") < stop, "{off}");
}
