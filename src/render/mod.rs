//! Back end 1: a node plan -> the files flanneld's world expects, as a
//! root-filesystem overlay per node (README "render: the files").
//!
//! [`artefacts`] decides which files a plan produces; [`view`] is what the
//! templates see; [`templates`] renders them, except the per-peer ones that
//! `native` writes while they are not overridden; [`output`] stages, writes,
//! prunes and checks the `--out` tree.

mod native;
pub mod output;
pub mod templates;
pub mod tmpfiles;
pub mod view;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use minijinja::Value;

use crate::plan::NodePlan;
pub use output::OutputError;
pub use templates::{DEFAULT_FUEL, Templates};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {name}: {source:#}")]
    Template { name: String, source: Box<minijinja::Error> },
    #[error("{dir}: cannot read templates: {source}")]
    TemplateDir { dir: PathBuf, source: std::io::Error },
    #[error("{path}: not a flannel-gen template (known: {known})")]
    UnknownTemplate { path: PathBuf, known: String },
    #[error("{path}: refusing to read this template: {why}")]
    TemplateFile { path: PathBuf, why: String },
    #[error("template {name}: stopped after spending its budget of {fuel} fuel (--template-fuel raises it)")]
    OutOfFuel { name: String, fuel: u64 },
    /// A per-device job whose device the view does not have (a bug).
    #[error("{template}: the view has no device {device:?}")]
    NoDevice { template: &'static str, device: Option<usize> },
    #[error("a template rendering thread panicked")]
    Panicked,
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Settings that are about the node's file layout rather than the network.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Name of the `.network` file that configures the uplink on the node; the
    /// drop-in goes to `<name>.d/`. `None`: `<uplink>.network`.
    pub uplink_network: Option<String>,
    /// Where flannel-gen is installed on the node (for the boot unit).
    pub binary: String,
    /// Where subnet.env goes on the node (flanneld's `--subnet-file`).
    pub subnet_file: String,
}

/// flanneld's default `--subnet-file`.
pub const DEFAULT_SUBNET_FILE: &str = "/run/flannel/subnet.env";

/// Where the package installs flannel-gen.
pub const DEFAULT_BINARY: &str = "/usr/bin/flannel-gen";

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { uplink_network: None, binary: DEFAULT_BINARY.into(), subnet_file: DEFAULT_SUBNET_FILE.into() }
    }
}

/// One file of a node's overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Relative to the node's overlay root, e.g. `run/flannel/subnet.env`.
    pub path: String,
    pub bytes: Vec<u8>,
    pub mode: u32,
}

/// Path of the per-node list of files flannel-gen owns (for pruning).
pub const MANIFEST: &str = "etc/flannel-gen/manifest";
/// Path of the plan itself in the overlay.
pub const PLAN_JSON: &str = "etc/flannel-gen/plan.json";
/// From this many peers a node's templates are rendered on two threads.
const PARALLEL_PEERS: usize = 500;
const MODE: u32 = 0o644;

/// One file to render: its overlay path, its template, and for per-device
/// templates the index of the device in the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub path: String,
    pub template: &'static str,
    pub device: Option<usize>,
}

fn job(path: impl Into<String>, template: &'static str) -> Job {
    Job { path: path.into(), template, device: None }
}

/// The systemd units that are the same on every node (they read the node's
/// plan.json), by file name and template: what the package installs.
pub const UNITS: &[(&str, &str)] = &[
    ("flannel-gen.service", "flannel-gen.service.j2"),
    ("flannel-gen-watch.service", "flannel-gen-watch.service.j2"),
    ("flannel-gen-udp.service", "flannel-gen-udp.service.j2"),
];

/// [`UNITS`] rendered with `ExecStart` at `binary`; a node's render writes
/// the same bytes to its overlay.
pub fn units(t: &Templates, binary: &str) -> Result<Vec<RenderedFile>, RenderError> {
    let ctx = minijinja::context! { binary => binary };
    UNITS
        .iter()
        .map(|(name, template)| {
            Ok(RenderedFile { path: (*name).into(), bytes: t.render(template, &ctx)?.into_bytes(), mode: MODE })
        })
        .collect()
}

