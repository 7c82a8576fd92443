//! `flannel-gen udp` running for a node of a test cluster: its stderr goes
//! to a file the test reads; SIGUSR1 prints its counters; stopped (SIGTERM,
//! then SIGKILL) on drop.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::bin;

pub struct Forwarder {
    child: Child,
    pub log: PathBuf,
    pub node: String,
}

/// The counters of one stats line (`tun->udp N packets ...`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub tx_packets: u64,
    pub rx_packets: u64,
    pub not_ipv4: u64,
    pub no_route: u64,
    /// Dropped by the source filter.
    pub foreign: u64,
}

/// The number right before the first `what` in `line`.
fn number_before(line: &str, what: &str) -> u64 {
    let at = line.find(what).unwrap_or_else(|| panic!("no `{what}` in {line}"));
    line[..at]
        .split_whitespace()
        .next_back()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before `{what}` in {line}"))
}

impl Forwarder {
    /// Starts it for `node` of `topology` inside `netns` and waits until it forwards.
    pub fn start(topology: &str, node: &str, netns: &str, dir: &std::path::Path, extra: &[&str]) -> Forwarder {
        let log = dir.join(format!("udp-{node}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = bin()
            .args(["udp", topology, "--node", node, "--netns", netns])
            .args(extra)
            .current_dir(super::root())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("flannel-gen udp");
        let f = Forwarder { child, log, node: node.to_string() };
        f.wait_for("forwarding ", 1);
        f
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `n` lines containing `what`.
    pub fn wait_for(&self, what: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log_text().lines().filter(|l| l.contains(what)).count() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{}: no `{what}` (x{n}) in its log:\n{}", self.node, self.log_text());
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// The counters it prints on SIGUSR1.
    pub fn counts(&self) -> Counts {
        let before = self.log_text().lines().filter(|l| l.contains("tun->udp")).count();
        self.signal(libc::SIGUSR1);
        self.wait_for("tun->udp", before + 1);
        let text = self.log_text();
        let line = text.lines().rfind(|l| l.contains("tun->udp")).expect("stats line");
        Counts {
            tx_packets: number_before(line.split("tun->udp ").nth(1).expect("tx"), "packets"),
            rx_packets: number_before(line.split("udp->tun ").nth(1).expect("rx"), "packets"),
            not_ipv4: number_before(line, "not IPv4"),
            no_route: number_before(line, "no route"),
            foreign: number_before(line, "not from a peer"),
        }
    }

    /// SIGHUP; waits for the reload to be reported.
    pub fn reload(&self) {
        let before = self.log_text().lines().filter(|l| l.contains("reload")).count();
        self.signal(libc::SIGHUP);
        self.wait_for("reload", before + 1);
    }

    /// SIGTERM; the exit status and the log.
    pub fn stop(mut self) -> (Option<i32>, String) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                break s.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait().ok().and_then(|s| s.code());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.log_text())
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGTERM);
            std::thread::sleep(Duration::from_millis(100));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
