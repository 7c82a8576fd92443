//! Command line: argument parsing and turning results into output and exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::compile::{LockState, compile};
use crate::error::{Error, exit};
use crate::topology::BackendKind;
use crate::{alloc, fsutil, plan, synth};

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
            return ExitCode::from(if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            });
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
                match compile(path, locked) {
                    Ok(c) => {
                        if !locked {
                            warn_lock(path, c.lock);
                        }
                        out(&format!(
                            "{}: ok ({} nodes, backend {}{})\n",
                            path.display(),
                            c.cluster.nodes.len(),
                            c.cluster.backend.kind.as_str(),
                            if c.cluster.backend.direct_routing {
                                " with directRouting"
                            } else {
                                ""
                            }
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
                out(&format!(
                    "{}: up to date ({} nodes)\n",
                    path.display(),
                    c.alloc.leases.len()
                ))?;
                return Ok(exit::OK);
            }
            if check {
                let name = path.display().to_string();
                out(&similar::TextDiff::from_lines(&old, &text)
                    .unified_diff()
                    .header(&name, &name)
                    .to_string())?;
                return Ok(exit::CHANGES);
            }
            fsutil::write_atomic(&path, text.as_bytes(), 0o644)?;
            out(&format!(
                "{}: wrote {} leases\n",
                path.display(),
                c.alloc.leases.len()
            ))?;
            Ok(exit::OK)
        }
        Command::Plan {
            topology,
            node,
            format,
            locked,
        } => {
            let c = compile(&topology, locked)?;
            if !locked {
                warn_lock(&topology, c.lock);
            }
            let p = plan::build(&c.cluster, &c.alloc, &node)?;
            match format {
                Format::Text => out(&p.to_string())?,
                Format::Json => out(&p.to_json())?,
            }
            Ok(exit::OK)
        }
        Command::Generate {
            nodes,
            backend,
            direct_routing,
            segments,
            cluster,
        } => {
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
            out(&synth::topology_yaml(&synth::SynthSpec {
                nodes,
                backend,
                direct_routing,
                segments,
                cluster,
            }))?;
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
