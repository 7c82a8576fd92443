//! Synthetic topologies for benchmarks and scale tests.

use std::fmt::Write;

use crate::topology::BackendKind;

pub struct SynthSpec {
    pub nodes: usize,
    pub backend: BackendKind,
    pub direct_routing: bool,
    /// Underlay L2 segments the nodes are spread over, round robin: the
    /// /16s of 172.16.0.0/12.
    pub segments: usize,
    pub cluster: String,
}

/// One /16 per segment inside 172.16.0.0/12.
pub const MAX_SEGMENTS: usize = 16;
/// /24 node subnets of 10.128.0.0/9, less the first (flannel's subnetMin).
pub const MAX_NODES: usize = (1 << 15) - 1;

impl SynthSpec {
    /// Why this spec cannot make a valid topology, if it cannot.
    pub fn refusal(&self) -> Option<String> {
        if self.nodes == 0 || self.nodes > MAX_NODES {
            Some(format!("--nodes must be 1..={MAX_NODES}"))
        } else if self.segments == 0 || self.segments > MAX_SEGMENTS {
            Some(format!("--segments must be 1..={MAX_SEGMENTS}"))
        } else if self.backend == BackendKind::HostGw && self.segments > 1 {
            Some("host-gw routes to every node directly: all nodes must share one segment (use --backend vxlan --direct-routing for several)".into())
        } else if self.backend == BackendKind::Udp && self.direct_routing {
            Some("--direct-routing is a vxlan option; udp carries everything through the forwarder".into())
        } else if self.backend == BackendKind::HostGw && self.direct_routing {
            Some("--direct-routing is a vxlan option; host-gw routes directly already".into())
        } else {
            None
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spec the refusal lets through validates.
    #[test]
    fn accepted_specs_validate() {
        for (nodes, backend, dr, segments) in [
            (1, BackendKind::Vxlan, false, 1),
            (300, BackendKind::Vxlan, true, 16),
            (40, BackendKind::HostGw, false, 1),
        ] {
            let spec = SynthSpec { nodes, backend, direct_routing: dr, segments, cluster: "c".into() };
            assert_eq!(spec.refusal(), None);
            let y = topology_yaml(&spec);
            let path = std::path::Path::new("g.yaml");
            let doc = crate::topology::parse::parse_topology(path, &y).expect("parses");
            crate::topology::validate::validate(path, &doc).expect("valid");
        }
        let bad = SynthSpec {
            nodes: 10,
            backend: BackendKind::HostGw,
            direct_routing: false,
            segments: 2,
            cluster: "c".into(),
        };
        assert!(bad.refusal().is_some());
    }
}
