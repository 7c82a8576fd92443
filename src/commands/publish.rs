//! `flannel-gen publish etcd|kube TOPO`: flannel-gen nodes' leases where
//! flanneld nodes read them, so a mixed cluster routes both ways.

use std::path::PathBuf;

use clap::ValueEnum;

use super::import::EtcdConn;
use super::{out, unknown_nodes};
use crate::error::{Error, exit};
use crate::registry::Published;
use crate::registry::kube;
#[cfg(feature = "etcd")]
use {
    super::{plural, warn},
    crate::registry::etcd::Store,
    crate::registry::publish::{Action, PublishPlan, records_dir},
};

/// Publish flannel-gen nodes' leases to flanneld's registry.
///
/// etcd: each node's lease is written in flanneld's exact format as a
/// reservation (no TTL), and `<prefix>/config` if it is absent. flannel-gen
/// records what it wrote under `<prefix>/flannel-gen/owned/`; a key is its
/// own only while that record matches the key byte for byte and the key
/// has no etcd lease. Anything else is never changed or deleted; `--adopt
/// NODE` takes over a key whose facts already equal the node's (after
/// flanneld is stopped there). Conflicts write nothing (exit 3).
///
/// kube: prints the Node annotations and pod CIDRs flanneld would write, as
/// `kubectl patch` commands or a List for `kubectl apply --server-side`.
///
/// Examples:
///   flannel-gen publish etcd cluster.yaml --endpoints http://10.0.0.2:2379 --prefix /atomic.io/network --dry-run
///   flannel-gen publish kube cluster.yaml > publish.sh
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    target: Target,
}

#[derive(clap::Subcommand, Debug)]
enum Target {
    /// To flanneld's etcd v3 registry.
    Etcd(EtcdArgs),
    /// As Node patches for flanneld's kube subnet manager.
    Kube(KubeArgs),
}

