//! `flannel-gen udp (TOPO [--node N] | --plan FILE) [--netns NS]`

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::apply::ApplyError;
use crate::error::{Error, exit};
use crate::health::Health;
use crate::udp::CountsFn;
use crate::udp::table::PeerTable;

/// Run the udp backend's forwarder for a node, in the foreground.
///
/// Moves packets between the TUN device `flannel0` (made by `apply`) and
/// the other nodes' forwarders — or flanneld's udp backend — over UDP
/// (port 8285 by default), in flanneld's wire format: each datagram is one
/// inner IPv4 packet. SIGHUP re-reads the plan (new peers) without dropping
/// the socket; SIGUSR1 prints the packet, byte and drop counters, which are
/// printed at exit (SIGTERM, SIGINT) too.
///
/// Examples:
///   flannel-gen udp --plan /etc/flannel-gen/plan.json
///   flannel-gen udp cluster.yaml --node node-1 --netns node1
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub source: super::source::PlanSource,
    /// Run inside the named network namespace (/run/netns/NAME).
    #[arg(long, value_name = "NAME", value_parser = super::target::parse_netns)]
    pub netns: Option<String>,
    /// Worker threads, each on its own TUN queue [default: the CPU count, at most 8].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: Option<u16>,
    /// No TUN offloads and no UDP GSO/GRO: one packet per system call, like flanneld.
    #[arg(long)]
    pub no_offload: bool,
    /// Fail (exit 2) when the lock file is missing or stale.
    #[arg(long, conflicts_with = "plan")]
    pub locked: bool,
    /// Take datagrams from any source, as flanneld does. By default only
    /// the plan's peers may send, each only packets from its own subnet;
    /// the rest is dropped and counted ("not from a peer").
    #[arg(long)]
    pub accept_any_source: bool,
    #[command(flatten)]
    pub health: super::healthz::HealthArgs,
}

struct Cli<'a> {
    args: &'a Args,
    /// The counters, once the workers run (read by /metrics).
    counts: Arc<OnceLock<CountsFn>>,
    health: Option<Arc<Health>>,
}

impl crate::udp::Events for Cli<'_> {
    fn say(&self, line: &str) {
        eprintln!("flannel-gen udp: {line}");
    }

    fn reload(&self) -> Result<PeerTable, String> {
        let p = self.args.source.load(self.args.locked).map_err(|e| e.to_string())?;
        PeerTable::from_plan(&p)
    }

    fn started(&self, counts: CountsFn) {
        let _ = self.counts.set(counts);
        if let Some(h) = &self.health {
            h.ready.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

pub fn run(a: Args) -> Result<u8, Error> {
    if let Some(ns) = &a.netns {
        crate::apply::netns::enter(ns).map_err(ApplyError::from)?;
    }
    let plan = a.source.load(a.locked)?;
    let table = PeerTable::from_plan(&plan).map_err(Error::Usage)?;
    let _lock = crate::apply::lock::acquire_named("udp", a.netns.as_deref(), Duration::ZERO)
        .map_err(crate::udp::UdpError::from)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let cfg = crate::udp::Config {
        workers: a.workers.map_or(cores, usize::from),
        offload: !a.no_offload,
        any_source: a.accept_any_source,
    };
    let counts: Arc<OnceLock<CountsFn>> = Arc::default();
    let health = match a.health.listener()? {
        Some(listener) => {
            let c = Arc::clone(&counts);
            let h = Health::new(Box::new(move || c.get().map(|f| f().prometheus()).unwrap_or_default()));
            crate::health::serve(listener, Arc::clone(&h), "flannel-gen udp").map_err(Error::io("healthz thread"))?;
            Some(h)
        }
        None => None,
    };
    let cli = Cli { args: &a, counts, health };
    let counts = crate::udp::run(&cfg, table, &cli)?;
    eprintln!("flannel-gen udp: stopped; {counts}");
    Ok(exit::OK)
}
