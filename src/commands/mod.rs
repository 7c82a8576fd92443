//! One module per subcommand, each with its `Args` (clap) and one `run`.
//! Shared here: writing to stdout and reading a topology or a plan the way
//! every command does; errors and warnings go through [`report`].

pub mod apply;
pub mod cloud;
pub mod completions;
pub mod confirm;
pub mod diff;
pub mod doctor;
pub mod generate;
pub mod graph;
pub mod healthz;
pub mod import;
pub mod import_netconf;
pub mod lock;
pub mod man;
pub mod node_change;
pub mod plan;
pub mod publish;
pub mod render;
pub mod report;
pub mod rollback;
pub mod source;
pub mod target;
pub mod teardown;
pub mod templates;
#[cfg(feature = "udp")]
pub mod udp;
pub mod units;
pub mod validate;
pub mod wireguard;

use std::io::Write;
use std::path::Path;

use clap::ValueEnum;

pub use crate::words::plural;
pub use report::{report, warn};

use crate::compile::{Compiled, LockState, compile};
use crate::error::Error;
use crate::plan::NodePlan;

/// `import etcd` and `publish etcd` in a build without the etcd client.
#[cfg(not(feature = "etcd"))]
pub const WITHOUT_ETCD: &str = "this flannel-gen was built without the etcd client (cargo feature `etcd`); `import kube` and `publish kube` work without it";

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Writes to stdout; a closed pipe (`| head`) is the reader's choice, not a failure.
pub fn out(text: &str) -> Result<(), Error> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(Error::io("<stdout>")),
    }
}

/// `compile`, and a warning when the lock file is missing or stale (with
/// `locked` that is an error inside `compile` instead).
pub fn compile_warned(topology: &Path, locked: bool) -> Result<Compiled, Error> {
    let c = compile(topology, locked)?;
    if c.lock != LockState::Fresh && !crate::input::is_stdin(topology) {
        let lock = crate::lock::lock_path(topology);
        report::warn_about(
            &lock,
            &format!(
                "the lock file is {}; subnets and MACs of new nodes are not recorded until you run `flannel-gen lock {}`",
                c.lock.describe(),
                topology.display()
            ),
        );
    }
    Ok(c)
}

/// Every node's plan from a topology, or the one plan in a plan.json.
pub fn plans_of(path: &Path, locked: bool) -> Result<Vec<NodePlan>, Error> {
    if path.extension().is_some_and(|e| e == "json") {
        return Ok(vec![crate::plan::read_plan(path)?]);
    }
    let c = compile_warned(path, locked)?;
    Ok(crate::plan::build_all(&c.cluster, &c.leases)?)
}

/// Names given with `--node` that no side knows: a usage error with a suggestion.
pub fn unknown_nodes(asked: &[String], known: &[&str]) -> Option<String> {
    let missing: Vec<&String> = asked.iter().filter(|n| !known.contains(&n.as_str())).collect();
    let first = missing.first()?;
    let hint = crate::diag::suggest(first, known.iter().copied())
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    let names: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
    Some(format!("no node {} in the topology{hint}", names.join(", ")))
}

/// Removes repeated values, keeping the first of each.
pub fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.into_iter().filter(|n| seen.insert(n.clone())).collect()
}
