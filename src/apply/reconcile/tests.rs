use std::path::Path;

use super::*;
use crate::apply::live::{LiveFdb, LiveLink, LiveNeigh, LiveVxlan};
use crate::plan::{NodePlan, build};
use crate::{alloc, topology};

fn plan_of(example: &str, node: &str) -> NodePlan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(format!("{example}.yaml"));
    let cluster = topology::load(&path).expect("example is valid");
    let lock = alloc::read_lock(&path).expect("lock readable");
    let a = alloc::allocate(&cluster, lock.as_ref()).expect("allocates");
    build(&cluster, &a, node).expect("plan")
}

const UPLINK: u32 = 2;
const DEV: u32 = 7;

/// The kernel state a correct apply of `plan` leaves behind.
fn converged(plan: &NodePlan) -> Live {
    let mut live = Live::default();
    live.links.insert(
        plan.uplink.name.clone(),
        LiveLink { index: UPLINK, name: plan.uplink.name.clone(), up: true, ..LiveLink::default() },
    );
    live.addrs.insert(UPLINK, vec![plan.uplink.address]);
    if let Some(v) = &plan.vxlan {
        live.links.insert(
            v.name.clone(),
            LiveLink {
                index: DEV,
                name: v.name.clone(),
                kind: Some("vxlan".into()),
                vxlan: Some(LiveVxlan {
                    vni: Some(v.vni),
                    port: Some(v.port),
                    local: Some(v.local),
                    link: Some(UPLINK),
                    learning: Some(false),
                }),
                mtu: Some(v.mtu),
                mac: Some(v.mac),
                up: true,
                addrgen: Some(ADDRGEN_NONE),
            },
        );
        live.addrs.insert(DEV, vec![v.address]);
    }
    for n in plan.neighbours() {
        live.neighs.push(LiveNeigh { ip: n.ip, lladdr: Some(n.lladdr), permanent: true });
    }
    for f in plan.fdb() {
        live.fdb.push(LiveFdb { lladdr: f.lladdr, dst: Some(f.dst), permanent: true });
    }
    for r in plan.routes() {
        let oif = if r.dev == plan.uplink.name { UPLINK } else { DEV };
        live.routes.push(LiveRoute {
            dst: r.dst,
            gateway: Some(r.via),
            oif: Some(oif),
            onlink: r.onlink,
            protocol: ROUTE_PROTOCOL_STATIC,
        });
    }
    for s in &plan.sysctls {
        live.sysctls.insert(s.key.clone(), s.value.clone());
    }
    live
}

fn lines(ops: &[Op]) -> Vec<String> {
    ops.iter().map(ToString::to_string).collect()
}

#[test]
fn converged_node_needs_nothing() {
    for (ex, node) in [("vxlan-3node", "node-1"), ("hostgw-3node", "node-2"), ("vxlan-directrouting", "rack2-a")] {
        let p = plan_of(ex, node);
        assert_eq!(reconcile(&p, &converged(&p), Phase::Complete), vec![], "{ex}/{node}");
    }
}

#[test]
fn empty_node_gets_everything_in_flanneld_order() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    live.links.remove("flannel.1");
    live.addrs.remove(&DEV);
    live.neighs.clear();
    live.fdb.clear();
    live.routes.clear();
    let ops = reconcile(&p, &live, Phase::Complete);
    let kinds: Vec<&str> = ops.iter().map(Op::kind).collect();
    assert_eq!(kinds, ["link", "address", "neigh", "neigh", "fdb", "fdb", "route", "route"]);
    assert!(
        lines(&ops)[6].starts_with("+ route 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"),
        "{:?}",
        lines(&ops)
    );
}

#[test]
fn one_missing_fdb_entry_is_one_change() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    let gone = live.fdb.remove(1);
    let ops = reconcile(&p, &live, Phase::Complete);
    assert_eq!(ops, vec![Op::AddFdb(p.fdb().nth(1).expect("fdb").clone())]);
    assert_eq!(Some(gone.lladdr), p.fdb().nth(1).map(|f| f.lladdr));
}

#[test]
fn only_owned_routes_are_pruned() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    let route = |dst: &str| LiveRoute {
        dst: dst.parse().expect("net"),
        gateway: None,
        oif: Some(UPLINK),
        onlink: false,
        protocol: 3,
    };
    live.routes.push(route("10.244.77.0/24")); // stale peer inside the network: ours
    live.routes.push(route("10.99.0.0/24")); // outside: foreign
    live.routes.push(route("10.244.1.0/24")); // own subnet (cni0): not ours
    live.routes.push(route("10.244.0.0/16")); // the whole network: not ours
    live.routes.push(route("0.0.0.0/0"));
    let ops = reconcile(&p, &live, Phase::Complete);
    assert_eq!(lines(&ops), ["- route 10.244.77.0/24 dev eth0 proto 3"]);
}

