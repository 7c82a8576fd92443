//! Command line: argument parsing and turning results into output and exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::compile::{LockState, compile};
use crate::error::{Error, exit};
use crate::topology::BackendKind;
use crate::{alloc, apply, diff, fsutil, plan, render, synth, topology};

#[derive(Parser, Debug)]
#[command(
    name = "flannel-gen",
    version,
    about = "Compile a flannel cluster topology into per-node network plans, files and kernel state",
    long_about = "flannel-gen compiles a cluster topology (YAML, kept in git) into a plan per node: \
the VXLAN device, routes, neighbours and FDB entries flanneld would have made. \
Exit codes: 0 success or no change, 1 changes or drift found, 2 bad input or usage, 3 failure against the system."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check topology files; every problem is reported as FILE:LINE:COL.
    ///
    /// Example: flannel-gen validate examples/*.yaml
    Validate {
        #[arg(required = true)]
        topology: Vec<PathBuf>,
        /// Also fail (exit 2) when the lock file is missing or stale.
        #[arg(long)]
        locked: bool,
    },
    /// Write the lock file (<topology>.lock) recording each node's subnet and VTEP MAC.
    ///
    /// Leases in an existing lock are kept, so adding, removing or reordering nodes
    /// never moves another node. Commit the lock beside the topology.
    ///
    /// Example: flannel-gen lock examples/vxlan-3node.yaml
    Lock {
        topology: PathBuf,
        /// Write nothing; exit 1 and show the difference when the lock would change.
        #[arg(long)]
        check: bool,
    },
    /// Print one node's plan: the kernel objects and settings it gets.
    ///
    /// Example: flannel-gen plan examples/vxlan-3node.yaml --node node-1 --format json
    Plan {
        topology: PathBuf,
        #[arg(long)]
        node: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Fail (exit 2) when the lock file is missing or stale instead of allocating.
        #[arg(long)]
        locked: bool,
    },
    /// Write every node's files as a root-filesystem overlay DIR/<node>/...
    ///
    /// subnet.env, docker options, systemd-networkd files for flannel.<vni>, ip -batch
    /// scripts, the CNI conflist, the boot unit, sysctls and plan.json. Files are
    /// staged and renamed into place; files an earlier render wrote and that are no
    /// longer produced are removed; nothing else in DIR is touched.
    ///
    /// Example: flannel-gen render examples/vxlan-3node.yaml --out /tmp/out --check
    Render {
        topology: PathBuf,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Render only these nodes (repeatable); other overlays in DIR are left alone.
        #[arg(long = "node", value_name = "N")]
        nodes: Vec<String>,
        /// Write nothing; exit 1 and print a diff when DIR differs from what would be rendered.
        #[arg(long)]
        check: bool,
        /// Fail (exit 2) when the lock file is missing or stale.
        #[arg(long)]
        locked: bool,
        /// Directory of templates overriding the built-in ones by file name.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// Name of the .network file that configures the uplink on the nodes
        /// (default: <uplink>.network); the drop-in goes to NAME.d/.
        #[arg(long, value_name = "NAME")]
        uplink_network: Option<String>,
        /// Where flannel-gen is installed on the nodes, for the boot unit.
        #[arg(long, value_name = "PATH", default_value = "/usr/local/bin/flannel-gen")]
        binary: String,
        /// Print one line per file written or removed.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Compare two topologies (or two plan.json files) node by node.
    ///
    /// Prints what changes for each node — routes that switch path, devices that
    /// appear or go, MTU and subnet changes and what they affect, migration
    /// hazards — then the unified diff of every rendered file that changes.
    /// Exit 0 identical, 1 differs, 2 bad input.
    ///
    /// Example: flannel-gen diff examples/vxlan-3node.yaml examples/hostgw-3node.yaml
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// Only these nodes (repeatable).
        #[arg(long = "node", value_name = "N")]
        nodes: Vec<String>,
        /// Per-file line counts instead of full diffs.
        #[arg(long)]
        stat: bool,
        #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
        color: ColorArg,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Directory of templates overriding the built-in ones by file name.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// Fail (exit 2) when either topology's lock file is missing or stale.
        #[arg(long)]
        locked: bool,
    },
    /// Make the kernel match a node's plan through netlink (reconcile, not replay).
    ///
    /// Reads the links, addresses, routes, neighbours and FDB entries there are,
    /// and changes only what differs from the plan: one line per change, `0 changes`
    /// on a converged node. Touches only the flannel.<vni> device and what is on it,
    /// and main-table routes inside the cluster network (not the node's own subnet).
    /// Exit 0 done, 1 changes pending (--dry-run), 2 bad input, 3 the system refused.
    ///
    /// Examples: flannel-gen apply --plan /etc/flannel-gen/plan.json
    ///           flannel-gen apply examples/vxlan-3node.yaml --node node-1 --dry-run
    #[command(group(clap::ArgGroup::new("source").required(true).args(["topology", "plan"])))]
    Apply {
        topology: Option<PathBuf>,
        /// The node to apply (with a topology); default: this host's name.
        #[arg(long, conflicts_with = "plan")]
        node: Option<String>,
        /// A rendered plan.json instead of a topology.
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// Print the changes without making them; exit 1 when any are pending.
        #[arg(long)]
        dry_run: bool,
        /// Apply inside the named network namespace (/run/netns/NAME).
        #[arg(long, value_name = "NAME")]
        netns: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Fail (exit 2) when the lock file is missing or stale.
        #[arg(long, conflicts_with = "plan")]
        locked: bool,
        /// Backend migration phase: 1 adds the new path and keeps the old one
        /// (run on every node first), 2 completes and prunes (the default).
        #[arg(long, value_enum, default_value_t = PhaseArg::Two)]
        phase: PhaseArg,
        /// Seconds to wait for another apply on the same namespace to finish.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        lock_wait: u64,
    },
    /// Print a synthetic topology (for benchmarks and scale tests) to stdout.
    ///
    /// Example: flannel-gen generate --nodes 5000 > /tmp/big.yaml
    Generate {
        #[arg(long)]
        nodes: usize,
        #[arg(long, value_enum, default_value_t = BackendArg::Vxlan)]
        backend: BackendArg,
        /// vxlan only: route directly to nodes on the same segment.
        #[arg(long)]
        direct_routing: bool,
        /// Spread nodes over this many underlay L2 segments.
        #[arg(long, default_value_t = 1)]
        segments: usize,
        #[arg(long, default_value = "synthetic")]
        cluster: String,
    },
    /// Print a topology skeleton from flannel's net-conf.json (kube-flannel ConfigMap).
    ///
    /// Keys are matched case-insensitively, as flanneld does. List the nodes in
    /// the output, then `flannel-gen lock` it.
    ///
    /// Example: flannel-gen import-netconf net-conf.json --cluster prod > cluster.yaml
    ImportNetconf {
        file: PathBuf,
        #[arg(long)]
        cluster: String,
    },
    /// Print a shell completion script.
    ///
    /// Example: flannel-gen completions bash > /etc/bash_completion.d/flannel-gen
    Completions { shell: clap_complete::Shell },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PhaseArg {
    #[value(name = "1")]
    One,
    #[value(name = "2")]
    Two,
}

