//! VXLAN device options from the topology, in the kernel: transmit checksum
//! offload (flannel's most reported issue, #1279/#1243), GBP, MAC learning,
//! and per-node MTUs in every artefact. The kernel side needs root.

mod common;

use std::process::Command;

use common::netns::{Netns, must, root_or_skip};
use common::{code, run, stderr, stdout};

/// The vxlan example with `extra` lines in its backend section, with its lock.
fn topology(dir: &std::path::Path, backend_extra: &str, replace: (&str, &str)) -> String {
    let y = std::fs::read_to_string(common::root().join("examples/vxlan-3node.yaml"))
        .expect("example")
        .replace("  port: 8472\n", &format!("  port: 8472\n{backend_extra}"))
        .replace(replace.0, replace.1);
    let t = dir.join("t.yaml");
    std::fs::write(&t, y).expect("write");
    std::fs::copy(common::root().join("examples/vxlan-3node.lock"), dir.join("t.lock")).expect("lock");
    t.to_string_lossy().into_owned()
}

fn offload(ns: &Netns) -> String {
    let out = must(Command::new("ip").args(["netns", "exec", &ns.name, "ethtool", "-k", "flannel.1"]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().find(|l| l.trim_start().starts_with("tx-checksum-ip-generic:")).unwrap_or_default().trim().to_string()
}

#[test]
fn tx_checksum_offload_off_is_applied_and_kept() {
    if !root_or_skip("tx_checksum_offload_off_is_applied_and_kept") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let t = topology(dir.path(), "  txChecksumOffload: false\n", ("", ""));
    let ns = Netns::node("csum", Some("192.168.31.61/24"));
    let apply = |extra: &[&str]| {
        let mut args = vec!["apply", t.as_str(), "--node", "node-1", "--netns", &ns.name];
        args.extend_from_slice(extra);
        run(&args)
    };
    assert_eq!(code(&apply(&[])), 0);
    assert_eq!(offload(&ns), "tx-checksum-ip-generic: off");
    assert_eq!(stdout(&apply(&[])), "0 changes\n");
    // Someone turns it back on: drift, and apply turns it off again.
    must(Command::new("ip").args([
        "netns",
        "exec",
        &ns.name,
        "ethtool",
        "-K",
        "flannel.1",
        "tx-checksum-ip-generic",
        "on",
    ]));
    let dry = apply(&["--dry-run"]);
    assert_eq!(code(&dry), 1);
    assert_eq!(
        stdout(&dry),
        "~ link flannel.1 (tx-checksum-ip-generic on→off)\n1 change pending (dry run; nothing was changed)\n"
    );
    assert_eq!(code(&apply(&[])), 0);
    assert_eq!(offload(&ns), "tx-checksum-ip-generic: off");
    // The rendered .link file says the same to udev.
    let out = dir.path().join("o");
    assert_eq!(code(&run(&["render", &t, "--out", out.to_str().expect("utf8"), "--node", "node-1"])), 0);
    let link = std::fs::read_to_string(out.join("node-1/etc/systemd/network/50-flannel.1.link")).expect("link");
    assert!(link.contains("\nTransmitChecksumOffload=no\n"), "{link}");
}

#[test]
fn gbp_and_learning_reach_the_device() {
    if !root_or_skip("gbp_and_learning_reach_the_device") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let t = topology(dir.path(), "  gbp: true\n  learning: true\n", ("", ""));
    let ns = Netns::node("gbp", Some("192.168.31.61/24"));
    let o = run(&["apply", &t, "--node", "node-1", "--netns", &ns.name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let link = ns.ip(&["-d", "link", "show", "flannel.1"]);
    assert!(link.contains(" gbp") && !link.contains("nolearning"), "{link}");
    assert_eq!(stdout(&run(&["apply", &t, "--node", "node-1", "--netns", &ns.name])), "0 changes\n");
    // Without GBP the device must be made again: the kernel cannot drop the flag.
    let plain = topology(dir.path(), "", ("", ""));
    let o = run(&["apply", &plain, "--node", "node-1", "--netns", &ns.name]);
    assert!(stdout(&o).contains("- link flannel.1 (gbp true→false)"), "{}{}", stdout(&o), stderr(&o));
    assert!(ns.ip(&["-d", "link", "show", "flannel.1"]).contains("nolearning"));
}

/// A node's own MTU flows into its device, subnet.env, docker and CNI files
/// (flanneld reads each node's interface MTU); other nodes keep theirs.
#[test]
fn a_nodes_own_mtu_reaches_every_artefact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = topology(dir.path(), "", ("    ip: 192.168.31.62/24\n", "    ip: 192.168.31.62/24\n    mtu: 9000\n"));
    let out = dir.path().join("o");
    assert_eq!(code(&run(&["render", &t, "--out", out.to_str().expect("utf8")])), 0);
    let read = |node: &str, f: &str| std::fs::read_to_string(out.join(node).join(f)).expect("file");
    assert!(read("node-2", "run/flannel/subnet.env").contains("FLANNEL_MTU=8950\n"));
    assert!(read("node-2", "run/docker_opts.env").contains("DOCKER_OPT_MTU=\"--mtu=8950\"\n"));
    assert!(read("node-2", "etc/docker/daemon.json").contains("\"mtu\": 8950,"));
    assert!(read("node-2", "etc/cni/net.d/10-flannel.conflist").contains("\"mtu\": 8950,"));
    assert!(read("node-2", "etc/systemd/network/50-flannel.1.netdev").contains("MTUBytes=8950\n"));
    assert!(read("node-1", "run/flannel/subnet.env").contains("FLANNEL_MTU=1450\n"));
    let plan: serde_json::Value = serde_json::from_str(&read("node-2", "etc/flannel-gen/plan.json")).expect("json");
    assert_eq!((plan["mtu"].as_u64(), plan["uplink"]["mtu"].as_u64()), (Some(8950), Some(9000)));
}
