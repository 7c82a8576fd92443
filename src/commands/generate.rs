//! `flannel-gen generate --nodes N`

use super::out;
use crate::error::{Error, exit};
use crate::synth::{self, SynthSpec};
use crate::topology::BackendKind;

/// Print a synthetic topology (for benchmarks and scale tests) to stdout.
///
/// Nodes are spread round robin over underlay segments, each a /16 of
/// 172.16.0.0/12.
///
/// Example:
///   flannel-gen generate --nodes 5000 > /tmp/big.yaml
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// How many nodes.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=synth::MAX_NODES as u64))]
    pub nodes: u64,
    /// The backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Vxlan)]
    pub backend: BackendArg,
    /// vxlan only: route directly to nodes on the same segment.
    #[arg(long)]
    pub direct_routing: bool,
    /// Spread nodes over this many underlay L2 segments.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=synth::MAX_SEGMENTS as u64))]
    pub segments: u64,
    /// The cluster name ([a-z0-9-]).
    #[arg(long, default_value = "synthetic", value_parser = parse_cluster)]
    pub cluster: String,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum BackendArg {
    Vxlan,
    #[value(name = "host-gw")]
    HostGw,
    Udp,
}

fn parse_cluster(s: &str) -> Result<String, String> {
    let ok =
        !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(s.to_string()) } else { Err(format!("`{s}` must be 1-63 characters of [a-z0-9-]")) }
}

pub fn run(a: Args) -> Result<u8, Error> {
    let backend = match a.backend {
        BackendArg::Vxlan => BackendKind::Vxlan,
        BackendArg::HostGw => BackendKind::HostGw,
        BackendArg::Udp => BackendKind::Udp,
    };
    let spec = SynthSpec {
        nodes: a.nodes as usize,
        backend,
        direct_routing: a.direct_routing,
        segments: a.segments as usize,
        cluster: a.cluster,
    };
    if let Some(why) = spec.refusal() {
        return Err(Error::Usage(why));
    }
    out(&synth::topology_yaml(&spec))?;
    Ok(exit::OK)
}
