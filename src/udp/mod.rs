//! `flannel-gen udp`: the data path of flanneld's udp backend
//! (pkg/backend/udp), wire-compatible with it: packets the kernel routes
//! into the TUN device `flannel0` go, each as the sole payload of a UDP
//! datagram, to the node whose subnet holds the destination, on the
//! cluster's port (8285); datagrams arriving there are written into that
//! node's `flannel0`. The peer table is the plan's (SIGHUP reloads it).
//!
//! Where flanneld runs one loop of one `read` and one `sendto` per packet,
//! this runs a worker per core, each on its own queue of the multi-queue
//! TUN device, with TUN offloads (TSO super-packets segmented here) and
//! batched socket calls (`recvmmsg` with UDP GRO, `sendmmsg`, UDP GSO).
//!
//! * [`packet`]: parsing, TTL, ICMP errors, segmentation — pure, fuzzed.
//! * [`table`]: subnet -> node, from a plan.
//! * [`io`]: the batched system calls.
//! * [`stats`]: counters (SIGUSR1 prints them).

pub mod gro;
pub mod io;
pub mod packet;
pub mod stats;
pub mod table;
mod worker;

use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::words::plural;
pub use stats::Counts;
use table::PeerTable;
use worker::{Exit, Shared, Worker};

/// How the forwarder runs.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub workers: usize,
    /// TUN offloads (TSO, checksums) and UDP GSO/GRO.
    pub offload: bool,
    /// Take datagrams from any source (flanneld's behaviour), not only from
    /// the plan's peers with inner sources in the sender's own subnet.
    pub any_source: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UdpError {
    #[error("{device} does not exist in this network namespace; run `flannel-gen apply` first (it makes the device)")]
    NoDevice { device: String },
    #[error("cannot listen on UDP {addr}: {source}{}", bind_hint(source))]
    Bind { addr: std::net::SocketAddrV4, source: std::io::Error },
    #[error("TUN device {device}: {source}")]
    Tun { device: String, source: std::io::Error },
    #[error(transparent)]
    Lock(#[from] crate::apply::lock::LockError),
    #[error("signal handling: {0}")]
    Signals(std::io::Error),
}

fn bind_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => " (the port is taken: is flanneld, or another forwarder, still running?)",
        Some(libc::EADDRNOTAVAIL) => " (this host does not have the node's address: wrong node or namespace?)",
        _ => "",
    }
}

/// What the forwarder reports while it runs.
/// A way to read the forwarder's counters from another thread.
pub type CountsFn = Arc<dyn Fn() -> Counts + Send + Sync>;

pub trait Events {
    fn say(&self, line: &str);
    /// The plan again, for SIGHUP.
    fn reload(&self) -> Result<PeerTable, String>;
    /// The workers run; `counts` reads their counters from now on.
    fn started(&self, counts: CountsFn) {
        let _ = counts;
    }
}

const SIGNALS: [libc::c_int; 4] = [libc::SIGHUP, libc::SIGUSR1, libc::SIGTERM, libc::SIGINT];
const SIGNAL_WAIT: Duration = Duration::from_millis(250);

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks the forwarder's signals in this thread (workers inherit it), so
/// they are only taken by [`next_signal`].
fn block_signals(set: &libc::sigset_t) -> Result<(), UdpError> {
    // SAFETY: `set` is initialised; the old mask is not wanted.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set, std::ptr::null_mut()) };
    if r != 0 { Err(UdpError::Signals(std::io::Error::from_raw_os_error(r))) } else { Ok(()) }
}

fn next_signal(set: &libc::sigset_t) -> Option<libc::c_int> {
    let ts = libc::timespec { tv_sec: 0, tv_nsec: SIGNAL_WAIT.as_nanos() as libc::c_long };
    // SAFETY: `set` and `ts` are initialised; no siginfo is wanted.
    let s = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (s > 0).then_some(s)
}

fn socket(t: &PeerTable, cfg: &Config) -> Result<UdpSocket, UdpError> {
    let sock = UdpSocket::bind(t.bind).map_err(|source| UdpError::Bind { addr: t.bind, source })?;
    sock.set_nonblocking(true).map_err(|source| UdpError::Bind { addr: t.bind, source })?;
    // Bursts of a whole TSO super-packet arrive at once: room for them.
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
        let _ = io::set_int(sock.as_fd(), libc::SOL_SOCKET, opt, 8 << 20);
    }
    if cfg.offload {
        let _ = io::set_int(sock.as_fd(), 17, io::UDP_GRO, 1);
    }
    Ok(sock)
}

