//! `apply` reads the kernel on a second thread while it compiles the plan
//! (src/apply/ahead.rs). What it reads ahead must be what the usual read
//! finds once the plan is known, foreign objects excluded alike, and the lock
//! it takes ahead must really be held. Needs root; skips loudly otherwise.

mod common;

use std::path::Path;
use std::time::Duration;

use common::netns::{Netns, root_or_skip};
use common::{code, run, stderr};
use flannel_gen::apply::{Desired, Session, Target, ahead};

const TOPO: &str = "examples/vxlan-dualstack.yaml";
const V4_ONLY: &str = "examples/vxlan-3node.yaml";

fn target(ns: &Netns) -> Target {
    Target { netns: Some(ns.name.clone()), lock_wait: Duration::from_secs(5) }
}

#[test]
fn what_is_read_ahead_is_what_the_usual_read_finds() {
    if !root_or_skip("what_is_read_ahead_is_what_the_usual_read_finds") {
        return;
    }
    let ns = Netns::node("ahead", Some("192.168.31.61/24"));
    ns.ip(&["-6", "addr", "add", "fd00:31::61/64", "dev", "eth0", "nodad"]);
    let o = run(&["apply", TOPO, "--node", "node-1", "--netns", &ns.name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // A foreign VXLAN device with a neighbour and an FDB entry, and a foreign route.
    ns.ip(&["link", "add", "vx9", "type", "vxlan", "id", "9", "dstport", "4789", "dev", "eth0"]);
    ns.ip(&["link", "set", "vx9", "up"]);
    ns.ip(&["neigh", "add", "10.9.0.1", "lladdr", "02:00:00:00:00:09", "dev", "vx9", "nud", "permanent"]);
    must_bridge(&ns, &["fdb", "append", "02:00:00:00:00:09", "dev", "vx9", "dst", "192.168.31.99"]);
    ns.ip(&["route", "add", "10.9.0.0/16", "dev", "vx9"]);

    let c = flannel_gen::compile::compile(Path::new(TOPO), true).expect("the example compiles");
    let plan = flannel_gen::plan::build(&c.cluster, &c.leases, "node-1").expect("node-1");
    let desired = Desired::from_plan(&plan);
    let usual = read(&ns, &desired, None);
    // A dry run's read ahead takes no lock.
    let (lock, early) = ahead::start(&target(&ns), true).finish().expect("no panic").expect("no lock to fail");
    assert!(lock.is_none(), "a dry run holds no lock");
    assert!(early.kernel.is_some() && early.rules.is_some(), "the kernel and the IPv4 rules were read ahead");
    let mut early = read(&ns, &desired, Some(early));
    // The kernel's own multicast entries (ff02::16 after MLD on a new
    // device) appear whenever they do, between the two reads or not.
    let mut usual = usual;
    for live in [&mut early, &mut usual] {
        live.neighs.retain(|n| n.permanent);
    }

    assert_eq!(early, usual, "the read ahead differs from the usual read");
    assert!(usual.neighs.len() >= 4 && usual.fdb.len() >= 4, "both families' peers: {usual:?}");
    assert!(!usual.rules.iptables.is_empty() || !usual.rules.nft.is_empty(), "the rules were read");
    assert!(usual.routes.iter().any(|r| r.dst.to_string() == "10.9.0.0/16"), "foreign routes are read too");
    let vx9 = usual.index_of("vx9").expect("vx9");
    assert!(!usual.neighs.iter().chain(early.neighs.iter()).any(|n| n.ifindex == vx9), "a foreign device's neighbours");
}

/// A session's read, on a thread of its own (a session enters the namespace
/// on the thread that opens it).
fn read(ns: &Netns, desired: &Desired, pre: Option<ahead::ReadAhead>) -> flannel_gen::apply::live::Live {
    std::thread::scope(|s| {
        s.spawn(|| {
            let session = Session::open(Some(ns.name.as_str())).expect("session");
            session.read(desired, pre).expect("read")
        })
        .join()
        .expect("read thread")
    })
}

fn must_bridge(ns: &Netns, args: &[&str]) {
    common::netns::must(std::process::Command::new("bridge").arg("-n").arg(&ns.name).args(args));
}

#[test]
fn the_lock_taken_ahead_is_held() {
    if !root_or_skip("the_lock_taken_ahead_is_held") {
        return;
    }
    let ns = Netns::node("ahead-lock", Some("192.168.31.61/24"));
    let (lock, _) = ahead::start(&target(&ns), false).finish().expect("no panic").expect("the lock");
    assert!(lock.is_some(), "an apply's read ahead takes the namespace lock");
    let o = run(&["apply", V4_ONLY, "--node", "node-1", "--netns", &ns.name, "--lock-wait", "0"]);
    assert_ne!(code(&o), 0, "another apply must not run while the lock is held");
    assert!(stderr(&o).contains("lock"), "{}", stderr(&o));
    drop(lock);
    let o = run(&["apply", V4_ONLY, "--node", "node-1", "--netns", &ns.name, "--lock-wait", "0"]);
    assert_eq!(code(&o), 0, "released with its guard: {}", stderr(&o));
}