impl From<PhaseArg> for apply::Phase {
    fn from(p: PhaseArg) -> Self {
        match p {
            PhaseArg::One => apply::Phase::Prepare,
            PhaseArg::Two => apply::Phase::Complete,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendArg {
    Vxlan,
    #[value(name = "host-gw")]
    HostGw,
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::BAD_INPUT } else { exit::OK });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

fn report(e: &Error) {
    let mut err = anstream::stderr();
    match e {
        Error::Invalid(d) => {
            let _ = writeln!(err, "{d}");
            let n = d.len();
            let _ = writeln!(err, "{n} error{}", if n == 1 { "" } else { "s" });
        }
        other => {
            let _ = writeln!(err, "error: {other}");
        }
    }
}

fn warn(msg: &str) {
    let _ = writeln!(anstream::stderr(), "warning: {msg}");
}

/// `compile`, and a warning when the lock file is missing or stale (with
/// `locked` that is an error inside `compile` instead).
fn compile_warned(topology: &Path, locked: bool) -> Result<crate::compile::Compiled, Error> {
    let c = compile(topology, locked)?;
    warn_lock(topology, c.lock);
    Ok(c)
}

fn warn_lock(topology: &Path, state: LockState) {
    if state != LockState::Fresh {
        warn(&format!(
            "{} is {}; subnets and MACs of new nodes are not recorded until you run `flannel-gen lock {}`",
            alloc::lock_path(topology).display(),
            state.describe(),
            topology.display()
        ));
    }
}

fn out(text: &str) -> Result<(), Error> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(Error::io("<stdout>")),
    }
}

