//! apply under faults: a missing uplink, a wrong device in the way, foreign
//! state, SIGKILL at random points, concurrent applies, a plan for another
//! node. A fault must never leave a node worse than before. Needs root.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::{Netns, flannel_state, root_or_skip};
use common::{code, run, stderr, stdout};

const VXLAN: &str = "examples/vxlan-3node.yaml";

/// A node namespace with eth0 carrying `ip`.
fn node(ip: &str) -> Netns {
    Netns::node("fault", Some(ip))
}

fn apply(ns: &Netns, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["apply", VXLAN, "--node", "node-1", "--netns", &ns.name];
    args.extend_from_slice(extra);
    run(&args)
}

/// Everything apply could touch, device or not.
fn all_state(ns: &Netns) -> String {
    format!("{}\n{}\n{}", flannel_state(ns, &["flannel.1"]), ns.ip(&["-4", "neigh"]), ns.ip(&["-o", "link"]))
}

#[test]
fn missing_uplink_exits_3_and_changes_nothing() {
    if !root_or_skip("missing_uplink_exits_3_and_changes_nothing") {
        return;
    }
    let ns = Netns::new("fault");
    let before = all_state(&ns);
    let o = apply(&ns, &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("uplink eth0 does not exist"), "{}", stderr(&o));
    assert_eq!(all_state(&ns), before);
}

#[test]
fn plan_for_another_node_is_refused_before_any_write() {
    if !root_or_skip("plan_for_another_node_is_refused_before_any_write") {
        return;
    }
    let ns = node("192.168.31.62/24"); // node-2's address
    let before = all_state(&ns);
    let o = apply(&ns, &[]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("meant for another node"), "{}", stderr(&o));
    assert_eq!(all_state(&ns), before);
}

/// An uplink whose MTU is not the one the plan was made for: the overlay
/// MTU would be wrong, so nothing is written at all (exit 3, said why).
#[test]
fn uplink_mtu_other_than_the_plans_is_refused_before_any_write() {
    if !root_or_skip("uplink_mtu_other_than_the_plans_is_refused_before_any_write") {
        return;
    }
    let ns = node("192.168.31.61/24");
    ns.ip(&["link", "set", "eth0", "mtu", "1400"]);
    let everything = |ns: &Netns| {
        let rules = ns.exec("iptables-save", &[]).output().expect("iptables-save").stdout;
        format!("{}\n{}", all_state(ns), String::from_utf8_lossy(&rules))
    };
    let before = everything(&ns);
    let o = apply(&ns, &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("uplink eth0 has MTU 1400 but the plan of node node-1 was made for 1500"),
        "{}",
        stderr(&o)
    );
    assert_eq!(everything(&ns), before);
}

