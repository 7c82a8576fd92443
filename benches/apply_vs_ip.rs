//! flannel-gen against iproute2 on the same work, and render at cluster scale.
//!
//! `cargo bench --bench apply_vs_ip` (root: network namespaces) prints a
//! markdown table of medians; `-- --smoke` runs small sizes once (CI, so the
//! harness does not rot). See BENCHMARKS.md for the method and results.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_flannel-gen");

struct Netns(String);

impl Netns {
    fn new(tag: &str, ip: &str) -> Netns {
        let name = format!("fgbench{}-{tag}", std::process::id());
        sh("ip", &["netns", "add", &name]);
        let ns = Netns(name);
        for args in [
            vec!["link", "add", "eth0", "type", "veth", "peer", "name", "peer0"],
            vec!["link", "set", "peer0", "up"],
            vec!["addr", "add", ip, "dev", "eth0"],
            vec!["link", "set", "eth0", "up"],
        ] {
            let mut full = vec!["-n", ns.0.as_str()];
            full.extend(args);
            sh("ip", &full);
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        let _ = std::fs::remove_file(format!("/run/flannel-gen/apply-netns-{}.lock", self.0));
    }
}

/// The kernel tears a deleted namespace down in the background, holding the
/// rtnl lock while it removes its thousands of routes; whatever runs next
/// would pay for that (a 4999-peer apply measured 156 ms right after one
/// such delete, 69 ms after a pause). Every timed run starts after this.
fn settle() {
    std::thread::sleep(Duration::from_secs(1));
}

/// render makes its files durable with one syncfs, which also waits for
/// whatever else is dirty on the filesystem — here, the previous rows' and
/// runs' writes (a 4a run measured 42 ms right after a full harness run,
/// 31 ms before). Every timed render starts after a sync.
fn quiet_disk() {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
}

fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command to completion; returns wall time, peak RSS (KiB) and stdout.
// The child is reaped with wait4 (below) to read its rusage, not with wait().
#[allow(clippy::zombie_processes)]
fn measure(program: &str, args: &[&str], allow_fail: bool) -> (Duration, i64, String) {
    let start = Instant::now();
    let child = Command::new(program).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut stdout = String::new();
    if let Some(mut o) = child.stdout {
        let _ = std::io::Read::read_to_string(&mut o, &mut stdout);
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet reaped; both out-pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    assert!(r == pid, "wait4 failed");
    assert!(allow_fail || libc::WEXITSTATUS(status) == 0, "{program} {args:?} exited {}", libc::WEXITSTATUS(status));
    (elapsed, usage.ru_maxrss, stdout)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

struct Setup {
    _dir: tempfile::TempDir,
    topo: PathBuf,
    overlay: PathBuf,
    /// The same cluster with flanneld's plain routes: the iproute2 baseline.
    plain_overlay: PathBuf,
}

fn setup(nodes: usize) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = dir.path().join("t.yaml");
    let text = sh(BIN, &["generate", "--nodes", &nodes.to_string()]);
    std::fs::write(&topo, &text).expect("write");
    let t = topo.to_str().expect("utf8");
    sh(BIN, &["lock", t]);
    let out = dir.path().join("out");
    sh(BIN, &["render", t, "--out", out.to_str().expect("utf8"), "--node", "node-1"]);
    // Same leases (the lock is copied), routeStyle plain.
    let plain = dir.path().join("plain.yaml");
    let plain_text = text.replacen("  type: vxlan\n", "  type: vxlan\n  routeStyle: plain\n", 1);
    assert_ne!(plain_text, text, "the generated topology has a vxlan backend section");
    std::fs::write(&plain, plain_text).expect("write");
    std::fs::copy(dir.path().join("t.lock"), dir.path().join("plain.lock")).expect("copy lock");
    let pout = dir.path().join("plain-out");
    sh(BIN, &["render", plain.to_str().expect("utf8"), "--out", pout.to_str().expect("utf8"), "--node", "node-1"]);
    Setup { overlay: out.join("node-1"), plain_overlay: pout.join("node-1"), topo, _dir: dir }
}

/// The rendered scripts through iproute2, as a user would run them (the
/// nexthop lines are in route.batch).
fn ip_batch(ns: &str, overlay: &Path, converged: bool) -> Duration {
    let b = |f: &str| overlay.join("etc/flannel-gen").join(f).to_string_lossy().into_owned();
    let mut total = Duration::ZERO;
    total += measure("ip", &["-n", ns, "-force", "-batch", &b("link.batch")], converged).0;
    total += measure("ip", &["-n", ns, "-batch", &b("neigh.batch")], false).0;
    total += measure("bridge", &["-n", ns, "-batch", &b("fdb.batch")], false).0;
    total += measure("ip", &["-n", ns, "-batch", &b("route.batch")], false).0;
    total
}

fn changes(stdout: &str) -> usize {
    stdout.lines().last().and_then(|l| l.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(usize::MAX)
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED apply_vs_ip: needs root for network namespaces");
        return;
    }
    let (peers_nodes, all_nodes, runs) = if smoke { (100, 50, 1) } else { (5000, 1000, 5) };
    let s = setup(peers_nodes);
    let plan = s.overlay.join("etc/flannel-gen/plan.json");
    let plan = plan.to_str().expect("utf8");
    let ip = "172.16.0.10/16";

    let topo = s.topo.to_str().expect("utf8");
    let (mut apply_t, mut batch_t, mut conv_t, mut batch_conv_t, mut one_t) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut conv_topo_t, mut nh_batch_t) = (vec![], vec![]);
    let mut first_changes = 0;
    for _ in 0..runs {
        let (a, b, n) = (Netns::new("apply", ip), Netns::new("batch", ip), Netns::new("nhbatch", ip));
        settle();
        let (t, _, out) = measure(BIN, &["apply", "--plan", plan, "--netns", &a.0], false);
        first_changes = changes(&out);
        apply_t.push(t);
        let (t, _, out) = measure(BIN, &["apply", "--plan", plan, "--netns", &a.0], false);
        assert_eq!(changes(&out), 0, "converged re-apply must write nothing: {out}");
        conv_t.push(t);
        let (t, _, out) = measure(BIN, &["apply", topo, "--node", "node-1", "--netns", &a.0], false);
        assert_eq!(changes(&out), 0, "the topology's plan is the rendered plan: {out}");
        conv_topo_t.push(t);
        // One changed peer: its route is gone.
        let dst = sh("ip", &["-n", &a.0, "-4", "route", "show", "proto", "static"]);
        let first_route = dst.lines().next().and_then(|l| l.split_whitespace().next()).expect("a route").to_string();
        sh("ip", &["-n", &a.0, "route", "del", &first_route]);
        let (t, _, out) = measure(BIN, &["apply", "--plan", plan, "--netns", &a.0], false);
        assert_eq!(changes(&out), 1, "{out}");
        one_t.push(t);

        batch_t.push(ip_batch(&b.0, &s.plain_overlay, false));
        batch_conv_t.push(ip_batch(&b.0, &s.plain_overlay, true));
        nh_batch_t.push(ip_batch(&n.0, &s.overlay, false));
    }

    let (apply_m, batch_m, conv_m, bconv_m, one_m) =
        (median(apply_t), median(batch_t), median(conv_t), median(batch_conv_t), median(one_t));
    let nh_batch_m = median(nh_batch_t);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();

    // Render one node of the big topology, fresh output each time.
    let t = topo;
    let (mut r1, mut rss) = (vec![], 0);
    for _ in 0..runs {
        let out = tempfile::tempdir().expect("tempdir");
        quiet_disk();
        let (d, kb, _) =
            measure(BIN, &["render", t, "--out", out.path().to_str().expect("utf8"), "--node", "node-1"], false);
        r1.push(d);
        rss = rss.max(kb);
    }

    let r1_m = median(r1);
    let plan_m = median(
        (0..runs).map(|_| measure(BIN, &["plan", t, "--node", "node-1", "--format", "json"], false).0).collect(),
    );
    let conv_topo_m = median(conv_topo_t);

    // Render all nodes of a smaller cluster, against a plain write of the same bytes.
    let all = setup(all_nodes);
    let (mut ra, mut plain, mut bytes) = (vec![], vec![], 0u64);
    for _ in 0..runs {
        let out = tempfile::tempdir().expect("tempdir");
        let o = out.path().join("o");
        let (d, _, text) =
            measure(BIN, &["render", all.topo.to_str().expect("utf8"), "--out", o.to_str().expect("utf8")], false);
        ra.push(d);
        bytes =
            text.split(", ").nth(1).and_then(|x| x.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(0);
        plain.push(plain_write(&o, &out.path().join("copy")));
    }
    let (ra_m, plain_m) = (median(ra), median(plain));
    let mbps = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;

    println!("| benchmark ({runs} runs, median) | flannel-gen | baseline | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| 1. apply {} peers into an empty netns ({first_changes} changes) vs ip -batch of flanneld's plain state | {} | {} | {:.2} | ≤ 0.5 |",
        peers_nodes - 1,
        ms(apply_m),
        ms(batch_m),
        ratio(apply_m, batch_m)
    );
    println!(
        "| 1b. the same nexthop-style state through ip -batch vs flanneld's plain state through ip -batch | {} | {} | {:.2} | (kernel cost of the route style) |",
        ms(nh_batch_m),
        ms(batch_m),
        ratio(nh_batch_m, batch_m)
    );
    println!(
        "| 2. converged re-apply (0 writes) vs ip -batch -force | {} | {} | {:.3} | ≤ 0.1 |",
        ms(conv_m),
        ms(bconv_m),
        ratio(conv_m, bconv_m)
    );
    println!(
        "| 2b. converged re-apply from the topology (0 writes) vs ip -batch -force | {} | {} | {:.3} | ≤ 0.05 |",
        ms(conv_topo_m),
        ms(bconv_m),
        ratio(conv_topo_m, bconv_m)
    );
    println!(
        "| 3. one changed peer vs converged re-apply | {} | {} | {:.2} | ≤ 2 |",
        ms(one_m),
        ms(conv_m),
        ratio(one_m, conv_m)
    );
    println!(
        "| 4a. render one node of {peers_nodes} (peak RSS {} MB) | {} | 40 ms | {:.2} | ≤ 1 (and ≤ 30 MB) |",
        rss / 1024,
        ms(r1_m),
        r1_m.as_secs_f64() / 0.04
    );
    println!(
        "| 5. plan --format json, one node of {peers_nodes} | {} | 30 ms | {:.2} | ≤ 1 |",
        ms(plan_m),
        plan_m.as_secs_f64() / 0.03
    );
    println!(
        "| 4b. render all {all_nodes} nodes, {:.0} MB, vs plain write of the same bytes | {} ({:.0} MB/s) | {} ({:.0} MB/s) | {:.2} | ≥ 0.5 |",
        bytes as f64 / 1e6,
        ms(ra_m),
        mbps(ra_m),
        ms(plain_m),
        mbps(plain_m),
        plain_m.as_secs_f64() / ra_m.as_secs_f64()
    );
}

/// Writes every file of `from` again under `to` and syncs: the floor for render.
fn plain_write(from: &Path, to: &Path) -> Duration {
    let mut files = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("dir").map(|e| e.expect("entry")) {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    walk(from, &mut files);
    let contents: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|p| (to.join(p.strip_prefix(from).expect("under")), std::fs::read(&p).expect("read")))
        .collect();
    let start = Instant::now();
    for (p, bytes) in &contents {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, bytes).expect("write");
    }
    let f = std::fs::File::open(to).expect("open");
    // SAFETY: the descriptor is open for the duration of the call.
    unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    start.elapsed()
}
