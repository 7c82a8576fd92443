//! Pod-to-pod throughput across two namespace nodes, every data path in the
//! same run: kernel VXLAN, host-gw, the udp forwarder, the forwarder with
//! its offloads off and one worker (flanneld's design: one read and one send
//! per packet), and the wireguard backend on wireguard-go (this kernel has
//! no wireguard module). iperf3, one TCP stream, pod on node-1 -> pod on
//! node-2; CPU is the whole machine's busy time during the transfer.
//!
//! `cargo bench --bench dataplane` (root) prints a markdown table of medians;
//! `-- --smoke` runs each path once for 2 s (CI). See BENCHMARKS.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Stdio;
use std::time::Duration;

use common::cluster::Cluster;
use common::forwarder::Forwarder;

struct Path {
    name: &'static str,
    topology: &'static str,
    /// `flannel-gen udp` flags, when the path needs the forwarder.
    forwarder: Option<&'static [&'static str]>,
    /// The topology moved onto the wireguard backend, with keys made for
    /// each node (tests/common/views.rs).
    wireguard: bool,
}

const VXLAN: &str = "examples/vxlan-3node.yaml";
const UDP: &str = "examples/udp-3node.yaml";

const PATHS: [Path; 5] = [
    Path { name: "kernel VXLAN", topology: VXLAN, forwarder: None, wireguard: false },
    Path { name: "host-gw", topology: "examples/hostgw-3node.yaml", forwarder: None, wireguard: false },
    Path { name: "flannel-gen udp", topology: UDP, forwarder: Some(&[]), wireguard: false },
    Path {
        name: "flannel-gen udp --no-offload --workers 1",
        topology: UDP,
        forwarder: Some(&["--no-offload", "--workers", "1"]),
        wireguard: false,
    },
    Path { name: "wireguard (wireguard-go)", topology: VXLAN, forwarder: None, wireguard: true },
];

/// Busy and total jiffies of all CPUs (/proc/stat).
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let fields: Vec<u64> =
        stat.lines().next().expect("cpu line").split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    let total: u64 = fields.iter().take(8).sum();
    (total - idle, total)
}

struct Sample {
    gbps: f64,
    /// Busy CPU cores, averaged over the transfer.
    cores: f64,
}

fn iperf(c: &Cluster, secs: u32) -> Sample {
    let a = c.pods.iter().find(|p| p.node == "node-1").expect("pod on node-1");
    let b = c.pods.iter().find(|p| p.node == "node-2").expect("pod on node-2");
    let mut server = b.ns.exec("iperf3", &["-s", "-1"]).stdout(Stdio::null()).spawn().expect("iperf3 (Debian iperf3)");
    std::thread::sleep(Duration::from_millis(300));
    let (busy0, total0) = cpu_jiffies();
    let out = a.ns.exec("iperf3", &["-c", &b.ip, "-t", &secs.to_string(), "-J"]).output().expect("iperf3");
    let (busy1, total1) = cpu_jiffies();
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 JSON");
    let bps = v["end"]["sum_received"]["bits_per_second"].as_f64().expect("bits_per_second");
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let cores = (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64 * ncpu;
    Sample { gbps: bps / 1e9, cores }
}

fn measure(p: &Path, secs: u32) -> Sample {
    let dir = tempfile::tempdir().expect("tempdir");
    let (topology, views) = match p.wireguard {
        true => {
            let (t, v) = common::views::on_wireguard(dir.path(), p.topology);
            (t, Some(v))
        }
        false => (p.topology.to_string(), None),
    };
    let mut c = Cluster::new(&topology);
    c.views = views;
    c.apply_all(&topology);
    let fw: Vec<Forwarder> = match p.forwarder {
        Some(extra) => {
            c.nodes.iter().map(|n| Forwarder::start(p.topology, &n.name, &n.ns.name, dir.path(), extra)).collect()
        }
        None => Vec::new(),
    };
    c.attach_pods(1);
    assert!(c.ping_across().is_empty(), "{}: pods reach each other", p.name);
    let s = iperf(&c, secs);
    drop(fw);
    s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED dataplane benchmark: needs root for network namespaces");
        return;
    }
    let (rounds, secs) = if smoke { (1, 2) } else { (3, 8) };
    let wg = std::process::Command::new(common::views::implementation()).arg("--version").output();
    println!(
        "wireguard-go: {}",
        wg.map(|o| common::stdout(&o).lines().next().unwrap_or_default().to_string()).unwrap_or_else(|e| e.to_string())
    );
    let mut samples: Vec<Vec<Sample>> = PATHS.iter().map(|_| Vec::new()).collect();
    // Rounds interleave the paths, so a noisy neighbour hits them alike.
    for _ in 0..rounds {
        for (i, p) in PATHS.iter().enumerate() {
            samples[i].push(measure(p, secs));
        }
    }
    let vxlan = median(samples[0].iter().map(|s| s.gbps).collect());
    println!(
        "| path ({rounds} runs of {secs} s, median) | Gbit/s | × kernel VXLAN | busy cores | core-seconds per Gbit |"
    );
    println!("|---|---|---|---|---|");
    for (p, s) in PATHS.iter().zip(&samples) {
        let gbps = median(s.iter().map(|x| x.gbps).collect());
        let cores = median(s.iter().map(|x| x.cores).collect());
        println!("| {} | {gbps:.2} | {:.2} | {cores:.2} | {:.3} |", p.name, gbps / vxlan, cores / gbps);
    }
}