/// An IPv4 overlay on a 1280-byte underlay has MTU 1230, below IPv6's
/// minimum: the kernel refuses IPv6 settings on such a device, so apply
/// makes none, converges, and teardown removes the device it made.
#[test]
fn an_overlay_below_ipv6s_minimum_mtu_applies_and_tears_down() {
    if !root_or_skip("an_overlay_below_ipv6s_minimum_mtu_applies_and_tears_down") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = dir.path().join("small.yaml");
    let y = std::fs::read_to_string(common::root().join(VXLAN)).expect("read").replace("mtu: 1500", "mtu: 1280");
    assert!(y.contains("mtu: 1280"), "the example sets the underlay MTU");
    std::fs::write(&topo, y).expect("write");
    let topo = topo.to_str().expect("utf8");
    let ns = node("192.168.31.61/24");
    ns.ip(&["link", "set", "eth0", "mtu", "1280"]);
    let run_on = |cmd: &str, extra: &[&str]| {
        let mut args = vec![cmd, topo, "--node", "node-1", "--netns", &ns.name];
        args.extend_from_slice(extra);
        run(&args)
    };
    let o = run_on("apply", &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(ns.ip(&["-d", "link", "show", "flannel.1"]).contains("mtu 1230"));
    let o = run_on("apply", &[]);
    assert_eq!((code(&o), stdout(&o).as_str()), (0, "0 changes\n"), "{}", stderr(&o));
    // The underlay grows to 1500: the device grows past 1280 and then takes its IPv6 setting.
    std::fs::write(dir.path().join("small.yaml"), std::fs::read_to_string(common::root().join(VXLAN)).expect("read"))
        .expect("write");
    ns.ip(&["link", "set", "eth0", "mtu", "1500"]);
    let o = run_on("apply", &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(ns.ip(&["-d", "link", "show", "flannel.1"]).contains("addrgenmode none"), "IPv6 setting made");
    let o = run_on("apply", &[]);
    assert_eq!((code(&o), stdout(&o).as_str()), (0, "0 changes\n"), "{}", stderr(&o));
    let o = run_on("teardown", &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(ns.ip(&["-o", "link"]).lines().all(|l| !l.contains("flannel.1")), "teardown left flannel.1");
}

/// A device with the planned name that flannel-gen did not make and that
/// differs from the plan is refused (exit 3, nothing changed); `--adopt`
/// replaces it and the rest converges.
#[test]
fn a_foreign_device_in_the_way_is_refused_then_replaced_with_adopt() {
    if !root_or_skip("a_foreign_device_in_the_way_is_refused_then_replaced_with_adopt") {
        return;
    }
    let reference = node("192.168.31.61/24");
    assert_eq!(code(&apply(&reference, &[])), 0);
    let want = flannel_state(&reference, &["flannel.1"]);

    for squatter in [
        vec!["link", "add", "flannel.1", "type", "veth", "peer", "name", "squat0"],
        vec!["link", "add", "flannel.1", "type", "vxlan", "id", "42", "dstport", "4789", "local", "192.168.31.61"],
    ] {
        let ns = node("192.168.31.61/24");
        ns.ip(&squatter.iter().map(|s| &**s).collect::<Vec<_>>());
        let before = all_state(&ns);
        let o = apply(&ns, &[]);
        assert_eq!(code(&o), 3, "{}", stderr(&o));
        assert!(stderr(&o).contains("flannel.1 exists but flannel-gen did not make it"), "{}", stderr(&o));
        assert!(stderr(&o).contains("--adopt"), "names the flag: {}", stderr(&o));
        assert_eq!(all_state(&ns), before, "refused before any write");
        let o = apply(&ns, &["--adopt"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(stdout(&o).contains("- link flannel.1 ("), "the squatter is replaced: {}", stdout(&o));
        assert_eq!(flannel_state(&ns, &["flannel.1"]), want, "after replacing {squatter:?}");
        assert_eq!(stdout(&apply(&ns, &[])), "0 changes\n");
    }
}

#[test]
fn foreign_routes_and_neighbours_are_untouched() {
    if !root_or_skip("foreign_routes_and_neighbours_are_untouched") {
        return;
    }
    let ns = node("192.168.31.61/24");
    for r in [["10.0.0.0/8", "192.168.31.1"], ["10.245.0.0/16", "192.168.31.1"], ["10.244.0.0/16", "192.168.31.1"]] {
        ns.ip(&["route", "add", r[0], "via", r[1], "dev", "eth0"]);
    }
    ns.ip(&["neigh", "add", "192.168.31.200", "lladdr", "02:00:00:00:00:c8", "dev", "eth0", "nud", "permanent"]);
    let routes = |ns: &Netns| ns.ip(&["-4", "route", "show", "dev", "eth0"]);
    let before = routes(&ns);
    assert_eq!(code(&apply(&ns, &[])), 0);
    assert_eq!(routes(&ns), before, "routes on the uplink outside our scope stay");
    assert!(ns.ip(&["neigh", "show", "dev", "eth0"]).contains("192.168.31.200 lladdr 02:00:00:00:00:c8 PERMANENT"));
}

#[test]
fn sigkill_at_random_points_then_apply_converges_exactly() {
    if !root_or_skip("sigkill_at_random_points_then_apply_converges_exactly") {
        return;
    }
    // A bigger plan, so a kill lands mid-way through the writes.
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = dir.path().join("t.yaml");
    std::fs::write(&topo, run(&["generate", "--nodes", "600"]).stdout).expect("write");
    let out = dir.path().join("o");
    assert_eq!(
        code(&run(&["render", topo.to_str().expect("utf8"), "--out", out.to_str().expect("utf8"), "--node", "node-1"])),
        0
    );
    let plan = out.join("node-1/etc/flannel-gen/plan.json");
    let plan = plan.to_str().expect("utf8");

    let reference = node("172.16.0.10/16");
    let started = Instant::now();
    assert_eq!(code(&run(&["apply", "--plan", plan, "--netns", &reference.name])), 0);
    // Kills spread over what a whole apply takes on this machine now (a
    // loaded machine is slower: fixed delays would all land before or after).
    let span = started.elapsed().as_micros().max(1000) as u64;
    let want = flannel_state(&reference, &["flannel.1"]);

    let ns = node("172.16.0.10/16");
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    // A kill counts only when it left the node half-way: apply had changed
    // something, and not yet everything.
    let mut killed_midway = 0;
    // Every round starts from a node without flannel.1 (a crash may leave
    // that too), so every kill lands in a whole apply's work; rounds go on
    // until three kills left the node half-way (a loaded machine shifts the
    // timing, it does not remove the window).
    for _ in 0..64 {
        if killed_midway >= 3 {
            break;
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % span);
        let _ = Command::new("ip").args(["-n", &ns.name, "link", "del", "flannel.1"]).status();
        let before = flannel_state(&ns, &["flannel.1"]);
        let mut child = common::bin()
            .args(["apply", "--plan", plan, "--netns", &ns.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().expect("wait");
        let after = flannel_state(&ns, &["flannel.1"]);
        if status.code().is_none() && after != before && after != want {
            killed_midway += 1;
        }
    }
    assert!(killed_midway > 0, "no kill left the node half-way; the test proved nothing");
    let o = run(&["apply", "--plan", plan, "--netns", &ns.name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(flannel_state(&ns, &["flannel.1"]), want, "state after kills and one clean apply");
    assert_eq!(stdout(&run(&["apply", "--plan", plan, "--netns", &ns.name])), "0 changes\n");
}

#[test]
fn concurrent_applies_are_serialized_by_a_lock() {
    if !root_or_skip("concurrent_applies_are_serialized_by_a_lock") {
        return;
    }
    let ns = node("192.168.31.61/24");
    let lock = format!("/run/flannel-gen/apply-netns-{}.lock", ns.name);
    std::fs::create_dir_all("/run/flannel-gen").expect("mkdir");
    // Someone else holds the lock for a while.
    let mut holder = Command::new("flock").args([&lock, "sleep", "3"]).spawn().expect("flock (util-linux)");
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let o = apply(&ns, &["--lock-wait", "1"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("another flannel-gen apply holds"), "{}", stderr(&o));
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited before giving up");
    assert!(!ns.ip(&["-o", "link"]).contains("flannel.1"), "nothing was changed");
    // A dry run does not wait for the lock.
    assert_eq!(code(&apply(&ns, &["--dry-run"])), 1);
    let _ = holder.wait();

    // Two at once: both succeed, one after the other, and the node converges.
    let spawn = || common::bin().args(["apply", VXLAN, "--node", "node-1", "--netns", &ns.name]).output();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().expect("a").expect("run a"), b.join().expect("b").expect("run b"))
    });
    assert_eq!((code(&a), code(&b)), (0, 0), "{}{}", stderr(&a), stderr(&b));
    let zero = [stdout(&a), stdout(&b)].iter().filter(|o| o.as_str() == "0 changes\n").count();
    assert_eq!(zero, 1, "exactly one of them did the work:\n{}\n{}", stdout(&a), stdout(&b));
}
