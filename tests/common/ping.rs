//! Pods pinging pods on every other node at 100 packets per second, for
//! zero-loss checks while a cluster changes underneath.

use std::process::{Child, Stdio};

use super::cluster::Cluster;

/// Pingers from every pod to every pod on another node.
pub fn start_pingers(c: &Cluster, count: usize) -> Vec<(String, Child)> {
    let mut pingers = Vec::new();
    for a in &c.pods {
        for b in c.pods.iter().filter(|b| b.node != a.node) {
            let child =
                a.ns.exec("ping", &["-n", "-q", "-i", "0.01", "-c", &count.to_string(), "-W", "1", &b.ip])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("ping");
            pingers.push((format!("{} ({}) -> {} ({})", a.ip, a.node, b.ip, b.node), child));
        }
    }
    pingers
}

/// Waits for the pingers; (sent, lost, report).
pub fn ping_totals(pingers: Vec<(String, Child)>) -> (usize, usize, Vec<String>) {
    let (mut sent, mut lost, mut report) = (0, 0, Vec::new());
    for (pair, child) in pingers {
        let out = child.wait_with_output().expect("ping");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("{pair}: no ping summary: {text}"))
            .to_string();
        let nums: Vec<usize> = line.split(|ch: char| !ch.is_ascii_digit()).filter_map(|t| t.parse().ok()).collect();
        sent += nums[0];
        lost += nums[0] - nums[1];
        report.push(format!("{pair}: {line}"));
    }
    (sent, lost, report)
}