/// The drop-in of a connected interface: the direct routes leaving by it.
const CONNECTED_TEMPLATE: &str = "connected.conf.j2";

/// Every artefact the plan calls for.
pub fn artefacts(plan: &NodePlan, opts: &RenderOptions) -> Vec<Job> {
    let mut v = vec![
        job(opts.subnet_file.trim_start_matches('/'), "subnet.env.j2"),
        job("etc/docker/daemon.json", "daemon.json.j2"),
        job("etc/cni/net.d/10-flannel.conflist", "flannel.conflist.j2"),
        job("etc/systemd/system/flannel-gen.service", "flannel-gen.service.j2"),
        job("etc/systemd/system/flannel-gen-watch.service", "flannel-gen-watch.service.j2"),
        job("etc/sysctl.d/50-flannel-gen.conf", "sysctl.conf.j2"),
        job("etc/flannel-gen/route.batch", "route.batch.j2"),
        // Also on an IPv6-only node: mk-docker-opts.sh then writes no --bip
        // (FLANNEL_SUBNET is unset) but still IPMASQ, MTU and DOCKER_OPTS.
        job("run/docker_opts.env", "docker_opts.env.j2"),
    ];
    let devices = plan.vxlan_devices();
    for (i, d) in devices.iter().enumerate() {
        let base = format!("etc/systemd/network/50-{}", d.name);
        for (ext, template) in
            [("netdev", "flannel.netdev.j2"), ("network", "flannel.network.j2"), ("link", "flannel.link.j2")]
        {
            v.push(Job { path: format!("{base}.{ext}"), template, device: Some(i) });
        }
    }
    if !devices.is_empty() {
        v.push(job("etc/flannel-gen/link.batch", "link.batch.j2"));
        v.push(job("etc/flannel-gen/neigh.batch", "neigh.batch.j2"));
        v.push(job("etc/flannel-gen/fdb.batch", "fdb.batch.j2"));
    }
    if let Some(t) = plan.tun_device() {
        let base = format!("etc/systemd/network/50-{}", t.name);
        v.push(job(format!("{base}.netdev"), "flannel0.netdev.j2"));
        v.push(job(format!("{base}.network"), "flannel0.network.j2"));
        v.push(job("etc/flannel-gen/link.batch", "link.batch.j2"));
        v.push(job("etc/systemd/system/flannel-gen-udp.service", "flannel-gen-udp.service.j2"));
    }
    for (i, d) in plan.wireguard_devices().iter().enumerate() {
        let base = format!("etc/systemd/network/50-{}", d.name);
        v.push(Job { path: format!("{base}.netdev"), template: "wireguard.netdev.j2", device: Some(i) });
        v.push(Job { path: format!("{base}.network"), template: "wireguard.network.j2", device: Some(i) });
        let conf = format!("etc/flannel-gen/{}.conf", d.name);
        v.push(Job { path: conf, template: "wireguard.conf.j2", device: Some(i) });
    }
    rule_files(plan, &mut v);
    if !devices.is_empty() || plan.peers.iter().any(|p| p.path() == "host-gw") || plan.blackhole_route {
        let network = opts.uplink_network.clone().unwrap_or_else(|| format!("{}.network", plan.uplink.name));
        v.push(job(format!("etc/systemd/network/{network}.d/50-flannel-gen.conf"), "uplink.conf.j2"));
    }
    for (i, c) in plan.connected.iter().enumerate() {
        let path = format!("etc/systemd/network/{}.network.d/50-flannel-gen.conf", c.interface);
        v.push(Job { path, template: CONNECTED_TEMPLATE, device: Some(i) });
    }
    v
}

