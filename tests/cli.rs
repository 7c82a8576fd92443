//! The command-line contract: exit codes, located errors, plan output, lock workflow.

mod common;

use std::fs;

use common::{code, root, run, stderr, stdout};

#[test]
fn examples_validate() {
    let out = run(&[
        "validate",
        "examples/vxlan-3node.yaml",
        "examples/hostgw-3node.yaml",
        "examples/vxlan-directrouting.yaml",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 3);
    assert!(stderr(&out).is_empty(), "examples have fresh locks: {}", stderr(&out));
}

/// plan.json (formatVersion 2) holds facts per peer, by path, with the
/// locked subnets and MACs; kernel objects are derived, not stored.
#[test]
fn plan_json_is_the_node_facts() {
    let out = run(&["plan", "examples/vxlan-3node.yaml", "--node", "node-1", "--format", "json", "--locked"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // The MACs are the ones in examples/vxlan-3node.lock.
    let want = serde_json::json!({
        "formatVersion": 2,
        "cluster": "prod-east",
        "node": "node-1",
        "backend": {"type": "vxlan", "vni": 1, "port": 8472, "directRouting": false, "gbp": false, "learning": false, "txChecksumOffload": true},
        "routeStyle": "nexthop",
        "ipMasq": true,
        "mtu": 1450,
        "uplink": {"name": "eth0", "mtu": 1500, "ipv4": "192.168.31.61/24"},
        "ipv4": {"network": "10.244.0.0/16", "subnet": "10.244.1.0/24", "vtepMAC": "36:28:f3:f4:bd:cb"},
        "peers": [
            {"path": "vxlan", "node": "node-2", "subnet": "10.244.2.0/24", "publicIP": "192.168.31.62", "vtepMAC": "2e:2b:01:cb:b7:bd"},
            {"path": "vxlan", "node": "node-3", "subnet": "10.244.3.0/24", "publicIP": "192.168.31.63", "vtepMAC": "1a:cc:10:df:41:7d"}
        ],
        "trafficRules": {"backend": "iptables", "forward": true, "randomFully": true},
        "sysctls": [
            {"key": "net.ipv4.ip_forward", "value": "1"},
            {"key": "net/ipv4/conf/eth0/rp_filter", "value": "2"},
            {"key": "net/ipv4/conf/flannel.1/rp_filter", "value": "2"}
        ]
    });
    assert_eq!(v, want);
    let lock = fs::read_to_string(root().join("examples/vxlan-3node.lock")).expect("lock");
    for mac in ["36:28:f3:f4:bd:cb", "2e:2b:01:cb:b7:bd", "1a:cc:10:df:41:7d"] {
        assert!(lock.contains(&format!("vtepMAC: \"{mac}\"")), "{mac} is the locked MAC");
    }
}

#[test]
fn plan_text_reads_like_ip() {
    let out = run(&["plan", "examples/hostgw-3node.yaml", "--node", "node-2"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    // routeStyle nexthop: id 0x46000000 | the subnet's index (1) in 10.244.0.0/16.
    assert!(text.contains("route 10.244.1.0/24 via 192.168.31.61 dev eth0 nhid 1174405121\n"), "{text}");
    assert!(!text.contains("flannel.1"), "host-gw has no VXLAN device: {text}");
}

#[test]
fn directrouting_splits_by_segment() {
    let out = run(&["plan", "examples/vxlan-directrouting.yaml", "--node", "rack1-a", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let paths: Vec<(&str, &str)> = v["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| (p["node"].as_str().unwrap_or(""), p["path"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(paths, [("rack1-b", "host-gw"), ("rack2-a", "vxlan"), ("rack2-b", "vxlan")]);
}

#[test]
fn unknown_node_is_bad_input_with_a_suggestion() {
    let out = run(&["plan", "examples/vxlan-3node.yaml", "--node", "node-4x"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no node `node-4x`"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(code(&run(&["plan", "examples/vxlan-3node.yaml"])), 2);
    assert_eq!(code(&run(&["frobnicate"])), 2);
    assert_eq!(code(&run(&["--help"])), 0);
}

/// A scratch copy of an example (topology and lock) to edit.
fn scratch(example: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = dir.path().join("t.yaml");
    fs::copy(root().join(format!("examples/{example}.yaml")), &topo).expect("copy");
    fs::copy(root().join(format!("examples/{example}.lock")), dir.path().join("t.lock")).expect("copy lock");
    (dir, topo)
}

#[test]
fn locked_fails_on_missing_and_stale_lock() {
    let (dir, topo) = scratch("vxlan-3node");
    let t = topo.to_str().expect("utf8");
    assert_eq!(code(&run(&["validate", "--locked", t])), 0);

    let mut y = fs::read_to_string(&topo).expect("read");
    y.push_str("  - name: node-0\n    ip: 192.168.31.60/24\n");
    fs::write(&topo, &y).expect("write");
    let out = run(&["plan", t, "--node", "node-0", "--locked"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("stale") && stderr(&out).contains("flannel-gen lock"), "{}", stderr(&out));

    // Without --locked it still plans, and warns.
    let out = run(&["plan", t, "--node", "node-0"]);
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("warning:"), "{}", stderr(&out));

    fs::remove_file(dir.path().join("t.lock")).expect("rm");
    let out = run(&["validate", "--locked", t]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("missing"), "{}", stderr(&out));
}

#[test]
fn lock_check_and_stability_when_a_node_is_added_first() {
    let (dir, topo) = scratch("vxlan-3node");
    let t = topo.to_str().expect("utf8");
    assert_eq!(code(&run(&["lock", "--check", t])), 0);
    let before = fs::read_to_string(dir.path().join("t.lock")).expect("lock");

    // A new node at the head of the list must not move the others.
    let y = fs::read_to_string(&topo)
        .expect("read")
        .replace("nodes:\n", "nodes:\n  - name: node-0\n    ip: 192.168.31.60/24\n");
    fs::write(&topo, y).expect("write");
    let out = run(&["lock", "--check", t]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("+  node-0:"), "{}", stdout(&out));
    assert_eq!(fs::read_to_string(dir.path().join("t.lock")).expect("lock"), before, "--check writes nothing");

    assert_eq!(code(&run(&["lock", t])), 0);
    let after = fs::read_to_string(dir.path().join("t.lock")).expect("lock");
    for line in before.lines().filter(|l| l.contains("subnet:") || l.contains("vtepMAC:")) {
        assert!(after.contains(line), "lease line {line:?} kept");
    }
    assert!(after.contains("subnet: 10.244.4.0/24"), "{after}");
    assert_eq!(code(&run(&["lock", "--check", t])), 0);
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left");
}

#[test]
fn generated_topology_of_5000_nodes_is_valid_and_plans() {
    let out = run(&["generate", "--nodes", "5000"]);
    assert_eq!(code(&out), 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = dir.path().join("big.yaml");
    fs::write(&topo, &out.stdout).expect("write");
    let t = topo.to_str().expect("utf8");
    let out = run(&["plan", t, "--node", "node-5000", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["peers"].as_array().map(Vec::len), Some(4999));
}

/// A hand-edited lock is checked as input: every problem is located in the
/// lock file, exit 2, and nothing is re-allocated behind the user's back.
#[test]
fn a_corrupted_lock_is_a_located_error() {
    let (dir, topo) = scratch("vxlan-3node");
    let t = topo.to_str().expect("utf8");
    let lock = dir.path().join("t.lock");
    let good = fs::read_to_string(&lock).expect("lock");
    for (edit, want) in [
        (
            good.replace("subnet: 10.244.3.0/24", "subnet: 10.244.3.0/25"),
            "t.lock:15:13: error: nodes.node-3.subnet: 10.244.3.0/25 is a /25 but the lock's subnetLen is 24",
        ),
        (
            good.replace("1a:cc:10:df:41:7d", "01:cc:10:df:41:7d"),
            "t.lock:16:14: error: nodes.node-3.vtepMAC: 01:cc:10:df:41:7d is not a unicast address",
        ),
        (
            good.replace("subnet: 10.244.3.0/24", "subnet: 10.244.2.0/24"),
            "t.lock:15:13: error: nodes.node-3.subnet: also leased to node `node-2`",
        ),
    ] {
        fs::write(&lock, &edit).expect("edit");
        for args in [vec!["validate", "--locked", t], vec!["plan", t, "--node", "node-1"], vec!["lock", t]] {
            let o = run(&args);
            assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
            assert!(stderr(&o).contains(want), "{args:?} wants {want}:\n{}", stderr(&o));
        }
        assert_eq!(fs::read_to_string(&lock).expect("lock"), edit, "`lock` does not overwrite a broken lock");
    }
}

#[test]
fn a_pin_that_steals_a_lease_names_both_nodes() {
    let (_dir, topo) = scratch("vxlan-3node");
    let t = topo.to_str().expect("utf8");
    let y = fs::read_to_string(&topo).expect("read").replace(
        "  - name: node-1\n    ip: 192.168.31.61/24\n",
        "  - name: node-1\n    ip: 192.168.31.61/24\n    subnet: 10.244.3.0/24\n",
    );
    fs::write(&topo, y).expect("write");
    let o = run(&["validate", t]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("node `node-1` pins 10.244.3.0/24, which the lock file leases to node `node-3`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unknown_nodes_and_impossible_flags_are_usage_errors() {
    let o = run(&["diff", "examples/vxlan-3node.yaml", "examples/hostgw-3node.yaml", "--node", "node-9"]);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(stderr(&o).contains("no node `node-9` in the topology (did you mean `node-3`?)"), "{}", stderr(&o));
    let o = run(&["render", "examples/vxlan-3node.yaml", "--out", "/nonexistent/x", "--node", "nope"]);
    assert_eq!(code(&o), 2);
    for args in [
        vec!["generate", "--nodes", "300", "--segments", "300"],
        vec!["generate", "--nodes", "4", "--backend", "host-gw", "--segments", "2"],
        vec!["generate", "--nodes", "4", "--backend", "host-gw", "--direct-routing"],
        vec!["generate", "--nodes", "0"],
        vec!["generate", "--nodes", "3", "--cluster", "Bad_Name"],
        vec!["apply", "examples/vxlan-3node.yaml", "--node", "node-1", "--netns", "../x"],
    ] {
        let o = run(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?} prints no topology");
    }
}

#[test]
fn render_counts_a_repeated_node_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("o");
    let o = run(&[
        "render",
        "examples/vxlan-3node.yaml",
        "--out",
        out.to_str().expect("utf8"),
        "--node",
        "node-2",
        "--node",
        "node-2",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("rendered 1 node ("), "{}", stdout(&o));
}

/// flanneld with backend MTU 1400 writes FLANNEL_MTU=1350 (MTU less 50,
/// pkg/backend/vxlan/vxlan_network.go); so does the imported topology, once
/// its nodes are listed.
#[test]
fn an_imported_netconf_renders_flanneld_subnet_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("net-conf.json");
    fs::write(&conf, r#"{"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan", "MTU": 1400}}"#).expect("write");
    let c = conf.to_str().expect("utf8");
    let o = run(&["import-netconf", c, "--cluster", "prod"]);
    assert_eq!(code(&o), 2, "--ip-masq is required: {}", stderr(&o));
    let o = run(&["import-netconf", c, "--cluster", "prod", "--ip-masq", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let topo = dir.path().join("t.yaml");
    fs::write(&topo, stdout(&o).replace("nodes: []\n", "nodes:\n  - name: a\n    ip: 192.168.0.2/24\n"))
        .expect("write");
    let out = dir.path().join("o");
    let o = run(&["render", topo.to_str().expect("utf8"), "--out", out.to_str().expect("utf8")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(out.join("a/run/flannel/subnet.env")).expect("subnet.env"),
        "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.1.1/24\nFLANNEL_MTU=1350\nFLANNEL_IPMASQ=true\n"
    );
}

/// Every argument of every command says what it is for, and every command
/// has an about line: `--help` is the manual people read first.
#[test]
fn every_argument_has_help_text() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        let path = format!("{path} {}", cmd.get_name());
        if cmd.get_about().is_none() {
            missing.push(format!("{path}: no about"));
        }
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id != "help" && id != "version" && arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(sub, &path, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&flannel_gen::cli::Cli::command(), "", &mut missing);
    assert!(missing.is_empty(), "without help text:\n{}", missing.join("\n"));
}

/// Examples in `--help` are one command per line, as written.
#[test]
fn help_examples_are_one_per_line() {
    let out = run(&["apply", "--help"]);
    let help = stdout(&out);
    let examples: Vec<&str> = help.lines().filter(|l| l.trim_start().starts_with("flannel-gen apply")).collect();
    assert!(examples.len() >= 4, "{help}");
    assert!(examples.iter().all(|l| l.matches("flannel-gen apply").count() == 1), "{examples:?}");
}

/// A non-root apply (or teardown) says root and CAP_NET_ADMIN are needed,
/// exit 3, before it touches anything.
#[test]
fn a_non_root_apply_explains_what_it_needs() {
    let is_root = effective_uid() == 0;
    for args in [
        vec!["apply", "examples/vxlan-3node.yaml", "--node", "node-1", "--dry-run"],
        vec!["teardown", "examples/vxlan-3node.yaml", "--node", "node-1"],
    ] {
        // As root, drop to nobody with setpriv (util-linux); otherwise we already are unprivileged.
        let out = if is_root {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]);
            c.arg(env!("CARGO_BIN_EXE_flannel-gen")).args(&args).current_dir(root());
            c.output().expect("setpriv (util-linux) runs")
        } else {
            run(&args)
        };
        let err = stderr(&out);
        assert_eq!(code(&out), 3, "{args:?}: {err}");
        assert!(err.contains("must run as root") && err.contains("CAP_NET_ADMIN"), "{args:?}: {err}");
    }
}

fn effective_uid() -> u32 {
    // The owner of /proc/self is this process's effective uid.
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc/self"))
}

/// `render --stat` shows each node's files and bytes (what is on disk), and
/// with --check writes nothing: the N² growth is visible before it is committed.
#[test]
fn render_stat_counts_what_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = dir.path().join("out");
    let out = run(&["render", "examples/vxlan-3node.yaml", "--out", o.to_str().expect("utf-8"), "--stat"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    for node in ["node-1", "node-2", "node-3"] {
        let line = text.lines().find(|l| l.starts_with(node)).unwrap_or_else(|| panic!("{node}: {text}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (mut files, mut bytes) = (0usize, 0u64);
        let mut stack = vec![o.join(node)];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).expect("read_dir") {
                let e = e.expect("entry");
                if e.file_type().expect("type").is_dir() {
                    stack.push(e.path());
                } else {
                    files += 1;
                    bytes += e.metadata().expect("metadata").len();
                }
            }
        }
        assert_eq!(cols[1..], [files.to_string(), bytes.to_string()], "{line}");
    }
    assert!(text.contains("total: 3 nodes, 60 files"), "{text}");

    let big = dir.path().join("big.yaml");
    fs::write(&big, stdout(&run(&["generate", "--nodes", "300"]))).expect("write");
    let checked = dir.path().join("never");
    let out =
        run(&["render", big.to_str().expect("utf-8"), "--out", checked.to_str().expect("utf-8"), "--stat", "--check"]);
    assert_eq!(code(&out), 1, "everything differs from an empty dir");
    assert!(!checked.exists(), "--check writes nothing");
    let text = stdout(&out);
    assert_eq!(text.lines().filter(|l| l.starts_with("node-")).count(), 300);
    assert!(text.contains("total: 300 nodes") && text.contains("hint: past a few hundred nodes"), "{text}");
    assert!(!text.contains("+++"), "no file diffs with --stat");
}

/// The plan's header names routeStyle only where it means something: vxlan
/// and host-gw route peers through gateways; udp, wireguard and the cloud
/// backends have no such route (validation refuses the key for them).
#[test]
fn plan_text_names_route_style_only_for_gateway_routed_backends() {
    for (example, shown) in [
        ("vxlan-3node", true),
        ("hostgw-3node", true),
        ("udp-3node", false),
        ("wireguard-3node", false),
        ("gce-3node", false),
    ] {
        let o = run(&["plan", &format!("examples/{example}.yaml"), "--node", "node-1"]);
        assert_eq!(code(&o), 0, "{example}: {}", stderr(&o));
        let header = stdout(&o).lines().find(|l| l.starts_with("# mtu ")).map(str::to_string).expect("mtu line");
        assert_eq!(header.contains("routeStyle"), shown, "{example}: {header}");
    }
}