#[test]
fn stale_peer_neighbour_and_fdb_are_pruned_foreign_device_entries_ignored() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    let mac = "02:00:00:00:00:99".parse().expect("mac");
    live.neighs.push(LiveNeigh { ip: "10.244.9.0".parse().expect("ip"), lladdr: Some(mac), permanent: true });
    live.neighs.push(LiveNeigh { ip: "10.244.8.0".parse().expect("ip"), lladdr: None, permanent: false });
    live.fdb.push(LiveFdb { lladdr: mac, dst: Some("192.168.31.99".parse().expect("ip")), permanent: true });
    let ops = reconcile(&p, &live, Phase::Complete);
    assert_eq!(
        lines(&ops),
        [
            "- fdb 02:00:00:00:00:99 dst 192.168.31.99 dev flannel.1 self",
            "- neigh 10.244.9.0 lladdr 02:00:00:00:00:99 dev flannel.1"
        ]
    );
}

#[test]
fn wrong_vni_replaces_the_device_and_everything_on_it() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    if let Some(l) = live.links.get_mut("flannel.1") {
        l.vxlan = Some(LiveVxlan { vni: Some(2), ..l.vxlan.clone().unwrap_or_default() });
    }
    let ops = reconcile(&p, &live, Phase::Complete);
    let l = lines(&ops);
    assert_eq!(l[0], "- link flannel.1 (vni 2→1)");
    assert!(l[1].starts_with("+ link flannel.1 type vxlan id 1"));
    assert_eq!(ops.iter().filter(|o| o.kind() == "route").count(), 2, "routes re-added on the new device: {l:?}");
    assert!(ops.iter().all(|o| o.sign() != '~'), "nothing is 'changed' on a fresh device: {l:?}");
}

#[test]
fn wrong_kind_is_replaced_mtu_and_mac_are_fixed_in_place() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    if let Some(l) = live.links.get_mut("flannel.1") {
        l.kind = Some("veth".into());
    }
    assert!(lines(&reconcile(&p, &live, Phase::Complete))[0].starts_with("- link flannel.1 (kind veth, want vxlan)"));

    let mut live = converged(&p);
    if let Some(l) = live.links.get_mut("flannel.1") {
        l.mtu = Some(1400);
        l.up = false;
    }
    assert_eq!(lines(&reconcile(&p, &live, Phase::Complete)), ["~ link flannel.1 (mtu 1400→1450, up)"]);
}

#[test]
fn vxlan_to_host_gw_switches_routes_in_place() {
    let from = plan_of("vxlan-3node", "node-1");
    let to = plan_of("hostgw-3node", "node-1");
    let live = converged(&from);
    let all = lines(&reconcile(&to, &live, Phase::Complete));
    assert_eq!(
        all,
        [
            "~ route 10.244.2.0/24 via 192.168.31.62 dev eth0 (was 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink)",
            "~ route 10.244.3.0/24 via 192.168.31.63 dev eth0 (was 10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink)",
            "- link flannel.1 (not in the plan)",
        ]
    );
    // Phase 1 of a migration keeps the receive side for peers still on VXLAN.
    let keep = lines(&reconcile(&to, &live, Phase::Prepare));
    assert_eq!(keep, all[..2]);
}

#[test]
fn host_gw_to_vxlan_prepares_the_device_and_keeps_routes_until_phase_2() {
    let from = plan_of("hostgw-3node", "node-1");
    let to = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&from);
    // host-gw plans carry no device sysctl; the live node has what the old plan set.
    for s in &to.sysctls {
        live.sysctls.insert(s.key.clone(), s.value.clone());
    }
    let prepare = reconcile(&to, &live, Phase::Prepare);
    let kinds: Vec<&str> = prepare.iter().map(Op::kind).collect();
    assert_eq!(kinds, ["link", "address", "neigh", "neigh", "fdb", "fdb"], "{:?}", lines(&prepare));
    let complete = lines(&reconcile(&to, &live, Phase::Complete));
    assert_eq!(complete.iter().filter(|l| l.starts_with("~ route")).count(), 2, "{complete:?}");
}

#[test]
fn sysctl_is_set_when_off() {
    let p = plan_of("hostgw-3node", "node-1");
    let mut live = converged(&p);
    live.sysctls.insert("net.ipv4.ip_forward".into(), "0".into());
    assert_eq!(lines(&reconcile(&p, &live, Phase::Complete)), ["~ sysctl net.ipv4.ip_forward=1 (was 0)"]);
}