/// The rules files for their tool, and the unit that loads them at boot.
fn rule_files(plan: &NodePlan, v: &mut Vec<Job>) {
    use crate::topology::RulesBackend;
    let rules = plan.family_rules();
    let Some(t) = plan.traffic_rules.filter(|_| !rules.is_empty()) else { return };
    match t.backend {
        RulesBackend::Iptables => {
            for r in &rules {
                let (path, template) = match r.family {
                    crate::netaddr::Family::V4 => ("etc/flannel-gen/iptables.rules", "iptables.rules.j2"),
                    crate::netaddr::Family::V6 => ("etc/flannel-gen/ip6tables.rules", "ip6tables.rules.j2"),
                };
                v.push(job(path, template));
            }
        }
        RulesBackend::Nftables => v.push(job("etc/flannel-gen/flannel-gen.nft", "flannel-gen.nft.j2")),
    }
    v.push(job("etc/systemd/system/flannel-gen-rules.service", "flannel-gen-rules.service.j2"));
}

/// Every file of one node's overlay, sorted by path, manifest included.
pub fn render_node(t: &Templates, plan: &NodePlan, opts: &RenderOptions) -> Result<Vec<RenderedFile>, RenderError> {
    let mut view = view::View::new(plan, &opts.binary);
    let (native, jinja): (Vec<Job>, Vec<Job>) =
        artefacts(plan, opts).into_iter().partition(|j| t.is_native(j.template));
    let plan_json = || RenderedFile { path: PLAN_JSON.into(), bytes: plan.to_json().into_bytes(), mode: MODE };
    // A big node renders on two threads: the networkd .network files here,
    // plan.json and the other per-peer files beside (about equal work).
    let mut files = if plan.peers.len() >= PARALLEL_PEERS {
        let (mine, other): (Vec<Job>, Vec<Job>) = native.into_iter().partition(|j| j.template == "flannel.network.j2");
        let (mine, other) = std::thread::scope(|s| {
            let other = s.spawn(|| {
                render_native(&other, &view).map(|mut v| {
                    v.push(plan_json());
                    v
                })
            });
            (render_native(&mine, &view), other.join())
        });
        let mut files = mine?;
        files.extend(other.map_err(|_| RenderError::Panicked)??);
        files
    } else {
        let mut files = render_native(&native, &view)?;
        files.push(plan_json());
        files
    };
    if !t.overridden() {
        // Only the per-peer templates read the peers, and they are written
        // natively: minijinja need not copy 5000 of them into its values.
        view.forget_peers();
    }
    files.extend(render_jinja(t, &jinja, view)?);
    files.extend(tmpfiles::runtime_files(&files));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut manifest =
        String::from("# Files flannel-gen wrote in this overlay; it prunes them when they are no longer produced.\n");
    for f in &files {
        manifest.push_str(&f.path);
        manifest.push('\n');
    }
    files.push(RenderedFile { path: MANIFEST.into(), bytes: manifest.into_bytes(), mode: MODE });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn render_native(jobs: &[Job], view: &view::View) -> Result<Vec<RenderedFile>, RenderError> {
    jobs.iter()
        .map(|j| {
            let text = native::render(j.template, view, j.device)
                .ok_or_else(|| RenderError::NoDevice { template: j.template, device: j.device })?;
            Ok(RenderedFile { path: j.path.clone(), bytes: text.into_bytes(), mode: MODE })
        })
        .collect()
}

fn render_jinja(t: &Templates, jobs: &[Job], view: view::View) -> Result<Vec<RenderedFile>, RenderError> {
    let base = Value::from(minijinja::value::Serde(view));
    jobs.iter()
        .map(|j| {
            let ctx = match j.device {
                Some(i) => {
                    // Per-device templates index the overlay devices, the
                    // WireGuard devices, or the connected interfaces.
                    let list = match j.template {
                        CONNECTED_TEMPLATE => "connected",
                        t if t.starts_with("wireguard.") => "wireguard",
                        _ => "devices",
                    };
                    let device = base.get_attr(list).and_then(|d| d.get_item(&Value::from(i)));
                    let device =
                        device.map_err(|e| RenderError::Template { name: j.template.into(), source: Box::new(e) })?;
                    minijinja::context! { device => device, ..base.clone() }
                }
                None => base.clone(),
            };
            Ok(RenderedFile { path: j.path.clone(), bytes: t.render(j.template, &ctx)?.into_bytes(), mode: MODE })
        })
        .collect()
}

/// What `render` does with the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stage and rename changed files into `--out`, prune stale ones.
    Write,
    /// Change nothing; report what differs.
    Check,
}