#[derive(clap::Args, Debug)]
struct EtcdArgs {
    /// The topology (its lock must be up to date).
    #[arg(value_name = "TOPO")]
    topology: PathBuf,
    #[command(flatten)]
    conn: EtcdConn,
    /// Show the writes; write nothing. Exit 1 when there would be writes.
    #[arg(long)]
    dry_run: bool,
    /// Take over NODE's key when its facts equal the node's (a node moving off flanneld).
    #[arg(long, value_name = "NODE")]
    adopt: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum KubeFormat {
    /// A shell script of `kubectl patch node … --type=merge`.
    Script,
    /// A List of partial Nodes (`kubectl apply --server-side -f`).
    Json,
}

#[derive(clap::Args, Debug)]
struct KubeArgs {
    /// The topology (its lock must be up to date).
    #[arg(value_name = "TOPO")]
    topology: PathBuf,
    /// What to print: a kubectl script or a List of partial Nodes.
    #[arg(long, value_enum, default_value_t = KubeFormat::Script)]
    format: KubeFormat,
    /// flanneld's --kube-annotation-prefix.
    #[arg(long, value_name = "PREFIX", default_value = kube::DEFAULT_PREFIX)]
    annotation_prefix: String,
    /// Only these nodes (repeatable).
    #[arg(long, value_name = "NAME")]
    node: Vec<String>,
    /// Also write spec.podCIDR(s): flanneld never does (the controller-manager
    /// allocates them); only for clusters run with --allocate-node-cidrs=false.
    #[arg(long)]
    pod_cidr: bool,
    /// Set the NetworkUnavailable=False condition (Reason FlannelIsUp), as
    /// flanneld's --set-node-network-unavailable (default true) does.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    set_node_network_unavailable: bool,
}

pub fn run(a: Args) -> Result<u8, Error> {
    match a.target {
        Target::Etcd(e) => run_etcd(e),
        Target::Kube(k) => run_kube(k),
    }
}

/// Every node's lease from its plan, with the cluster.
fn published(topology: &std::path::Path) -> Result<(crate::topology::Cluster, Vec<Published>), Error> {
    let c = crate::compile::compile(topology, true)?;
    // One plan at a time: each holds every peer, so all at once is n².
    let published = c
        .cluster
        .nodes
        .iter()
        .map(|n| crate::plan::build(&c.cluster, &c.leases, &n.name).map(|p| Published::of_plan(&p)))
        .collect::<Result<_, _>>()?;
    Ok((c.cluster, published))
}

#[cfg(not(feature = "etcd"))]
fn run_etcd(_: EtcdArgs) -> Result<u8, Error> {
    Err(Error::Usage(super::WITHOUT_ETCD.into()))
}

#[cfg(feature = "etcd")]
fn run_etcd(a: EtcdArgs) -> Result<u8, Error> {
    let target = a.conn.target()?;
    let (cluster, nodes) = published(&a.topology)?;
    let known: Vec<&str> = nodes.iter().map(|n| n.node.as_str()).collect();
    if let Some(m) = unknown_nodes(&a.adopt, &known) {
        return Err(Error::Usage(format!("--adopt: {m}")));
    }
    let mut store = Store::connect(&target)?;
    let snap = store.snapshot(Some(&records_dir(&target)))?;
    let plan = crate::registry::publish::plan(&target, &cluster, &nodes, &snap, &a.adopt);
    for w in &plan.warnings {
        warn(w);
    }
    if !plan.conflicts.is_empty() {
        let list: Vec<String> = plan.conflicts.iter().map(|c| format!("  {c}")).collect();
        return Err(Error::Conflict(format!(
            "publishing would overwrite what flannel-gen does not own; nothing was written:\n{}",
            list.join("\n")
        )));
    }
    out(&describe(&plan))?;
    if a.dry_run {
        out(&match plan.writes() {
            0 => "dry run: nothing to write\n".to_string(),
            n => format!("dry run: {} not written\n", plural(n, "write")),
        })?;
        return Ok(if plan.writes() == 0 { exit::OK } else { exit::CHANGES });
    }
    commit(&mut store, &plan)
}

#[cfg(feature = "etcd")]
fn commit(store: &mut Store, plan: &PublishPlan) -> Result<u8, Error> {
    let txns = plan.transactions();
    let mut revision = 0;
    for (i, (guards, writes)) in txns.iter().enumerate() {
        let (ok, rev) = store.commit(guards, writes)?;
        if !ok {
            return Err(Error::Conflict(format!(
                "etcd changed while publishing: transaction {} of {} found a key changed since it was read and wrote nothing ({} before it were written, each complete); run publish again",
                i + 1,
                txns.len(),
                i
            )));
        }
        revision = rev;
    }
    if !txns.is_empty() {
        let (writes, txns) = (plural(plan.writes(), "write"), plural(txns.len(), "transaction"));
        out(&format!("committed {writes} in {txns} (revision {revision})\n"))?;
    }
    Ok(exit::OK)
}

/// One line per decision, `etcdctl`-style keys and values.
#[cfg(feature = "etcd")]
fn describe(plan: &PublishPlan) -> String {
    let ttl =
        |t: &Option<i64>| t.map_or_else(|| "flanneld lease".to_string(), |t| format!("flanneld lease, {t} s left"));
    let held = |old: &crate::registry::etcd::Kv, t: &Option<i64>| {
        if old.lease == 0 { "an unowned reservation".to_string() } else { ttl(t) }
    };
    let mut s = String::new();
    for a in &plan.actions {
        let line = match a {
            Action::CreateConfig { key, value } => format!("create  {key} {value}"),
            Action::Create(e) => format!("create  {} {}  ({})", e.key, e.value, e.node),
            Action::Keep(e) => format!("keep    {}  ({}, unchanged)", e.key, e.node),
            Action::Update { entry: e, old } => {
                format!("update  {} {}  ({}; was {})", e.key, e.value, e.node, old.value)
            }
            Action::Adopt { entry: e, old, ttl: t } => {
                format!("adopt   {} {}  ({}; was {}, now a reservation)", e.key, e.value, e.node, held(old, t))
            }
            Action::LeftAlone { entry: e, old, ttl: t } => format!(
                "leave   {}  ({}: {} with the same facts; `--adopt {}` once flanneld is stopped there)",
                e.key,
                e.node,
                held(old, t),
                e.node
            ),
            Action::Delete { old, node } => format!("delete  {}  ({node}, no longer in the topology)", old.key),
            Action::Forget { record_key, key, node } => {
                format!("forget  {record_key}  ({node}: {key} is no longer flannel-gen's)")
            }
        };
        s.push_str(&line);
        s.push('\n');
    }
    s
}

fn run_kube(a: KubeArgs) -> Result<u8, Error> {
    let ann = kube::Annotations::new(&a.annotation_prefix).map_err(Error::Usage)?;
    let (cluster, mut nodes) = published(&a.topology)?;
    let known: Vec<&str> = nodes.iter().map(|n| n.node.as_str()).collect();
    if let Some(m) = unknown_nodes(&a.node, &known) {
        return Err(Error::Usage(m));
    }
    if !a.node.is_empty() {
        nodes.retain(|n| a.node.contains(&n.node));
    }
    let o = kube::KubeOptions { pod_cidr: a.pod_cidr, network_available: a.set_node_network_unavailable };
    out(&match a.format {
        KubeFormat::Script => kube::script(&cluster.name, &nodes, &ann, o),
        KubeFormat::Json => kube::list(&nodes, &ann, o),
    })?;
    Ok(exit::OK)
}