fn spawn(
    t: &PeerTable,
    cfg: &Config,
    sock: &Arc<UdpSocket>,
    shared: &Arc<Shared>,
) -> Result<Vec<JoinHandle<Exit>>, UdpError> {
    let mut handles = Vec::with_capacity(cfg.workers);
    for i in 0..cfg.workers {
        let tun = crate::tun::open_queue(&t.device, cfg.offload)
            .map_err(|source| UdpError::Tun { device: t.device.clone(), source })?;
        if cfg.offload {
            crate::tun::set_offload(&tun, crate::tun::TUN_F_CSUM | crate::tun::TUN_F_TSO4)
                .map_err(|source| UdpError::Tun { device: t.device.clone(), source })?;
        }
        let (sock, shared, vnet) = (Arc::clone(sock), Arc::clone(shared), cfg.offload);
        // The worker (its buffers and the scratch pointers into them) lives on its thread.
        let h = std::thread::Builder::new()
            .name(format!("udp-{i}"))
            .spawn(move || Worker::new(tun, sock, vnet, shared).run())
            .map_err(|source| UdpError::Tun { device: t.device.clone(), source })?;
        handles.push(h);
    }
    Ok(handles)
}

/// Runs until SIGTERM or SIGINT; returns the final counts.
pub fn run(cfg: &Config, table: PeerTable, events: &dyn Events) -> Result<Counts, UdpError> {
    let set = signal_set();
    block_signals(&set)?;
    if !crate::tun::exists(&table.device) {
        return Err(UdpError::NoDevice { device: table.device.clone() });
    }
    let sock = Arc::new(socket(&table, cfg)?);
    let first = table.clone();
    let shared = Arc::new(Shared::new(table, !cfg.any_source));
    let mut workers = spawn(&first, cfg, &sock, &shared)?;
    let reader = Arc::clone(&shared);
    events.started(Arc::new(move || reader.stats.snapshot()));
    events.say(&format!(
        "forwarding {} <-> UDP {} for {}: {}, offloads {}",
        first.device,
        first.bind,
        plural(first.len(), "peer"),
        plural(cfg.workers, "worker"),
        if cfg.offload { "on" } else { "off" }
    ));
    loop {
        match next_signal(&set) {
            Some(libc::SIGHUP) => reload(&shared, events),
            Some(libc::SIGUSR1) => events.say(&shared.stats.snapshot().to_string()),
            Some(_) => break,
            None => {}
        }
        if workers.iter().any(JoinHandle::is_finished) {
            stop(&shared, &mut workers);
            events.say(&format!("{} is gone; waiting for it to come back", first.device));
            if !wait_for_device(&first.device, &set) {
                break;
            }
            shared.stop.store(false, Ordering::Relaxed);
            workers = spawn(&shared.table(), cfg, &sock, &shared)?;
            events.say(&format!("{} is back; forwarding again", first.device));
        }
    }
    stop(&shared, &mut workers);
    Ok(shared.stats.snapshot())
}

fn reload(shared: &Shared, events: &dyn Events) {
    let old = shared.table();
    match events.reload() {
        Ok(t) => {
            if t.bind != old.bind || t.device != old.device {
                events.say(&format!(
                    "the plan moves the forwarder to {} on UDP {}; restart it for that (peers reloaded)",
                    t.device, t.bind
                ));
            }
            events.say(&format!("reloaded the plan: {} (was {})", plural(t.len(), "peer"), old.len()));
            shared.replace(t);
        }
        Err(e) => events.say(&format!("reload failed, keeping {}: {e}", plural(old.len(), "peer"))),
    }
}

fn stop(shared: &Shared, workers: &mut Vec<JoinHandle<Exit>>) {
    shared.stop.store(true, Ordering::Relaxed);
    for h in workers.drain(..) {
        let _ = h.join();
    }
}

/// Waits (taking signals) until the device exists again; false on SIGTERM/SIGINT.
fn wait_for_device(device: &str, set: &libc::sigset_t) -> bool {
    loop {
        if crate::tun::exists(device) {
            return true;
        }
        if matches!(next_signal(set), Some(libc::SIGTERM | libc::SIGINT)) {
            return false;
        }
    }
}