pub fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Validate { topology, locked } => {
            let mut failed = None;
            for path in &topology {
                match compile_warned(path, locked) {
                    Ok(c) => {
                        out(&format!(
                            "{}: ok ({} nodes, backend {}{})\n",
                            path.display(),
                            c.cluster.nodes.len(),
                            c.cluster.backend.kind.as_str(),
                            if c.cluster.backend.direct_routing { " with directRouting" } else { "" }
                        ))?;
                    }
                    Err(e) => {
                        report(&e);
                        failed = Some(failed.map_or(e.exit_code(), |c: u8| c.max(e.exit_code())));
                    }
                }
            }
            Ok(failed.unwrap_or(exit::OK))
        }
        Command::Lock { topology, check } => {
            let c = compile(&topology, false)?;
            let path = alloc::lock_path(&topology);
            let text = alloc::render_lock(&c.cluster, &c.alloc);
            let old = std::fs::read_to_string(&path).unwrap_or_default();
            if old == text {
                out(&format!("{}: up to date ({} nodes)\n", path.display(), c.alloc.leases.len()))?;
                return Ok(exit::OK);
            }
            if check {
                let name = path.display().to_string();
                out(&similar::TextDiff::from_lines(&old, &text).unified_diff().header(&name, &name).to_string())?;
                return Ok(exit::CHANGES);
            }
            fsutil::write_atomic(&path, text.as_bytes(), 0o644)?;
            out(&format!("{}: wrote {} leases\n", path.display(), c.alloc.leases.len()))?;
            Ok(exit::OK)
        }
        Command::Plan { topology, node, format, locked } => {
            let c = compile_warned(&topology, locked)?;
            let p = plan::build(&c.cluster, &c.alloc, &node)?;
            match format {
                Format::Text => out(&p.to_string())?,
                Format::Json => out(&p.to_json())?,
            }
            Ok(exit::OK)
        }
        Command::Render { topology, out: dir, nodes, check, locked, templates, uplink_network, binary, verbose } => {
            let c = compile_warned(&topology, locked)?;
            if let Some(n) = uplink_network.as_deref().filter(|n| !n.ends_with(".network") || n.contains('/')) {
                return Err(Error::Usage(format!("--uplink-network {n}: expected a file name ending in .network")));
            }
            let plans = if nodes.is_empty() {
                plan::build_all(&c.cluster, &c.alloc)?
            } else {
                nodes.iter().map(|n| plan::build(&c.cluster, &c.alloc, n)).collect::<Result<_, _>>()?
            };
            let t = render::Templates::load(templates.as_deref())?;
            let opts = render::RenderOptions { uplink_network, binary };
            let mode = if check { render::Mode::Check } else { render::Mode::Write };
            let report = render::render_out(&plans, &t, &opts, &dir, mode, nodes.is_empty())?;
            if check {
                if report.changes.is_empty() {
                    out(&format!("{}: up to date ({} nodes, {} files)\n", dir.display(), report.nodes, report.files))?;
                    return Ok(exit::OK);
                }
                out(&report.diffs)?;
                out(&format!("{}: {} files differ from the topology\n", dir.display(), report.changes.len()))?;
                return Ok(exit::CHANGES);
            }
            if verbose {
                out(&report.changes.iter().map(|l| format!("{l}\n")).collect::<String>())?;
            }
            out(&format!(
                "{}: rendered {} nodes ({} files, {} bytes); {} changed\n",
                dir.display(),
                report.nodes,
                report.files,
                report.bytes,
                report.changes.len()
            ))?;
            Ok(exit::OK)
        }
        Command::Apply { topology, node, plan: plan_file, dry_run, netns, format, locked, phase, lock_wait } => {
            let p = match (topology, plan_file) {
                (Some(topo), _) => {
                    let c = compile_warned(&topo, locked)?;
                    let node = match node {
                        Some(n) => n,
                        None => hostname()?,
                    };
                    plan::build(&c.cluster, &c.alloc, &node)?
                }
                (None, Some(file)) => plan::read_plan(&file)?,
                (None, None) => {
                    return Err(Error::Usage("give a topology and --node, or --plan FILE".into()));
                }
            };
            let opts = apply::ApplyOptions {
                dry_run,
                netns,
                phase: phase.into(),
                lock_wait: std::time::Duration::from_secs(lock_wait),
            };
            let report = apply::run(&p, &opts)?;
            out(&apply_output(&p, &report, dry_run, format))?;
            Ok(if dry_run && !report.changes.is_empty() { exit::CHANGES } else { exit::OK })
        }
        Command::Diff { old, new, nodes, stat, color, format, templates, locked } => {
            let (a, b) = (plans_of(&old, locked)?, plans_of(&new, locked)?);
            let t = render::Templates::load(templates.as_deref())?;
            let diffs = diff::diff(&a, &b, &nodes, &t, &render::RenderOptions::default())?;
            match format {
                Format::Json => {
                    let v = serde_json::json!({"changed": !diffs.is_empty(), "nodes": diffs});
                    out(&format!("{v}\n"))?;
                }
                Format::Text => {
                    let choice = match color {
                        ColorArg::Auto => anstream::ColorChoice::Auto,
                        ColorArg::Always => anstream::ColorChoice::Always,
                        ColorArg::Never => anstream::ColorChoice::Never,
                    };
                    let mut stream = anstream::AutoStream::new(std::io::stdout(), choice);
                    match stream.write_all(diff::to_text(&diffs, stat).as_bytes()) {
                        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(Error::io("<stdout>")(e)),
                        _ => {}
                    }
                }
            }
            Ok(if diffs.is_empty() { exit::OK } else { exit::CHANGES })
        }
        Command::Generate { nodes, backend, direct_routing, segments, cluster } => {
            if nodes == 0 || segments == 0 || nodes / segments > synth::MAX_NODES_PER_SEGMENT {
                return Err(Error::Usage(format!(
                    "--nodes must be at least 1 and at most {} per segment",
                    synth::MAX_NODES_PER_SEGMENT
                )));
            }
            let backend = match backend {
                BackendArg::Vxlan => BackendKind::Vxlan,
                BackendArg::HostGw => BackendKind::HostGw,
            };
            out(&synth::topology_yaml(&synth::SynthSpec { nodes, backend, direct_routing, segments, cluster }))?;
            Ok(exit::OK)
        }
        Command::ImportNetconf { file, cluster } => {
            let text = topology::parse::read_text(&file)?;
            let y = topology::netconf::topology_from_netconf(&text, &cluster)
                .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
            out(&y)?;
            Ok(exit::OK)
        }
        Command::Completions { shell } => {
            // Generate into memory: clap_complete panics when the pipe closes early.
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "flannel-gen", &mut buf);
            out(&String::from_utf8_lossy(&buf))?;
            Ok(exit::OK)
        }
    }
}

