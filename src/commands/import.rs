//! `flannel-gen import etcd|kube …`: a running flannel cluster as a
//! topology and lock that reproduce it.

use std::path::{Path, PathBuf};
#[cfg(feature = "etcd")]
use std::time::Duration;

use super::{out, plural, warn};
use crate::error::{Error, exit};
use crate::registry::etcd;
#[cfg(feature = "etcd")]
use crate::registry::etcd::{Store, Target, Tls};
use crate::registry::import::{Imported, Options};
use crate::registry::names::Names;
use crate::registry::{Lease, Origin, kube};
use crate::topology::netconf::NetConf;

/// Write a topology and lock reproducing a running flannel cluster.
///
/// Every lease becomes a node pinned to its subnet, public IP and VTEP
/// MAC, so `plan` for any node programs what flanneld programs today. The
/// result is compiled and each node's plan checked against the leases
/// before anything is written.
///
/// Examples:
///   flannel-gen import etcd --endpoints http://10.0.0.2:2379 --prefix /atomic.io/network --cluster prod --out cluster.yaml
///   kubectl get nodes -o json > nodes.json
///   flannel-gen import kube nodes.json --net-conf net-conf.json --cluster prod --out cluster.yaml
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    source: Source,
}

#[derive(clap::Subcommand, Debug)]
enum Source {
    /// From flanneld's etcd v3 registry (`<prefix>/config`, `<prefix>/subnets/*`).
    Etcd(EtcdArgs),
    /// From `kubectl get nodes -o json` (flanneld's kube subnet manager).
    Kube(KubeArgs),
}

/// How to reach flanneld's etcd; the names follow flanneld's own flags.
#[derive(clap::Args, Debug, Clone)]
pub struct EtcdConn {
    /// etcd endpoints, comma-separated (flanneld's --etcd-endpoints).
    #[arg(long, value_name = "URL[,URL…]", value_delimiter = ',', required = true, env = "FLANNELD_ETCD_ENDPOINTS")]
    pub endpoints: Vec<String>,
    /// flanneld's --etcd-prefix.
    #[arg(long, value_name = "KEY", default_value = etcd::DEFAULT_PREFIX, env = "FLANNELD_ETCD_PREFIX")]
    pub prefix: String,
    /// CA certificate (PEM) for an https endpoint (flanneld's --etcd-cafile).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM), with --key (flanneld's --etcd-certfile).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client key (PEM), with --cert (flanneld's --etcd-keyfile).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Seconds to wait for etcd before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,
}

#[cfg(feature = "etcd")]
impl EtcdConn {
    pub fn target(&self) -> Result<Target, Error> {
        let prefix = etcd::normalise_prefix(&self.prefix).map_err(Error::Usage)?;
        let tls = Tls { cacert: self.cacert.clone(), cert: self.cert.clone(), key: self.key.clone() };
        let https = self.endpoints.iter().any(|e| e.starts_with("https://"));
        if (tls.cacert.is_some() || tls.cert.is_some()) && !https {
            return Err(Error::Usage("--cacert/--cert/--key need https:// endpoints".into()));
        }
        let timeout = Duration::from_secs(self.timeout);
        Ok(Target { endpoints: self.endpoints.clone(), prefix, tls, timeout })
    }
}

