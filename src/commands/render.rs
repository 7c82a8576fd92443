//! `flannel-gen render TOPO --out DIR`

use std::path::PathBuf;

use super::{compile_warned, dedup, out, plural, unknown_nodes};
use crate::error::{Error, exit};
use crate::render::{self, DEFAULT_BINARY};
use crate::words::agree;

/// Write every node's files as a root-filesystem overlay DIR/<node>/...
///
/// subnet.env, docker options, systemd-networkd files for flannel.<vni>, ip -batch
/// scripts, the CNI conflist, the boot unit, sysctls and plan.json. Files are
/// staged and renamed into place; files an earlier render wrote and that are no
/// longer produced are removed; nothing else in DIR is touched.
///
/// Examples:
///   flannel-gen render examples/vxlan-3node.yaml --out /tmp/out
///   flannel-gen render examples/vxlan-3node.yaml --out /tmp/out --check
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The topology file (`-` reads standard input).
    #[arg(value_name = "TOPO")]
    pub topology: PathBuf,
    /// The output directory; each node's overlay goes to DIR/<node>/.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Render only these nodes (repeatable); other overlays in DIR are left alone.
    #[arg(long = "node", value_name = "N")]
    pub nodes: Vec<String>,
    /// Write nothing; exit 1 and print a diff when DIR differs from what would be rendered.
    #[arg(long)]
    pub check: bool,
    /// Fail (exit 2) when the lock file is missing or stale.
    #[arg(long)]
    pub locked: bool,
    #[command(flatten)]
    pub templates: super::templates::TemplateArgs,
    /// Name of the .network file that configures the uplink on the nodes
    /// (default: <uplink>.network); the drop-in goes to NAME.d/.
    #[arg(long, value_name = "NAME", value_parser = parse_network_name)]
    pub uplink_network: Option<String>,
    /// Where flannel-gen is installed on the nodes, for the boot unit.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_BINARY)]
    pub binary: String,
    /// Where subnet.env goes on the nodes (flanneld's --subnet-file): an
    /// absolute path of plain components, outside /etc/flannel-gen.
    #[arg(long, value_name = "PATH", default_value = render::DEFAULT_SUBNET_FILE, value_parser = parse_subnet_file)]
    pub subnet_file: String,
    /// Print one line per file written or removed.
    #[arg(long, short)]
    pub verbose: bool,
    /// Also print files and bytes per node, and the total: every node's
    /// files list every peer, so the total grows with the square of the
    /// cluster (with --check, nothing is written).
    #[arg(long)]
    pub stat: bool,
}

/// An absolute path of plain components ([A-Za-z0-9._-], no `.` or `..`),
/// not among flannel-gen's own files, so it lands where it says in the overlay.
fn parse_subnet_file(s: &str) -> Result<String, String> {
    let plain = |c: &str| {
        !c.is_empty() && c != "." && c != ".." && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    let ok = s.len() <= 255 && s.strip_prefix('/').is_some_and(|rest| rest.split('/').all(plain));
    if !ok {
        return Err(format!("`{s}` is not an absolute path of plain components (letters, digits, `.`, `_`, `-`)"));
    }
    if s.starts_with("/etc/flannel-gen/") || s.starts_with("/etc/systemd/") {
        return Err(format!("`{s}` is among the files flannel-gen renders itself"));
    }
    Ok(s.to_string())
}

fn parse_network_name(s: &str) -> Result<String, String> {
    if s.ends_with(".network") && !s.contains('/') && s.len() > ".network".len() {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a file name ending in .network"))
    }
}

pub fn run(a: Args) -> Result<u8, Error> {
    let c = compile_warned(&a.topology, a.locked)?;
    let nodes = dedup(a.nodes);
    let known: Vec<&str> = c.cluster.nodes.iter().map(|n| n.name.as_str()).collect();
    if let Some(msg) = unknown_nodes(&nodes, &known) {
        return Err(Error::Usage(msg));
    }
    let plans = if nodes.is_empty() {
        crate::plan::build_all(&c.cluster, &c.leases)?
    } else {
        nodes.iter().map(|n| crate::plan::build(&c.cluster, &c.leases, n)).collect::<Result<_, _>>()?
    };
    let t = a.templates.load()?;
    let opts = render::RenderOptions { uplink_network: a.uplink_network, binary: a.binary, subnet_file: a.subnet_file };
    let subnet = opts.subnet_file.trim_start_matches('/');
    for p in &plans {
        if render::artefacts(p, &opts).iter().filter(|j| j.path == subnet).count() > 1 {
            return Err(Error::Usage(format!(
                "--subnet-file {}: node {} renders another file there",
                opts.subnet_file, p.node
            )));
        }
    }
    let mode = if a.check { render::Mode::Check } else { render::Mode::Write };
    let report = render::render_out(&plans, &t, &opts, &a.out, mode, nodes.is_empty())?;
    if a.stat {
        out(&stat_table(&report))?;
    }
    let (dir, n, files) = (a.out.display(), plural(report.nodes, "node"), plural(report.files, "file"));
    if a.check {
        if report.changes.is_empty() {
            out(&format!("{dir}: up to date ({n}, {files})\n"))?;
            return Ok(exit::OK);
        }
        if !a.stat {
            out(&report.diffs)?;
        }
        let n = report.changes.len();
        out(&format!("{dir}: {} {} from the topology\n", plural(n, "file"), agree(n, "differs", "differ")))?;
        return Ok(exit::CHANGES);
    }
    if a.verbose {
        out(&report.changes.iter().map(|l| format!("{l}\n")).collect::<String>())?;
    }
    out(&format!("{dir}: rendered {n} ({files}, {} bytes); {} changed\n", report.bytes, report.changes.len()))?;
    Ok(exit::OK)
}

/// `--stat`: one line per node, then the total and the largest overlay.
fn stat_table(report: &render::Report) -> String {
    let width = report.per_node.iter().map(|s| s.node.len()).max().unwrap_or(4).max(4);
    let mut t = format!("{:<width$}  {:>5}  {:>12}\n", "node", "files", "bytes");
    for s in &report.per_node {
        t.push_str(&format!("{:<width$}  {:>5}  {:>12}\n", s.node, s.files, s.bytes));
    }
    let largest = report.per_node.iter().map(|s| s.bytes).max().unwrap_or(0);
    t.push_str(&format!(
        "total: {}, {}, {}; largest overlay {}\n",
        plural(report.nodes, "node"),
        plural(report.files, "file"),
        human_bytes(report.bytes),
        human_bytes(largest)
    ));
    if report.nodes >= 300 {
        t.push_str(
            "hint: past a few hundred nodes, render each node on the node itself \
             (`render --node \"$(hostname)\"` at boot, or `apply --plan`) instead of every node in CI\n",
        );
    }
    t
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} bytes");
    }
    let (mut v, mut unit) = (b as f64 / 1024.0, 0);
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_bytes_picks_the_unit() {
        assert_eq!(super::human_bytes(512), "512 bytes");
        assert_eq!(super::human_bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
        assert_eq!(super::human_bytes(17 * 1024 * 1024 * 1024), "17.0 GiB");
    }
}