/// The outcome of rendering a set of nodes into `--out`.
#[derive(Debug, Default)]
pub struct Report {
    pub nodes: usize,
    pub files: usize,
    pub bytes: u64,
    /// `+`/`~`/`-` lines, sorted by path.
    pub changes: Vec<String>,
    /// Unified diffs (check mode only).
    pub diffs: String,
    /// Files and bytes of each node's overlay, in plan order.
    pub per_node: Vec<NodeStat>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStat {
    pub node: String,
    pub files: usize,
    pub bytes: u64,
}

struct NodeResult {
    files: usize,
    bytes: u64,
    staged: Vec<output::Staged>,
    diffs: String,
    summaries: Vec<String>,
}

/// Renders `plans` into `out`. Nodes are rendered in parallel; in write mode
/// nothing is renamed into place until every node rendered and staged cleanly.
pub fn render_out(
    plans: &[NodePlan],
    t: &Templates,
    opts: &RenderOptions,
    out: &Path,
    mode: Mode,
    prune_other_nodes: bool,
) -> Result<Report, RenderError> {
    output::prepare_out(out, false)?;
    let stage = match mode {
        Mode::Write => Some(output::Stage::new(out)?),
        Mode::Check => None,
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, NodeResult)>> = Mutex::new(Vec::with_capacity(plans.len()));
    let failure: Mutex<Option<RenderError>> = Mutex::new(None);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(plans.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= plans.len() || failure.lock().map_or(true, |f| f.is_some()) {
                        break;
                    }
                    match render_one(&plans[i], t, opts, out, stage.as_ref()) {
                        Ok(r) => {
                            if let Ok(mut v) = results.lock() {
                                v.push((i, r));
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e); // the stage is dropped and removed; `out` is untouched
    }
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);

    let mut report = Report { nodes: plans.len(), ..Report::default() };
    let mut staged = Vec::new();
    for (i, r) in results {
        report.per_node.push(NodeStat { node: plans[i].node.clone(), files: r.files, bytes: r.bytes });
        report.files += r.files;
        report.bytes += r.bytes;
        report.changes.extend(r.summaries);
        report.diffs.push_str(&r.diffs);
        staged.extend(r.staged);
    }
    if prune_other_nodes {
        let keep = plans.iter().map(|p| p.node.clone()).collect();
        for c in output::orphan_changes(out, &keep)? {
            report.changes.push(c.summary());
            match &stage {
                Some(st) => staged.push(st.add(&c)?),
                None => report.diffs.push_str(&c.diff()),
            }
        }
    }
    if let Some(st) = stage {
        st.commit(&staged)?;
    }
    Ok(report)
}

fn render_one(
    plan: &NodePlan,
    t: &Templates,
    opts: &RenderOptions,
    out: &Path,
    stage: Option<&output::Stage>,
) -> Result<NodeResult, RenderError> {
    let files = render_node(t, plan, opts)?;
    let bytes = files.iter().map(|f| f.bytes.len() as u64).sum();
    let count = files.len();
    let changes = output::node_changes(out, output::NodeFiles { node: plan.node.clone(), files })?;
    let mut r = NodeResult { files: count, bytes, staged: Vec::new(), diffs: String::new(), summaries: Vec::new() };
    for c in &changes {
        r.summaries.push(c.summary());
        match stage {
            Some(st) => r.staged.push(st.add(c)?),
            None => r.diffs.push_str(&c.diff()),
        }
    }
    Ok(r)
}
