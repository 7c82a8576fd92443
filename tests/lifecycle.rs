//! Owning what flannel-gen makes over a node's life: teardown removes all of
//! it and nothing else; `apply --confirm-timeout` reverts byte for byte unless
//! confirmed; `rollback` restores after a killed apply; `apply --watch`
//! repairs drift within a second and stays quiet about foreign changes.
//! Needs root; skips loudly otherwise.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::netns::{Netns, flannel_state, http_get, metric, must, root_or_skip};
use common::{code, run, stderr, stdout};

const VXLAN: &str = "examples/vxlan-3node.yaml";
const HOST_GW: &str = "examples/hostgw-3node.yaml";

fn node() -> Netns {
    Netns::node("life", Some("192.168.31.61/24"))
}

fn apply(ns: &Netns, topo: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["apply", topo, "--node", "node-1", "--netns", &ns.name];
    args.extend_from_slice(extra);
    run(&args)
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything apply could own or touch, as text: devices with their aliases,
/// addresses, neighbours, FDB, routes, iptables rules (without save's
/// timestamps), nftables, sysctls.
fn full_state(ns: &Netns) -> String {
    let save: String = text(&must(&mut ns.exec("iptables-save", &[])))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let nft = text(&must(&mut ns.exec("nft", &["list", "ruleset"])));
    let sysctl = text(&must(
        &mut ns.exec("sh", &["-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/*/rp_filter"]),
    ));
    // Without ifindexes: a device made again gets a new one; that is not state.
    let links = ns.ip(&["-d", "-o", "link"]);
    let links: String = links
        .lines()
        .map(|l| l.split(" promiscuity").next().unwrap_or(l))
        .map(|l| l.split_once(": ").map_or(l, |(_, rest)| rest))
        .collect::<Vec<_>>()
        .join("\n");
    let nexthops = ns.ip(&["nexthop", "show"]);
    format!(
        "{}\n{links}\n{}\n{nexthops}\n{save}\n{nft}\n{sysctl}",
        flannel_state(ns, &["flannel.1", "flannel.9"]),
        ns.ip(&["-d", "link", "show"]).lines().filter(|l| l.contains("alias")).collect::<Vec<_>>().join("\n")
    )
}

#[test]
fn teardown_removes_ours_and_nothing_else() {
    if !root_or_skip("teardown_removes_ours_and_nothing_else") {
        return;
    }
    let ns = node();
    // Foreign state that shares tables and names with ours.
    ns.ip(&["route", "add", "10.99.0.0/24", "via", "192.168.31.1", "dev", "eth0"]);
    ns.ip(&["neigh", "add", "192.168.31.200", "lladdr", "02:00:00:00:00:c8", "dev", "eth0", "nud", "permanent"]);
    ns.ip(&["link", "add", "flannel.9", "type", "vxlan", "id", "9", "dstport", "4789", "local", "192.168.31.61"]);
    // Someone else's nexthop object (an id outside flannel-gen's range).
    ns.ip(&["nexthop", "add", "id", "9", "via", "192.168.31.1", "dev", "eth0"]);
    must(&mut ns.exec("iptables", &["-t", "nat", "-A", "POSTROUTING", "-d", "198.51.100.0/24", "-j", "RETURN"]));
    must(&mut ns.exec("iptables", &["-A", "FORWARD", "-s", "203.0.113.0/24", "-j", "DROP"]));
    must(&mut ns.exec("nft", &["add", "table", "ip", "mine"]));
    let foreign = full_state(&ns);
    assert_eq!(code(&apply(&ns, VXLAN, &[])), 0);

    let dry = run(&["teardown", VXLAN, "--node", "node-1", "--netns", &ns.name, "--dry-run"]);
    assert_eq!(code(&dry), 1, "{}", stderr(&dry));
    let o = run(&["teardown", VXLAN, "--node", "node-1", "--netns", &ns.name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), stdout(&dry).replace(" pending (dry run; nothing was changed)", ""));
    assert_eq!(
        stdout(&o),
        "- rules iptables nat FLANNEL-POSTRTG\n\
         - rules iptables filter FLANNEL-FWD\n\
         - route 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink nhid 1174405122\n\
         - route 10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink nhid 1174405123\n\
         - nexthop id 1174405122 via 10.244.2.0 dev flannel.1 onlink\n\
         - nexthop id 1174405123 via 10.244.3.0 dev flannel.1 onlink\n\
         - link flannel.1 (teardown)\n\
         7 changes\n"
    );
    // Everything foreign as it was; apply's sysctls stay (teardown leaves them).
    let after = full_state(&ns);
    let without_sysctls = |s: &str| s.rsplit_once("\n\n").map_or(s.to_string(), |(a, _)| a.to_string());
    assert_eq!(without_sysctls(&after), without_sysctls(&foreign), "only flannel-gen's objects went");
    assert_eq!(text(&must(&mut ns.exec("cat", &["/proc/sys/net/ipv4/ip_forward"]))), "1\n");
    let again =
        run(&["teardown", "--plan", "golden/vxlan-3node/node-1/etc/flannel-gen/plan.json", "--netns", &ns.name]);
    assert_eq!((code(&again), stdout(&again)), (0, "0 changes\n".to_string()));
}

/// #30 item 2: routes others put inside the pod network — another
/// protocol, or a peer's destination at another metric — are kept by apply
/// and teardown, and apply converges beside them.
#[test]
fn foreign_pod_network_routes_are_kept_and_apply_converges() {
    if !root_or_skip("foreign_pod_network_routes_are_kept_and_apply_converges") {
        return;
    }
    let ns = node();
    assert_eq!(code(&apply(&ns, VXLAN, &[])), 0);
    ns.ip(&["route", "add", "10.244.200.0/24", "via", "192.168.31.1", "proto", "99"]);
    ns.ip(&["route", "add", "10.244.201.0/24", "via", "192.168.31.1"]);
    ns.ip(&["route", "add", "10.244.2.0/24", "via", "192.168.31.1", "metric", "100"]);
    let foreign =
        ["10.244.200.0/24 via 192.168.31.1", "10.244.201.0/24 via 192.168.31.1", "10.244.2.0/24 via 192.168.31.1"];
    for _ in 0..2 {
        let o = apply(&ns, VXLAN, &[]);
        assert_eq!((code(&o), stdout(&o)), (0, "0 changes\n".to_string()), "{}", stderr(&o));
    }
    let dry = apply(&ns, VXLAN, &["--dry-run"]);
    assert_eq!(code(&dry), 0, "converged beside them: {}", stdout(&dry));
    let o = run(&["teardown", VXLAN, "--node", "node-1", "--netns", &ns.name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stdout(&o).contains("via 192.168.31.1"), "teardown deletes none of them: {}", stdout(&o));
    let routes = ns.ip(&["route", "show"]);
    for r in foreign {
        assert!(routes.contains(r), "{r} kept:\n{routes}");
    }
}

fn snapshot_file(ns: &Netns) -> std::path::PathBuf {
    Path::new("/run/flannel-gen").join(format!("snapshot-netns-{}.json", ns.name))
}

#[test]
fn an_unconfirmed_apply_is_reverted_byte_for_byte() {
    if !root_or_skip("an_unconfirmed_apply_is_reverted_byte_for_byte") {
        return;
    }
    let ns = node();
    assert_eq!(code(&apply(&ns, VXLAN, &[])), 0);
    let before = full_state(&ns);
    let started = Instant::now();
    let o = apply(&ns, HOST_GW, &["--confirm-timeout", "2"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(started.elapsed() >= Duration::from_secs(2), "it waited for a confirm");
    assert!(stdout(&o).contains("~ route 10.244.2.0/24 via 192.168.31.62 dev eth0"), "{}", stdout(&o));
    assert!(stdout(&o).contains("not confirmed within 2s; reverted:\n"), "{}", stdout(&o));
    assert!(stderr(&o).contains("flannel-gen confirm --netns"), "says how to confirm: {}", stderr(&o));
    assert_eq!(full_state(&ns), before, "the node is as it was before the apply");
    assert!(!snapshot_file(&ns).exists());
}

/// The vxlan example with nftables rules, masquerading or not.
fn nft_topology(dir: &Path, masquerade: bool) -> String {
    let y = std::fs::read_to_string(common::root().join(VXLAN))
        .expect("example")
        .replace("ipMasq: true\n", &format!("ipMasq: {masquerade}\ntrafficRules: nftables\n"));
    let t = dir.join(format!("nft-{masquerade}.yaml"));
    std::fs::write(&t, y).expect("write");
    std::fs::copy(common::root().join("examples/vxlan-3node.lock"), t.with_extension("lock")).expect("lock");
    t.to_string_lossy().into_owned()
}

/// nftables: apply compares `nft -j` listings, which hold no comments; the
/// snapshot keeps the table as `nft list table` printed it, so a revert
/// brings back flanneld's comments too.
#[test]
fn an_unconfirmed_nft_change_is_reverted_byte_for_byte() {
    if !root_or_skip("an_unconfirmed_nft_change_is_reverted_byte_for_byte") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let ns = node();
    assert_eq!(code(&apply(&ns, &nft_topology(dir.path(), true), &[])), 0);
    let before = full_state(&ns);
    assert!(before.contains("comment \"chain to manage traffic masquerading by flannel\""), "{before}");
    let o = apply(&ns, &nft_topology(dir.path(), false), &["--confirm-timeout", "1"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("~ rules nftables ip flannel-ipv4"), "{}", stdout(&o));
    assert_eq!(full_state(&ns), before, "the node is as it was before the apply");
    let again = apply(&ns, &nft_topology(dir.path(), true), &[]);
    assert_eq!((code(&again), stdout(&again)), (0, "0 changes\n".to_string()), "{}", stderr(&again));
}

/// `apply --confirm-timeout` in the background, once it has applied.
fn pending_apply(ns: &Netns) -> Child {
    let child = common::bin()
        .args(["apply", HOST_GW, "--node", "node-1", "--netns", &ns.name, "--confirm-timeout", "30"])
        .current_dir(common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ns.ip(&["route", "show", "10.244.2.0/24"]).contains("dev eth0") {
        assert!(Instant::now() < deadline, "the pending apply never applied");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(snapshot_file(ns).exists(), "the snapshot is on disk while it waits");
    child
}

#[test]
fn a_confirmed_apply_stays() {
    if !root_or_skip("a_confirmed_apply_stays") {
        return;
    }
    let (ns, reference) = (node(), node());
    assert_eq!(code(&apply(&ns, VXLAN, &[])), 0);
    assert_eq!(code(&apply(&reference, HOST_GW, &[])), 0);
    let child = pending_apply(&ns);
    let o = run(&["confirm", "--netns", &ns.name]);
    assert_eq!((code(&o), stdout(&o)), (0, "confirmed: the changes stay\n".to_string()));
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text(&out).ends_with("confirmed: the changes stay\n"), "{}", text(&out));
    // The host-gw state, with the old device gone as a plain apply leaves it.
    assert_eq!(flannel_state(&ns, &["flannel.1"]), flannel_state(&reference, &["flannel.1"]));
    assert!(!snapshot_file(&ns).exists());
}

#[test]
fn a_killed_apply_is_rolled_back() {
    if !root_or_skip("a_killed_apply_is_rolled_back") {
        return;
    }
    let ns = node();
    assert_eq!(code(&apply(&ns, VXLAN, &[])), 0);
    let before = full_state(&ns);
    let mut child = pending_apply(&ns);
    child.kill().expect("kill");
    let _ = child.wait();
    assert_ne!(full_state(&ns), before, "the killed apply had changed the node");
    let o = run(&["rollback", "--netns", &ns.name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(full_state(&ns), before, "rollback restores the state before the apply");
    assert!(!snapshot_file(&ns).exists());
    assert_eq!(stdout(&run(&["rollback", "--netns", &ns.name])), "nothing to roll back\n");
}

/// #30 item 7: a revert restores exactly what was there — no iptables
/// tables the apply made (iptables-restore creates its table), a nexthop's
/// own protocol kept.
#[test]
fn a_revert_leaves_no_table_it_made_and_keeps_nexthop_protocols() {
    if !root_or_skip("a_revert_leaves_no_table_it_made_and_keeps_nexthop_protocols") {
        return;
    }
    let ns = node();
    let bare = full_state(&ns);
    let o = apply(&ns, VXLAN, &["--confirm-timeout", "1"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("- rules nftables ip nat (made by the apply reverted)"), "{}", stdout(&o));
    assert_eq!(full_state(&ns), bare, "the bare node is bare again, nat and filter tables included");

    assert_eq!(code(&apply(&ns, VXLAN, &[])), 0);
    ns.ip(&[
        "nexthop",
        "replace",
        "id",
        "1174405122",
        "via",
        "10.244.2.0",
        "dev",
        "flannel.1",
        "onlink",
        "proto",
        "99",
    ]);
    let before = full_state(&ns);
    assert!(before.contains("\"proto\":\"openr\""), "protocol 99 is openr: {before}");
    let o = apply(&ns, HOST_GW, &["--confirm-timeout", "1"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(full_state(&ns), before, "the nexthop is back with its own protocol");
}

/// #30 item 7: teardown empties a chain that a user's rule jumps to (and
/// says so) instead of failing on it forever, and leaves the rules of a
/// family its plan does not run.
#[test]
fn teardown_keeps_a_referenced_chain_and_other_families_rules() {
    if !root_or_skip("teardown_keeps_a_referenced_chain_and_other_families_rules") {
        return;
    }
    let ns = node();
    assert_eq!(code(&apply(&ns, VXLAN, &[])), 0);
    must(&mut ns.exec("iptables", &["-A", "INPUT", "-j", "FLANNEL-FWD"]));
    must(&mut ns.exec("ip6tables", &["-N", "FLANNEL-FWD"]));
    must(&mut ns.exec("ip6tables", &["-A", "FLANNEL-FWD", "-s", "fd00::/64", "-j", "ACCEPT"]));
    let teardown = || run(&["teardown", VXLAN, "--node", "node-1", "--netns", &ns.name]);
    let o = teardown();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("- rules iptables filter FLANNEL-FWD (kept empty: `-A INPUT -j FLANNEL-FWD` refers to it)"),
        "{}",
        stdout(&o)
    );
    let again = teardown();
    assert_eq!((code(&again), stdout(&again)), (0, "0 changes\n".to_string()), "{}", stderr(&again));
    let v4 = text(&must(&mut ns.exec("iptables", &["-S"])));
    assert!(v4.contains("-N FLANNEL-FWD\n") && !v4.contains("-A FLANNEL-FWD"), "emptied, kept:\n{v4}");
    assert!(!v4.contains("-A FORWARD"), "our jump went:\n{v4}");
    let v6 = text(&must(&mut ns.exec("ip6tables", &["-S", "FLANNEL-FWD"])));
    assert!(v6.contains("-A FLANNEL-FWD -s fd00::/64 -j ACCEPT"), "the IPv6 chain is not the IPv4 plan's:\n{v6}");
}

/// Rewrites the snapshot's body as a hostile editor would, checksum and
/// mode made right, so only the owner rules stand in the way.
fn tamper(file: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    use sha2::Digest;
    use std::os::unix::fs::PermissionsExt;
    let mut outer: serde_json::Value = serde_json::from_slice(&std::fs::read(file).expect("read")).expect("json");
    let mut body: serde_json::Value = serde_json::from_str(outer["body"].as_str().expect("body")).expect("body json");
    edit(&mut body);
    let body = body.to_string();
    let sum: String = sha2::Sha256::digest(body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    outer["body"] = body.into();
    outer["sha256"] = sum.into();
    std::fs::write(file, outer.to_string()).expect("write");
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

#[test]
fn a_tampered_snapshot_restores_nothing() {
    if !root_or_skip("a_tampered_snapshot_restores_nothing") {
        return;
    }
    let ns = node();
    assert_eq!(code(&apply(&ns, VXLAN, &[])), 0);
    let mut child = pending_apply(&ns);
    child.kill().expect("kill");
    let _ = child.wait();
    let (file, killed) = (snapshot_file(&ns), full_state(&ns));
    let good = std::fs::read(&file).expect("snapshot");
    let escape = format!("/tmp/flannel-gen-escape-{}", ns.name);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let push = |at: &'static str, v: serde_json::Value| -> Edit {
        Box::new(move |b| b.pointer_mut(at).and_then(|x| x.as_array_mut()).expect(at).push(v))
    };
    let esc = escape.clone();
    let edits: Vec<(&str, Edit)> = vec![
        (
            "a sysctl outside /proc/sys",
            push("/state/sysctls", serde_json::json!({"key": format!("../../../..{esc}"), "value": "1"})),
        ),
        (
            "the host's hostname",
            push("/state/sysctls", serde_json::json!({"key": "kernel/hostname", "value": "pwned"})),
        ),
        (
            "iptables lines",
            push(
                "/state/rules/iptables/ipv4/FLANNEL-FWD/rules",
                "-A FLANNEL-FWD -j ACCEPT\nCOMMIT\n*filter\n-A INPUT -j DROP".into(),
            ),
        ),
        (
            "a foreign chain",
            Box::new(|b| {
                b["state"]["rules"]["iptables"]["ipv4"]["INPUT"] =
                    serde_json::json!({"exists": true, "rules": ["-A INPUT -j DROP"], "jumps": []})
            }),
        ),
        ("the whole address space", Box::new(|b| b["state"]["scope"][0]["network"] = "0.0.0.0/0".into())),
        (
            "a route outside the cluster",
            push(
                "/state/routes",
                serde_json::json!({"route": {"dst": "192.168.31.0/24", "via": null, "dev": "eth0", "onlink": false, "nhid": null}, "protocol": 2}),
            ),
        ),
        (
            "the uplink as a device",
            Box::new(|b| {
                let mut d = b["state"]["devices"][0].clone();
                d["vxlan"]["name"] = "eth0".into();
                b["state"]["devices"].as_array_mut().expect("devices").push(d);
            }),
        ),
        ("another namespace", Box::new(|b| b["netns"] = "elsewhere".into())),
    ];
    for (what, edit) in edits {
        std::fs::write(&file, &good).expect("restore file");
        tamper(&file, edit);
        let o = run(&["rollback", "--netns", &ns.name]);
        assert_eq!(code(&o), 2, "{what}: {}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains("nothing was restored"), "{what}: {}", stderr(&o));
        assert_eq!(full_state(&ns), killed, "{what}: nothing was restored");
        assert!(file.exists(), "{what}: the snapshot stays for a person to look at");
    }
    assert!(!Path::new(&escape).exists(), "nothing was written outside /proc/sys");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname"), hostname);
    // An edit without the checksum, and a file others could have written.
    let edited = String::from_utf8(good.clone()).expect("utf8").replacen("10.244.", "10.245.", 1);
    std::fs::write(&file, edited).expect("write");
    let o = run(&["rollback", "--netns", &ns.name]);
    assert!(code(&o) == 2 && stderr(&o).contains("checksum"), "{}", stderr(&o));
    std::fs::write(&file, &good).expect("write");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");
    let o = run(&["rollback", "--netns", &ns.name]);
    assert!(code(&o) == 2 && stderr(&o).contains("mode 0600"), "{}", stderr(&o));
    // The untouched snapshot still restores.
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let o = run(&["rollback", "--netns", &ns.name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!file.exists());
}

/// `apply --watch` in the background, its stdout collected line by line.
struct Watcher {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Watcher {
    fn start(ns: &Netns, topo: &str) -> Watcher {
        Watcher::start_with(ns, topo, &[])
    }

    fn start_with(ns: &Netns, topo: &str, extra: &[&str]) -> Watcher {
        let mut child = common::bin()
            .args(["apply", topo, "--node", "node-1", "--netns", &ns.name, "--watch", "--resync", "300"])
            .args(extra)
            .current_dir(common::root())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let pipe = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut v) = sink.lock() {
                    v.push(l);
                }
            }
        });
        let w = Watcher { child, lines };
        w.wait_for(|l| l.ends_with(" changes") || l.ends_with(" change"));
        w
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn wait_for(&self, f: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.lines().iter().any(|l| f(l)) {
            assert!(Instant::now() < deadline, "watch printed no such line: {:?}", self.lines());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // SAFETY: kill has no memory effects; our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Time until `ns` is back to `want`, polling every 10 ms, at most 5 s.
fn time_to(ns: &Netns, devs: &[&str], want: &str) -> Duration {
    let started = Instant::now();
    while flannel_state(ns, devs) != want && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

#[test]
fn watch_repairs_drift_within_a_second_and_ignores_foreign_changes() {
    if !root_or_skip("watch_repairs_drift_within_a_second_and_ignores_foreign_changes") {
        return;
    }
    let ns = node();
    let w = Watcher::start(&ns, VXLAN);
    let want = flannel_state(&ns, &["flannel.1"]);
    ns.ip(&["route", "del", "10.244.2.0/24"]);
    let fdb = text(&must(Command::new("bridge").args(["-n", &ns.name, "fdb", "show", "dev", "flannel.1"])));
    let entry: Vec<&str> = fdb.lines().next().expect("an fdb entry").split_whitespace().collect();
    must(Command::new("bridge").args([
        "-n",
        &ns.name,
        "fdb",
        "del",
        entry[0],
        "dev",
        "flannel.1",
        "dst",
        entry[2],
        "self",
    ]));
    ns.ip(&["link", "set", "flannel.1", "down"]);
    let latency = time_to(&ns, &["flannel.1"], &want);
    eprintln!("watch: route + FDB entry + device down repaired in {} ms", latency.as_millis());
    assert!(latency < Duration::from_secs(1), "repaired within a second, took {latency:?}");
    w.wait_for(|l| l.starts_with("repaired in "));

    // Foreign changes: read, and no write.
    let before = w.lines().len();
    ns.ip(&["route", "add", "10.99.0.0/24", "via", "192.168.31.1", "dev", "eth0"]);
    ns.ip(&["neigh", "add", "192.168.31.201", "lladdr", "02:00:00:00:00:c9", "dev", "eth0", "nud", "permanent"]);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(w.lines().len(), before, "no repair for foreign state: {:?}", &w.lines()[before..]);
    assert!(ns.ip(&["route", "show", "10.99.0.0/24"]).contains("10.99.0.0/24"), "the foreign route stays");
    assert_eq!(flannel_state(&ns, &["flannel.1"]).matches("10.99.0.0").count(), 1);
}

#[test]
fn watch_restores_host_gw_routes_after_an_uplink_flap() {
    if !root_or_skip("watch_restores_host_gw_routes_after_an_uplink_flap") {
        return;
    }
    let ns = node();
    let _w = Watcher::start(&ns, HOST_GW);
    let want = flannel_state(&ns, &[]);
    ns.ip(&["link", "set", "eth0", "down"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!ns.ip(&["route"]).contains("10.244.2.0/24"), "the kernel dropped the routes with the uplink");
    ns.ip(&["link", "set", "eth0", "up"]);
    let latency = time_to(&ns, &[], &want);
    eprintln!("watch: host-gw routes back {} ms after the uplink came up", latency.as_millis());
    assert!(latency < Duration::from_secs(1), "took {latency:?}");
}

/// #28: `apply --watch --healthz-port` serves flanneld's /healthz and
/// /readyz, and /metrics whose counters follow the repairs.
#[test]
fn watch_serves_health_readiness_and_metrics() {
    if !root_or_skip("watch_serves_health_readiness_and_metrics") {
        return;
    }
    let ns = node();
    let w = Watcher::start_with(&ns, VXLAN, &["--healthz-port", "9411", "--healthz-ip", "127.0.0.1"]);
    assert_eq!(http_get(&ns, 9411, "/healthz"), (200, "flannel-gen apply --watch is running".to_string()));
    assert_eq!(http_get(&ns, 9411, "/readyz"), (200, "flannel-gen apply --watch is ready".to_string()));
    assert_eq!(http_get(&ns, 9411, "/nothing").0, 404);
    let (status, before) = http_get(&ns, 9411, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(metric(&before, "flannel_gen_drift_repaired_total"), Some(1.0), "the first apply: {before}");
    assert!(metric(&before, "flannel_gen_apply_changes_total").is_some_and(|n| n >= 10.0), "{before}");
    assert!(before.contains("# TYPE flannel_gen_apply_passes_total counter"), "{before}");
    assert!(metric(&before, "flannel_gen_last_success_timestamp_seconds").is_some_and(|t| t > 1.7e9), "{before}");
    ns.ip(&["route", "del", "10.244.2.0/24"]);
    w.wait_for(|l| l.starts_with("repaired in"));
    let (_, after) = http_get(&ns, 9411, "/metrics");
    assert_eq!(metric(&after, "flannel_gen_drift_repaired_total"), Some(2.0), "{after}");
    assert_eq!(metric(&after, "flannel_gen_apply_failures_total"), Some(0.0), "{after}");
    let o = run(&["apply", VXLAN, "--node", "node-1", "--netns", &ns.name, "--healthz-port", "9412"]);
    assert_eq!(code(&o), 2, "--healthz-port without --watch: {}", stderr(&o));
}