/// What leases do not record, and where to write.
#[derive(clap::Args, Debug)]
struct Common {
    /// Name of the cluster ([a-z0-9-]).
    #[arg(long, value_name = "NAME")]
    cluster: String,
    /// The topology to write; its lock goes beside it (TOPO.lock).
    #[arg(long, value_name = "TOPO")]
    out: PathBuf,
    /// Replace TOPO and its lock if they exist.
    #[arg(long)]
    force: bool,
    /// `IP[/PREFIX] NAME [INSTANCE]` lines naming nodes by public IP (default:
    /// ip-A-B-C-D); aws-vpc and gce need each node's instance (`i-…`, `ZONE/NAME`).
    #[arg(long, value_name = "FILE")]
    names: Option<PathBuf>,
    /// gce: the project of the routes (flanneld read it from the instance metadata).
    #[arg(long, value_name = "ID", requires = "gce_network")]
    gce_project: Option<String>,
    /// gce: the network of the routes.
    #[arg(long, value_name = "NAME", requires = "gce_project")]
    gce_network: Option<String>,
    /// On-link prefix of the nodes' IPv4 underlay addresses [default: 24].
    #[arg(long, value_name = "LEN", value_parser = clap::value_parser!(u8).range(1..=32))]
    underlay_prefix: Option<u8>,
    /// On-link prefix of the nodes' IPv6 underlay addresses.
    #[arg(long, value_name = "LEN", default_value_t = 64, value_parser = clap::value_parser!(u8).range(1..=128))]
    underlay_prefix6: u8,
    /// Underlay interface of every node (flanneld's --iface) [default: eth0].
    #[arg(long, value_name = "NAME")]
    interface: Option<String>,
    /// What flanneld ran with as --ip-masq [default: false, flanneld's default;
    /// kube-flannel.yml passes --ip-masq].
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    ip_masq: Option<bool>,
}

#[derive(clap::Args, Debug)]
struct EtcdArgs {
    #[command(flatten)]
    conn: EtcdConn,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args, Debug)]
struct KubeArgs {
    /// `kubectl get nodes -o json` output (`-` reads standard input).
    #[arg(value_name = "NODES.json")]
    nodes: PathBuf,
    /// flannel's net-conf.json (the kube-flannel-cfg ConfigMap's `net-conf.json`).
    #[arg(long, value_name = "FILE")]
    net_conf: PathBuf,
    /// flanneld's --kube-annotation-prefix.
    #[arg(long, value_name = "PREFIX", default_value = kube::DEFAULT_PREFIX)]
    annotation_prefix: String,
    #[command(flatten)]
    common: Common,
}

pub fn run(a: Args) -> Result<u8, Error> {
    match a.source {
        Source::Etcd(e) => run_etcd(e),
        Source::Kube(k) => run_kube(k),
    }
}

/// Checks made before any store is contacted.
fn prepare(c: &Common) -> Result<Names, Error> {
    for p in [c.out.clone(), crate::lock::lock_path(&c.out)] {
        if p.exists() && !c.force {
            return Err(Error::Usage(format!("{} exists; pass --force to replace it", p.display())));
        }
    }
    match &c.names {
        None => Ok(Names::default()),
        Some(p) => {
            let text = crate::input::read_text(p)?;
            Ok(crate::registry::names::parse(&crate::input::display_name(p), &text)?)
        }
    }
}

#[cfg(not(feature = "etcd"))]
fn run_etcd(_: EtcdArgs) -> Result<u8, Error> {
    Err(Error::Usage(super::WITHOUT_ETCD.into()))
}

#[cfg(feature = "etcd")]
fn run_etcd(a: EtcdArgs) -> Result<u8, Error> {
    let target = a.conn.target()?;
    let names = prepare(&a.common)?;
    let mut store = Store::connect(&target)?;
    let snap = store.snapshot(None)?;
    let (conf, leases, warnings) = crate::registry::read::from_etcd(&target, &snap)?;
    let source = format!("etcd {} prefix {} at revision {}", target.endpoint_list(), target.prefix, snap.revision);
    finish(&a.common, &names, &conf, &leases, warnings, source, &[])
}

fn run_kube(a: KubeArgs) -> Result<u8, Error> {
    let ann = kube::Annotations::new(&a.annotation_prefix).map_err(Error::Usage)?;
    let names = prepare(&a.common)?;
    let conf_text = crate::input::read_text(&a.net_conf)?;
    let (conf, warnings) = crate::topology::netconf::parse(&crate::input::display_name(&a.net_conf), &conf_text)?;
    let text = crate::input::read_text(&a.nodes)?;
    let file = crate::input::display_name(&a.nodes);
    let read = kube::read(&file, &text, &ann)?;
    let source = format!("Kubernetes Node objects in {} and {}", file.display(), a.net_conf.display());
    finish(&a.common, &names, &conf, &read.leases, warnings, source, &read.skipped)
}

