//! Synthetic topologies for benchmarks and scale tests.

use std::fmt::Write;

use crate::topology::BackendKind;

pub struct SynthSpec {
    pub nodes: usize,
    pub backend: BackendKind,
    pub direct_routing: bool,
    /// Underlay L2 segments the nodes are spread over, round robin.
    pub segments: usize,
    pub cluster: String,
}

/// Nodes per /16 underlay segment, leaving room for network and broadcast.
pub const MAX_NODES_PER_SEGMENT: usize = 65_000;

/// A topology YAML with `spec.nodes` nodes named `node-1`..; subnets come from allocation.
pub fn topology_yaml(spec: &SynthSpec) -> String {
    // /24 subnets: a /16 holds 255 after flannel's subnetMin, so big clusters get a /9.
    let network = if spec.nodes <= 250 { "10.244.0.0/16" } else { "10.128.0.0/9" };
    let mut out = String::with_capacity(128 + spec.nodes * 48);
    let _ = writeln!(out, "version: 1\ncluster: {}\nnetwork: {network}\nsubnetLen: 24\nipMasq: true", spec.cluster);
    let _ = writeln!(out, "backend:\n  type: {}", spec.backend.as_str());
    if spec.direct_routing {
        let _ = writeln!(out, "  directRouting: true");
    }
    let _ = writeln!(out, "defaults:\n  interface: eth0\n  mtu: 1500\nnodes:");
    let segments = spec.segments.max(1);
    for i in 0..spec.nodes {
        let seg = i % segments;
        let host = i / segments + 10;
        let _ = writeln!(out, "  - name: node-{}\n    ip: 172.{}.{}.{}/16", i + 1, 16 + seg, host / 256, host % 256);
    }
    out
}
