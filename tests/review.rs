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

/// Runs `cmd` with `input` on stdin; returns (success, stdout, stderr).
fn pipe(cmd: &str, args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut c = std::process::Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd} (Debian package graphviz / libxml2-utils): {e}"));
    c.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    let o = c.wait_with_output().expect("wait");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Well-formed XML with an `<svg>` root, by xmllint.
fn assert_valid_svg(svg: &str, what: &str) {
    let (ok, _, err) = pipe("xmllint", &["--noout", "-"], svg);
    assert!(ok, "{what}: not well-formed: {err}");
    assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"), "{what}: no svg root");
}

#[test]
fn graph_svg_is_valid_and_names_every_node() {
    for (topo, nodes) in [
        ("examples/hostgw-3node.yaml", &["node-1", "node-2", "node-3"][..]),
        ("examples/vxlan-directrouting.yaml", &["rack1-a", "rack1-b", "rack2-a", "rack2-b"][..]),
    ] {
        let o = run(&["graph", topo]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let svg = stdout(&o);
        assert_valid_svg(&svg, topo);
        for n in nodes {
            assert!(svg.contains(&format!(">{n}<")), "{topo}: {n} is drawn");
        }
    }
    // Two racks: direct inside a rack, VXLAN across, each in its own colour.
    let dot = stdout(&run(&["graph", "examples/vxlan-directrouting.yaml", "--format", "dot"]));
    assert!(dot.contains("\"rack1-a\" -> \"rack1-b\" [label=\"direct\", color=\"#2ca02c\""), "{dot}");
    assert!(dot.contains("\"rack1-a\" -> \"rack2-a\" [label=\"vxlan\", color=\"#1f77b4\""), "{dot}");
    assert_eq!(dot.matches("subgraph \"cluster_segment_").count(), 2, "one group per segment");
}

#[test]
fn graph_of_a_change_passes_graphviz_and_colours_what_moves() {
    let o = run(&["graph", "examples/vxlan-3node.yaml", "--diff", "examples/hostgw-3node.yaml", "--format", "dot"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let dot = stdout(&o);
    assert_eq!(dot.matches("label=\"vxlan → host-gw\", color=\"#ef6c00\"").count(), 3, "{dot}");
    let (ok, svg, err) = pipe("dot", &["-Tsvg"], &dot);
    assert!(ok, "dot -Tsvg: {err}");
    assert_valid_svg(&svg, "dot -Tsvg");
    // Nodes replaced: the old ones and their edges removed (red, dashed), the new added.
    let dot = stdout(&run(&[
        "graph",
        "examples/hostgw-3node.yaml",
        "--diff",
        "examples/vxlan-directrouting.yaml",
        "--format",
        "dot",
    ]));
    assert!(
        dot.contains(
            "\"node-1\" -> \"node-2\" [label=\"host-gw\", color=\"#c62828\", fontcolor=\"#c62828\", style=dashed"
        ),
        "{dot}"
    );
    assert!(
        dot.contains("\"rack1-a\" [label=\"rack1-a\\n10.244.1.0/24\", fillcolor=\"#ffffff\", color=\"#2e7d32\""),
        "{dot}"
    );
    assert!(pipe("dot", &["-Tsvg"], &dot).0);
    // --node keeps one node's edges.
    let one = stdout(&run(&["graph", "examples/vxlan-directrouting.yaml", "--node", "rack2-b", "--format", "dot"]));
    assert_eq!(one.matches(" -> ").count() - one.matches("legend_").count() / 3, 3, "{one}");
    assert!(!one.contains("\"rack1-a\" -> \"rack1-b\""), "{one}");
}

/// 200 nodes on 4 segments: one box per segment, edges counted, still valid.
#[test]
fn a_200_node_graph_collapses_into_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = dir.path().join("big.yaml");
    let o = run(&["generate", "--nodes", "200", "--segments", "4", "--direct-routing"]);
    std::fs::write(&topo, stdout(&o)).expect("write");
    let topo = topo.to_str().expect("utf8");
    assert_eq!(code(&run(&["lock", topo])), 0);
    let dot = stdout(&run(&["graph", topo, "--format", "dot"]));
    assert_eq!(dot.matches("nodes\\ninside: direct ×1225").count(), 4, "50 nodes a segment, direct inside:\n{dot}");
    assert_eq!(dot.matches("[label=\"vxlan ×2500\"").count(), 6, "every pair of segments, counted:\n{dot}");
    assert!(pipe("dot", &["-Tsvg"], &dot).0);
    let svg = stdout(&run(&["graph", topo]));
    assert_valid_svg(&svg, "200 nodes");
    assert!(svg.len() < 40_000, "a collapsed picture stays small: {} bytes", svg.len());
}

/// The picture README shows, regenerated like a golden file.
#[test]
fn the_readme_picture_is_current() {
    let o = run(&["graph", "examples/vxlan-3node.yaml", "--diff", "examples/hostgw-3node.yaml"]);
    assert_eq!(code(&o), 0);
    golden(&root().join("docs/review-vxlan-to-hostgw.svg"), &stdout(&o));
}

/// A change the summary used to miss (the blackhole route toggled) is named
/// and classed as a change in place, not as none.
#[test]
fn a_blackhole_toggle_is_a_change_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let y = std::fs::read_to_string(root().join("examples/hostgw-dualstack.yaml")).expect("example");
    let off = dir.path().join("off.yaml");
    std::fs::write(&off, y.replace("ipBlackholeRoute: true\n", "")).expect("write");
    std::fs::copy(root().join("examples/hostgw-dualstack.lock"), dir.path().join("off.lock")).expect("lock");
    let o = run(&["diff", off.to_str().expect("utf8"), "examples/hostgw-dualstack.yaml", "--format", "markdown"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let md = stdout(&o);
    assert!(md.contains("disruption: per-peer in place"), "{md}");
    let text = stdout(&run(&["diff", off.to_str().expect("utf8"), "examples/hostgw-dualstack.yaml"]));
    assert!(text.contains("+ blackhole route for 10.244.1.0/24 and fd00:10:244:1::/64"), "{text}");
}