fn finish(
    c: &Common,
    names: &Names,
    conf: &NetConf,
    leases: &[Lease],
    mut warnings: Vec<String>,
    source: String,
    skipped: &[String],
) -> Result<u8, Error> {
    let mut conf = conf.clone();
    if conf.backend.kind == crate::topology::BackendKind::Gce {
        let (Some(p), Some(n)) = (&c.gce_project, &c.gce_network) else {
            return Err(Error::Usage(
                "a gce cluster: give --gce-project and --gce-network (flanneld read them from the instance metadata)"
                    .into(),
            ));
        };
        conf.backend.gce = Some((p.clone(), n.clone()));
    }
    let conf = &conf;
    let opts = Options {
        cluster: &c.cluster,
        ip_masq: c.ip_masq.unwrap_or(false),
        prefix: [c.underlay_prefix.unwrap_or(24), c.underlay_prefix6],
        interface: c.interface.as_deref(),
        names,
        out: &c.out,
        source: source.clone(),
    };
    let imported = crate::registry::import::import(conf, leases, &opts)?;
    write_both(&c.out, &imported)?;
    warnings.extend(imported.warnings.iter().cloned());
    for w in skipped.iter().chain(&imported.skipped).chain(&warnings) {
        warn(w);
    }
    out(&summary(c, names, &imported, &source))?;
    Ok(exit::OK)
}

/// The lock first, then the topology: a topology on disk always has its lock.
fn write_both(topology: &Path, i: &Imported) -> Result<(), Error> {
    let lock = crate::lock::lock_path(topology);
    crate::fsutil::write_atomic(&lock, i.lock.as_bytes(), 0o644).map_err(Error::io(&lock))?;
    if let Err(e) = crate::fsutil::write_atomic(topology, i.topology.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&lock);
        return Err(Error::io(topology)(e));
    }
    Ok(())
}

fn summary(c: &Common, names: &Names, i: &Imported, source: &str) -> String {
    let mut s = format!("imported {} from {source}\n", plural(i.nodes.len(), "node"));
    for n in &i.nodes {
        let ips: Vec<String> = n.ips.iter().flatten().map(|ip| ip.to_string()).collect();
        let subnets: Vec<String> =
            [n.lease.subnet(crate::netaddr::Family::V4), n.lease.subnet(crate::netaddr::Family::V6)]
                .into_iter()
                .flatten()
                .map(|s| s.to_string())
                .collect();
        let held = match &n.lease.origin {
            Origin::Etcd { lease_id: 0, .. } => "reservation".to_string(),
            Origin::Etcd { ttl: Some(t), .. } => format!("flanneld lease, {t} s left"),
            Origin::Etcd { .. } => "flanneld lease".to_string(),
            Origin::Kube { .. } => "Node".to_string(),
        };
        s.push_str(&format!("  {:<20} {:<18} {:<18} {held}\n", n.name, subnets.join(","), ips.join(",")));
    }
    if names.0.is_empty() && i.nodes.iter().any(|n| n.lease.name.is_none()) {
        s.push_str("node names derived from public IPs (ip-A-B-C-D); pass --names FILE to choose them\n");
    }
    if c.underlay_prefix.is_none() {
        s.push_str("underlay prefix /24 assumed (leases record only the address); apply refuses a node whose address differs — pass --underlay-prefix\n");
    }
    if c.ip_masq.is_none() {
        s.push_str("ipMasq false assumed (flanneld's default; it is a flag, not in the registry); pass --ip-masq true if flanneld ran with --ip-masq\n");
    }
    if c.interface.is_none() {
        s.push_str("underlay interface eth0 assumed (flanneld's --iface is not recorded); pass --interface\n");
    }
    s.push_str(&format!(
        "wrote {} and {}; every node's plan equals the leases\n",
        c.out.display(),
        crate::lock::lock_path(&c.out).display()
    ));
    s
}