fn hostname() -> Result<String, Error> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").map_err(Error::io("/proc/sys/kernel/hostname"))?;
    Ok(name.trim().to_string())
}

fn apply_output(p: &plan::NodePlan, r: &apply::ApplyReport, dry_run: bool, format: Format) -> String {
    let n = r.changes.len();
    match format {
        Format::Json => {
            let changes: Vec<serde_json::Value> = r
                .changes
                .iter()
                .map(|c| serde_json::json!({"op": c.sign().to_string(), "kind": c.kind(), "object": c.object()}))
                .collect();
            let v = serde_json::json!({"node": p.node, "dryRun": dry_run, "count": n, "changes": changes});
            format!("{v}\n")
        }
        Format::Text => {
            let mut s: String = r.changes.iter().map(|c| format!("{c}\n")).collect();
            let noun = if n == 1 { "change" } else { "changes" };
            if dry_run && n > 0 {
                s.push_str(&format!("{n} {noun} pending (dry run; nothing was changed)\n"));
            } else {
                s.push_str(&format!("{n} {noun}\n"));
            }
            s
        }
    }
}

/// Every node's plan from a topology, or the one plan in a plan.json.
fn plans_of(path: &Path, locked: bool) -> Result<Vec<plan::NodePlan>, Error> {
    if path.extension().is_some_and(|e| e == "json") {
        return Ok(vec![plan::read_plan(path)?]);
    }
    let c = compile_warned(path, locked)?;
    Ok(plan::build_all(&c.cluster, &c.alloc)?)
}
