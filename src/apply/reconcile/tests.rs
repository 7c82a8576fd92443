use std::path::Path;

use super::*;
use crate::apply::kernel::{ADDRGEN_NONE, ROUTE_PROTOCOL_STATIC, default_metric, route_scope};
use crate::apply::live::{LiveFdb, LiveLink, LiveNeigh, LiveNexthop, LiveRoute, LiveTun, LiveVxlan};
use crate::apply::ops::{Op, Stage};
use crate::plan::objects::BLACKHOLE_METRIC;
use crate::plan::{NodePlan, build, marker};
use crate::topology;

fn compiled(example: &str) -> (topology::Cluster, crate::lock::Leases) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(format!("{example}.yaml"));
    let cluster = topology::load(&path).expect("example is valid");
    let lock = crate::lock::read_lock(&path).expect("lock readable");
    let leases = crate::alloc::allocate(&cluster, lock.as_ref()).expect("allocates");
    (cluster, leases)
}

fn plan_of(example: &str, node: &str) -> NodePlan {
    let (c, l) = compiled(example);
    build(&c, &l, node).expect("plan")
}

/// The vxlan example with another VNI.
fn plan_with_vni(vni: u32) -> NodePlan {
    let (mut c, l) = compiled("vxlan-3node");
    c.backend.vni = vni;
    build(&c, &l, "node-1").expect("plan")
}

const UPLINK: u32 = 2;

fn opts(phase: Phase) -> Options {
    Options { phase, adopt: false }
}

/// The kernel state a correct apply of `plan` leaves behind; devices get
/// indexes from 7 on.
fn converged(plan: &NodePlan) -> Live {
    let mut live = Live::default();
    let uplink = LiveLink { index: UPLINK, name: plan.uplink.name.clone(), up: true, ..LiveLink::default() };
    live.links.insert(plan.uplink.name.clone(), uplink);
    live.addrs.insert(UPLINK, [plan.uplink.ipv4, plan.uplink.ipv6].into_iter().flatten().collect());
    for (i, d) in plan.vxlan_devices().into_iter().enumerate() {
        let index = 7 + i as u32;
        let vxlan = LiveVxlan {
            vni: Some(d.vni),
            port: Some(d.port),
            local: Some(d.local),
            link: Some(UPLINK),
            learning: Some(false),
            gbp: Some(d.gbp),
        };
        let link = LiveLink {
            index,
            name: d.name.clone(),
            kind: Some("vxlan".into()),
            vxlan: Some(vxlan),
            mtu: Some(d.mtu),
            mac: Some(d.mac),
            up: true,
            addrgen: Some(ADDRGEN_NONE),
            alias: Some(marker(&plan.cluster)),
            tun: None,
        };
        live.links.insert(d.name.clone(), link);
        live.addrs.insert(index, vec![d.address]);
        live.tx_checksum.insert(d.name.clone(), d.tx_checksum_offload);
    }
    if let Some(t) = plan.tun_device() {
        live.links.insert(t.name.clone(), tun_link(&t.name, 20, plan));
        live.addrs.insert(20, vec![t.address]);
    }
    live.rules = converged_rules(plan);
    let index_of = |live: &Live, dev: &str| live.index_of(dev).expect("device");
    for n in plan.neighbours() {
        let ifindex = index_of(&live, &n.dev);
        live.neighs.push(LiveNeigh { ifindex, ip: n.ip, lladdr: Some(n.lladdr), permanent: true });
    }
    for f in plan.fdb() {
        let ifindex = index_of(&live, &f.dev);
        live.fdb.push(LiveFdb { ifindex, lladdr: f.lladdr, dst: Some(f.dst), permanent: true });
    }
    for want in Desired::from_plan(plan).routes {
        let (r, protocol) = (want.route, want.protocol);
        let oif = Some(index_of(&live, &r.dev));
        if let Some(id) = r.nhid {
            let nh = LiveNexthop { id, gateway: r.via, oif, onlink: r.onlink, protocol, other: false };
            live.nexthops.insert(id, nh);
        }
        let route = LiveRoute {
            dst: r.dst,
            gateway: r.via,
            oif,
            onlink: r.onlink,
            protocol,
            scope: route_scope(r.scope),
            nhid: r.nhid,
            metric: default_metric(&r.dst),
        };
        live.routes.push(route);
    }
    live.blackholes = plan.blackholes().into_iter().map(|dst| blackhole(dst, BLACKHOLE_METRIC)).collect();
    for s in &plan.sysctls {
        live.sysctls.insert(s.key.clone(), s.value.clone());
    }
    live
}

fn blackhole(dst: ipnet::IpNet, metric: u32) -> LiveRoute {
    LiveRoute {
        dst,
        gateway: None,
        oif: None,
        onlink: false,
        protocol: ROUTE_PROTOCOL_STATIC,
        scope: 0,
        nhid: None,
        metric,
    }
}

/// flannel0 as apply makes it: persistent multi-queue TUN, no packet info.
fn tun_link(name: &str, index: u32, plan: &NodePlan) -> LiveLink {
    LiveLink {
        index,
        name: name.into(),
        kind: Some("tun".into()),
        tun: Some(LiveTun { tun_type: Some(1), pi: Some(false), multi_queue: Some(true), persist: Some(true) }),
        mtu: Some(plan.mtu),
        up: true,
        addrgen: Some(ADDRGEN_NONE),
        alias: Some(marker(&plan.cluster)),
        ..LiveLink::default()
    }
}

/// The rules a correct apply leaves: iptables-save showing exactly the
/// planned chains (iptables is installed), no nftables table.
fn converged_rules(plan: &NodePlan) -> crate::apply::rules::LiveRules {
    use crate::traffic::iptables::{self, SavedChain};
    let mut rules = crate::apply::rules::LiveRules::default();
    for (f, _) in plan.families() {
        let mut saved: std::collections::BTreeMap<&'static str, SavedChain> =
            iptables::OWNED.iter().map(|o| (o.chain, SavedChain::default())).collect();
        let iptables_plan = plan.traffic_rules.is_some_and(|t| t.backend == crate::topology::RulesBackend::Iptables);
        for r in plan.family_rules().iter().filter(|r| r.family == f && iptables_plan) {
            for c in iptables::chains(r) {
                saved.insert(c.owned.chain, c.saved());
            }
        }
        rules.iptables.insert(f, saved);
    }
    rules
}

fn lines(plan: &NodePlan, live: &Live, phase: Phase) -> Vec<String> {
    reconcile_plan(plan, live, opts(phase)).expect("reconciles").iter().map(ToString::to_string).collect()
}

#[test]
fn converged_node_needs_nothing() {
    for (ex, node) in [
        ("vxlan-3node", "node-1"),
        ("hostgw-3node", "node-2"),
        ("vxlan-directrouting", "rack2-a"),
        ("udp-3node", "node-3"),
        ("hostgw-dualstack", "node-1"),
    ] {
        let p = plan_of(ex, node);
        for phase in [Phase::Prepare, Phase::Switch, Phase::Complete] {
            assert_eq!(lines(&p, &converged(&p), phase), Vec::<String>::new(), "{ex}/{node} {phase:?}");
        }
    }
}

#[test]
fn empty_node_gets_everything_in_flanneld_order() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    live.links.remove("flannel.1");
    live.addrs.remove(&7);
    live.neighs.clear();
    live.fdb.clear();
    live.routes.clear();
    live.nexthops.clear();
    let ops = reconcile_plan(&p, &live, opts(Phase::Complete)).expect("ok");
    let kinds: Vec<&str> = ops.iter().map(Op::kind).collect();
    // The new device's rp_filter is set after it exists.
    assert_eq!(kinds, ["link", "sysctl", "address", "neigh", "neigh", "fdb", "fdb", "route", "route"]);
    let stages: Vec<Stage> = ops.iter().map(Op::stage).collect();
    assert!(stages.windows(2).all(|w| w[0] <= w[1]), "listed in the order they run: {stages:?}");
    // routeStyle nexthop: id 0x46000000 | the subnet's index (2) in 10.244.0.0/16.
    assert_eq!(ops[7].to_string(), "+ route 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink nhid 1174405122");
    assert!(
        matches!(&ops[0], Op::CreateLink { alias: Some(m), up: true, .. } if m == "flannel-gen:prod-east"),
        "{:?}",
        ops[0]
    );
}

/// flannel-gen's blackhole is the one with its metric inside the cluster
/// network: flanneld's (metric 0) and anyone's outside stay; a stale one of
/// ours (an old subnet) goes, but not in phase 1.
#[test]
fn blackholes_are_owned_by_their_metric() {
    let p = plan_of("hostgw-dualstack", "node-1");
    let mut live = converged(&p);
    let net = |s: &str| s.parse::<ipnet::IpNet>().expect("cidr");
    live.blackholes.retain(|b| b.dst.addr().is_ipv4());
    live.blackholes.push(blackhole(net("10.244.1.0/24"), 0));
    live.blackholes.push(blackhole(net("10.99.0.0/24"), BLACKHOLE_METRIC));
    live.blackholes.push(blackhole(net("10.244.7.0/24"), BLACKHOLE_METRIC));
    assert_eq!(
        lines(&p, &live, Phase::Complete),
        ["+ route blackhole fd00:10:244:1::/64 metric 4096", "- route blackhole 10.244.7.0/24 metric 4096"]
    );
    assert_eq!(lines(&p, &live, Phase::Prepare), ["+ route blackhole fd00:10:244:1::/64 metric 4096"]);
}

#[test]
fn one_missing_fdb_entry_is_one_change() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    live.fdb.remove(1);
    let ops = reconcile_plan(&p, &live, opts(Phase::Complete)).expect("ok");
    assert_eq!(ops, vec![Op::AddFdb(p.fdb().nth(1).expect("fdb"))]);
}

#[test]
fn only_owned_routes_are_pruned() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    let route = |dst: &str, protocol: u8, metric: u32| LiveRoute {
        dst: dst.parse().expect("net"),
        gateway: None,
        oif: Some(UPLINK),
        onlink: false,
        protocol,
        scope: 0,
        metric,
        nhid: None,
    };
    live.routes.push(route("10.244.77.0/24", ROUTE_PROTOCOL_STATIC, 0)); // a stale one of ours
    live.routes.push(route("10.244.78.0/24", 3, 0)); // someone's `ip route add` (proto boot): foreign
    live.routes.push(route("10.244.79.0/24", 99, 0)); // another daemon's: foreign
    live.routes.push(route("10.244.2.0/24", ROUTE_PROTOCOL_STATIC, 100)); // beside a peer's, another metric
    live.routes.push(route("10.99.0.0/24", ROUTE_PROTOCOL_STATIC, 0)); // outside: foreign
    live.routes.push(route("10.244.1.0/24", ROUTE_PROTOCOL_STATIC, 0)); // own subnet (cni0): not ours
    live.routes.push(route("10.244.0.0/16", ROUTE_PROTOCOL_STATIC, 0)); // the whole network: not ours
    live.routes.push(route("0.0.0.0/0", 3, 0));
    live.routes.push(route("fd00::/64", ROUTE_PROTOCOL_STATIC, 1024)); // another family: foreign
    assert_eq!(lines(&p, &live, Phase::Complete), ["- route 10.244.77.0/24 dev eth0"]);
    assert_eq!(lines(&p, &live, Phase::Prepare), Vec::<String>::new(), "phase 1 removes nothing");
}

#[test]
fn a_planned_destination_is_owned_whatever_its_protocol() {
    let p = plan_of("hostgw-3node", "node-1");
    let mut live = converged(&p);
    let peer = live.routes.iter_mut().find(|r| r.dst.to_string() == "10.244.2.0/24").expect("peer route");
    peer.protocol = 3; // as flanneld made it
    peer.gateway = "192.168.31.99".parse().ok();
    peer.nhid = None;
    assert_eq!(
        lines(&p, &live, Phase::Complete),
        [
            "~ route 10.244.2.0/24 via 192.168.31.62 dev eth0 nhid 1174405122 (was 10.244.2.0/24 via 192.168.31.99 dev eth0 proto boot)"
        ]
    );
}

#[test]
fn stale_peer_neighbour_and_fdb_are_pruned() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    let mac = "02:00:00:00:00:99".parse().expect("mac");
    live.neighs.push(LiveNeigh {
        ifindex: 7,
        ip: "10.244.9.0".parse().expect("ip"),
        lladdr: Some(mac),
        permanent: true,
    });
    live.neighs.push(LiveNeigh { ifindex: 7, ip: "10.244.8.0".parse().expect("ip"), lladdr: None, permanent: false });
    live.fdb.push(LiveFdb {
        ifindex: 7,
        lladdr: mac,
        dst: Some("192.168.31.99".parse().expect("ip")),
        permanent: true,
    });
    assert_eq!(
        lines(&p, &live, Phase::Complete),
        [
            "- fdb 02:00:00:00:00:99 dst 192.168.31.99 dev flannel.1 self",
            "- neigh 10.244.9.0 lladdr 02:00:00:00:00:99 dev flannel.1"
        ]
    );
}

#[test]
fn an_owned_device_with_the_wrong_vni_is_replaced_with_everything_on_it() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    if let Some(l) = live.links.get_mut("flannel.1") {
        l.vxlan = Some(LiveVxlan { vni: Some(2), ..l.vxlan.clone().unwrap_or_default() });
    }
    let l = lines(&p, &live, Phase::Complete);
    assert_eq!(l[0], "- link flannel.1 (vni 2→1)");
    assert!(l[1].starts_with("+ link flannel.1 type vxlan id 1"), "{l:?}");
    assert_eq!(l.iter().filter(|o| o.contains(" route ")).count(), 2, "routes re-added on the new device: {l:?}");
    assert!(
        l.iter().filter(|o| !o.contains(" sysctl ")).all(|o| !o.starts_with('~')),
        "nothing on a fresh device is 'changed' (its sysctl is set anew): {l:?}"
    );
}

#[test]
fn an_unmarked_device_in_the_way_is_refused_unless_adopt() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    if let Some(l) = live.links.get_mut("flannel.1") {
        l.kind = Some("veth".into());
        l.alias = None;
    }
    let refused = reconcile_plan(&p, &live, opts(Phase::Complete)).expect_err("refused");
    assert_eq!(
        refused.to_string(),
        "flannel.1 exists but flannel-gen did not make it, and it differs from the plan (kind veth, want vxlan); nothing was changed. Remove it, or run apply with --adopt to replace it"
    );
    let adopt = reconcile_plan(&p, &live, Options { phase: Phase::Complete, adopt: true }).expect("replaced");
    assert_eq!(adopt[0].to_string(), "- link flannel.1 (kind veth, want vxlan)");
}

#[test]
fn an_unmarked_device_that_matches_the_plan_is_adopted_in_place() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    if let Some(l) = live.links.get_mut("flannel.1") {
        l.alias = None;
        l.mtu = Some(1400);
    }
    assert_eq!(
        lines(&p, &live, Phase::Complete),
        ["~ link flannel.1 (mtu 1400→1450, adopted, alias \"flannel-gen:prod-east\")"]
    );
    // flanneld's device with another VTEP MAC is not the plan's: refused.
    if let Some(l) = live.links.get_mut("flannel.1") {
        l.mac = Some("02:11:22:33:44:55".parse().expect("mac"));
    }
    assert!(reconcile_plan(&p, &live, opts(Phase::Complete)).is_err());
}

#[test]
fn mtu_and_up_are_fixed_in_place() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    if let Some(l) = live.links.get_mut("flannel.1") {
        l.mtu = Some(1400);
        l.up = false;
    }
    assert_eq!(lines(&p, &live, Phase::Complete), ["~ link flannel.1 (mtu 1400→1450, up)"]);
}

#[test]
fn vxlan_to_host_gw_moves_routes_in_phase_1_and_drops_the_device_in_phase_2() {
    let from = plan_of("vxlan-3node", "node-1");
    let to = plan_of("hostgw-3node", "node-1");
    let live = converged(&from);
    let moves = [
        "~ route 10.244.2.0/24 via 192.168.31.62 dev eth0 nhid 1174405122 (was 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink nhid 1174405122)",
        "~ route 10.244.3.0/24 via 192.168.31.63 dev eth0 nhid 1174405123 (was 10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink nhid 1174405123)",
    ];
    // Phase 1 keeps the device: peers still on VXLAN send to it.
    assert_eq!(lines(&to, &live, Phase::Prepare), moves);
    // Once every node ran phase 1 nobody routes over it: phase 2 removes it.
    let after_phase_1 = {
        let mut l = converged(&to);
        l.links.insert("flannel.1".into(), LiveLink { index: 41, ..live.links["flannel.1"].clone() });
        l
    };
    assert_eq!(lines(&to, &after_phase_1, Phase::Switch), ["- link flannel.1 (not in the plan)"]);
    let all = lines(&to, &live, Phase::Complete);
    assert_eq!(all, [moves[0], moves[1], "- link flannel.1 (not in the plan)"]);
}

#[test]
fn host_gw_to_vxlan_prepares_the_device_and_moves_routes_in_phase_2() {
    let from = plan_of("hostgw-3node", "node-1");
    let to = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&from);
    // The host-gw plan carries no device sysctl; the node has what the vxlan plan set.
    for s in &to.sysctls {
        live.sysctls.insert(s.key.clone(), s.value.clone());
    }
    let prepare = reconcile_plan(&to, &live, opts(Phase::Prepare)).expect("ok");
    let kinds: Vec<&str> = prepare.iter().map(Op::kind).collect();
    assert_eq!(kinds, ["link", "sysctl", "address", "neigh", "neigh", "fdb", "fdb"]);
    let switch = lines(&to, &live, Phase::Switch);
    assert_eq!(switch.iter().filter(|l| l.starts_with("~ route")).count(), 2, "{switch:?}");
}

#[test]
fn a_vni_change_needs_three_phases() {
    let from = plan_with_vni(42);
    let to = plan_with_vni(43);
    let live = converged(&from);
    let p1 = lines(&to, &live, Phase::Prepare);
    assert!(p1.iter().any(|l| l.starts_with("+ link flannel.43 type vxlan id 43")), "{p1:?}");
    assert!(
        p1.iter().all(|l| !l.contains("route") && !l.starts_with('-')),
        "phase 1 moves no route onto flannel.43: {p1:?}"
    );
    let p2 = lines(&to, &live, Phase::Switch);
    assert_eq!(p2.iter().filter(|l| l.starts_with("~ route") && l.contains("dev flannel.43")).count(), 2, "{p2:?}");
    assert!(!p2.iter().any(|l| l.contains("- link flannel.42")), "flannel.42 stays for peers not switched yet: {p2:?}");
    let mut after_phase_2 = converged(&to);
    let old = LiveLink { index: 42, ..live.links["flannel.42"].clone() };
    after_phase_2.links.insert("flannel.42".into(), old);
    assert_eq!(lines(&to, &after_phase_2, Phase::Switch), ["- link flannel.42 (not in the plan)"]);
    assert_eq!(lines(&to, &after_phase_2, Phase::Complete), ["- link flannel.42 (not in the plan)"]);
}

#[test]
fn a_foreign_device_of_another_cluster_is_never_retired() {
    let p = plan_of("hostgw-3node", "node-1");
    let mut live = converged(&p);
    let other = LiveLink { index: 9, name: "flannel.9".into(), alias: Some(marker("other")), ..LiveLink::default() };
    live.links.insert("flannel.9".into(), other);
    let plain = LiveLink { index: 10, name: "flannel.1".into(), kind: Some("vxlan".into()), ..LiveLink::default() };
    live.links.insert("flannel.1".into(), plain);
    assert_eq!(lines(&p, &live, Phase::Complete), Vec::<String>::new());
}

#[test]
fn sysctl_is_set_when_off() {
    let p = plan_of("hostgw-3node", "node-1");
    let mut live = converged(&p);
    live.sysctls.insert("net.ipv4.ip_forward".into(), "0".into());
    assert_eq!(lines(&p, &live, Phase::Complete), ["~ sysctl net.ipv4.ip_forward=1 (was 0)"]);
}

#[test]
fn missing_rules_are_made_and_a_stray_jump_is_replaced() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    let v4 = live.rules.iptables.get_mut(&crate::netaddr::Family::V4).expect("iptables");
    v4.insert("FLANNEL-FWD", Default::default());
    if let Some(masq) = v4.get_mut("FLANNEL-POSTRTG") {
        masq.jumps.push("-A POSTROUTING -j FLANNEL-POSTRTG".into());
    }
    let ops = reconcile_plan(&p, &live, opts(Phase::Complete)).expect("ok");
    let text: Vec<String> = ops.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        ["~ rules iptables nat FLANNEL-POSTRTG (6 rules, was 6)", "+ rules iptables filter FLANNEL-FWD (2 rules)"]
    );
    let Op::SetRules(masq) = &ops[0] else { panic!("{ops:?}") };
    assert!(masq.payload.contains("-D POSTROUTING -j FLANNEL-POSTRTG\n"), "{}", masq.payload);
    assert_eq!(ops[0].stage(), Stage::Rules);
}

#[test]
fn rules_the_plan_no_longer_has_are_removed_in_phase_2_not_1() {
    let (mut c, l) = compiled("vxlan-3node");
    let with = build(&c, &l, "node-1").expect("plan");
    c.traffic.rules = Some(crate::topology::RulesBackend::Nftables);
    let nft = build(&c, &l, "node-1").expect("plan");
    let live = converged(&with);
    let switch = lines(&nft, &live, Phase::Complete);
    assert_eq!(
        switch,
        [
            "+ rules nftables ip flannel-ipv4 (8 rules)",
            "- rules iptables nat FLANNEL-POSTRTG",
            "- rules iptables filter FLANNEL-FWD"
        ]
    );
    assert_eq!(lines(&nft, &live, Phase::Prepare), ["+ rules nftables ip flannel-ipv4 (8 rules)"]);
    // The listing nft prints of the table it loaded is what the plan wants: converged.
    let mut after = converged(&nft);
    let fr = nft.family_rules()[0];
    after.rules.nft.insert(crate::netaddr::Family::V4, crate::traffic::nft::table(&fr).expect("table"));
    assert_eq!(lines(&nft, &after, Phase::Complete), Vec::<String>::new());
}

#[test]
fn tx_checksum_offload_is_switched_in_place() {
    let (mut c, l) = compiled("vxlan-3node");
    c.backend.tx_checksum_offload = false;
    let p = build(&c, &l, "node-1").expect("plan");
    let mut live = converged(&p);
    live.tx_checksum.insert("flannel.1".into(), true);
    assert_eq!(lines(&p, &live, Phase::Complete), ["~ link flannel.1 (tx-checksum-ip-generic on→off)"]);
}

#[test]
fn a_replaced_device_gets_its_sysctls_again() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    if let Some(l) = live.links.get_mut("flannel.1") {
        l.vxlan = Some(LiveVxlan { port: Some(4789), ..l.vxlan.clone().unwrap_or_default() });
    }
    let l = lines(&p, &live, Phase::Complete);
    assert!(l.contains(&"~ sysctl net/ipv4/conf/flannel.1/rp_filter=2 (was )".to_string()), "{l:?}");
    assert!(!l.iter().any(|o| o.contains("net/ipv4/conf/eth0")), "the uplink's stays: {l:?}");
}

#[test]
fn a_route_of_another_scope_is_replaced() {
    let p = plan_of("udp-3node", "node-1");
    let mut live = converged(&p);
    for r in &mut live.routes {
        r.scope = 253;
    }
    assert_eq!(
        lines(&p, &live, Phase::Complete),
        ["~ route 10.244.0.0/16 dev flannel0 (was 10.244.0.0/16 dev flannel0 scope link)"]
    );
}

#[test]
fn a_udp_node_gets_a_tun_device_its_address_and_the_network_route() {
    let p = plan_of("udp-3node", "node-1");
    let mut live = converged(&p);
    live.links.remove("flannel0");
    live.addrs.remove(&20);
    live.routes.clear();
    assert_eq!(
        lines(&p, &live, Phase::Complete),
        [
            "+ link flannel0 type tun multi_queue persist mtu 1472",
            "~ sysctl net/ipv4/conf/flannel0/rp_filter=2 (was )",
            "~ sysctl net/ipv4/conf/flannel0/accept_local=1 (was )",
            "+ address 10.244.1.0/32 dev flannel0",
            "+ route 10.244.0.0/16 dev flannel0"
        ]
    );
}

#[test]
fn flanneld_flannel0_is_replaced_only_with_adopt_and_its_network_route_is_ours() {
    let p = plan_of("udp-3node", "node-1");
    let mut live = converged(&p);
    // flanneld's own: single queue, gone when flanneld exits, no marker.
    let mut theirs = tun_link("flannel0", 20, &p);
    theirs.tun = Some(LiveTun { multi_queue: Some(false), persist: Some(false), ..theirs.tun.clone().expect("tun") });
    theirs.alias = None;
    live.links.insert("flannel0".into(), theirs);
    let e = reconcile_plan(&p, &live, opts(Phase::Complete)).expect_err("refused");
    assert!(e.to_string().contains("single queue, not persistent"), "{e}");
    let ops = reconcile_plan(&p, &live, Options { phase: Phase::Complete, adopt: true }).expect("adopt");
    assert!(matches!(&ops[0], Op::DeleteLink { replacing: true, .. }), "{ops:?}");
    assert!(matches!(&ops[1], Op::CreateTun { .. }), "{ops:?}");
    // The /16 on an owned flannel0 is ours to remove; on a foreign device it is not.
    let mut stale = converged(&plan_of("vxlan-3node", "node-1"));
    stale.links.insert("flannel0".into(), tun_link("flannel0", 20, &p));
    let network = LiveRoute {
        dst: "10.244.0.0/16".parse().expect("net"),
        gateway: None,
        oif: Some(20),
        onlink: false,
        protocol: ROUTE_PROTOCOL_STATIC,
        scope: 0,
        metric: 0,
        nhid: None,
    };
    stale.routes.push(network.clone());
    let to_vxlan = lines(&plan_of("vxlan-3node", "node-1"), &stale, Phase::Complete);
    assert_eq!(to_vxlan, ["- route 10.244.0.0/16 dev flannel0", "- link flannel0 (not in the plan)"]);
    let mut foreign = converged(&plan_of("vxlan-3node", "node-1"));
    foreign.routes.push(LiveRoute { oif: Some(UPLINK), ..network });
    assert_eq!(lines(&plan_of("vxlan-3node", "node-1"), &foreign, Phase::Complete), Vec::<String>::new());
}

#[test]
fn vxlan_to_udp_adds_the_network_route_first_and_drops_peer_routes_in_phase_2() {
    let (from, to) = (plan_of("vxlan-3node", "node-1"), plan_of("udp-3node", "node-1"));
    let live = converged(&from);
    let p1 = lines(&to, &live, Phase::Prepare);
    assert!(p1.contains(&"+ route 10.244.0.0/16 dev flannel0".to_string()), "{p1:?}");
    assert!(p1.iter().all(|l| !l.starts_with('-')), "phase 1 removes nothing: {p1:?}");
    // After phase 1 everywhere: phase 2 removes the /24s, traffic falls to the /16.
    let mut after_1 = converged(&from);
    after_1.links.insert("flannel0".into(), tun_link("flannel0", 20, &to));
    after_1.addrs.insert(20, vec![to.tun_device().expect("tun").address]);
    after_1.routes.push(LiveRoute {
        dst: "10.244.0.0/16".parse().expect("net"),
        gateway: None,
        oif: Some(20),
        onlink: false,
        protocol: ROUTE_PROTOCOL_STATIC,
        scope: 0,
        metric: 0,
        nhid: None,
    });
    for s in &to.sysctls {
        after_1.sysctls.insert(s.key.clone(), s.value.clone());
    }
    let p2 = lines(&to, &after_1, Phase::Switch);
    assert_eq!(p2.iter().filter(|l| l.starts_with("- route 10.244.")).count(), 2, "{p2:?}");
    assert!(!p2.iter().any(|l| l.contains("- link flannel.1")), "flannel.1 stays for peers not switched: {p2:?}");
    assert!(lines(&to, &after_1, Phase::Complete).contains(&"- link flannel.1 (not in the plan)".to_string()));
}

#[test]
fn udp_to_vxlan_keeps_traffic_on_the_forwarder_until_phase_2() {
    let (from, to) = (plan_of("udp-3node", "node-1"), plan_of("vxlan-3node", "node-1"));
    let mut live = converged(&from);
    for s in &to.sysctls {
        live.sysctls.insert(s.key.clone(), s.value.clone());
    }
    let p1 = lines(&to, &live, Phase::Prepare);
    assert!(p1.iter().any(|l| l.starts_with("+ link flannel.1")), "{p1:?}");
    assert!(!p1.iter().any(|l| l.contains("route")), "the /16 still carries every peer: {p1:?}");
    let p2 = lines(&to, &live, Phase::Switch);
    assert_eq!(p2.iter().filter(|l| l.starts_with("+ route 10.244.") && l.contains("flannel.1")).count(), 2, "{p2:?}");
    assert!(!p2.iter().any(|l| l.contains("- link flannel0")), "flannel0 stays for peers not switched: {p2:?}");
}

#[test]
fn dual_stack_migrates_both_families_in_the_same_phases() {
    let (from, to) = (plan_of("vxlan-dualstack", "node-1"), plan_of("hostgw-dualstack", "node-1"));
    assert_eq!(from.vxlan_device(crate::netaddr::Family::V6).map(|d| d.mtu), Some(1430), "the kernel's IPv6 cap");
    let live = converged(&from);
    let p1 = lines(&to, &live, Phase::Prepare);
    assert_eq!(p1.iter().filter(|l| l.starts_with("~ route 10.244.")).count(), 2, "{p1:?}");
    assert_eq!(p1.iter().filter(|l| l.starts_with("~ route fd00:10:244:")).count(), 2, "{p1:?}");
    assert!(p1.iter().all(|l| !l.starts_with('-')), "phase 1 removes nothing: {p1:?}");
    let mut after_1 = converged(&to);
    for dev in ["flannel.1", "flannel-v6.1"] {
        after_1.links.insert(dev.into(), LiveLink { index: 40 + dev.len() as u32, ..live.links[dev].clone() });
    }
    let p2 = lines(&to, &after_1, Phase::Switch);
    assert!(
        p2.contains(&"- link flannel.1 (not in the plan)".into())
            && p2.contains(&"- link flannel-v6.1 (not in the plan)".into()),
        "{p2:?}"
    );
}

/// The vxlan example with flanneld's plain routes.
fn plain_plan() -> NodePlan {
    let p = plan_of("vxlan-3node", "node-1");
    let data = crate::plan::PlanData { route_style: crate::topology::RouteStyle::Plain, ..p.data().clone() };
    NodePlan::new(data).expect("a valid plan")
}

#[test]
fn stale_nexthops_go_after_the_routes_and_only_flannel_gens() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    let stale = |id| LiveNexthop {
        id,
        gateway: Some("10.244.9.0".parse().expect("ip")),
        oif: Some(7),
        onlink: true,
        protocol: ROUTE_PROTOCOL_STATIC,
        other: false,
    };
    live.nexthops.insert(0x4600_0009, stale(0x4600_0009));
    // Someone else's nexthop (an id outside flannel-gen's range) stays.
    live.nexthops.insert(9, stale(9));
    assert_eq!(lines(&p, &live, Phase::Complete), ["- nexthop id 1174405129 via 10.244.9.0 dev flannel.1 onlink"]);
    assert_eq!(lines(&p, &live, Phase::Prepare), Vec::<String>::new(), "phase 1 removes nothing");
    let ops = reconcile_plan(&p, &live, opts(Phase::Complete)).expect("ok");
    assert!(ops.iter().all(|o| o.stage() > Stage::PruneRoutes), "after every route moved off it");
}

#[test]
fn switching_route_style_replaces_each_route_in_place() {
    let (plain, nexthop) = (plain_plan(), plan_of("vxlan-3node", "node-1"));
    assert_eq!(
        lines(&nexthop, &converged(&plain), Phase::Complete),
        [
            "~ route 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink nhid 1174405122 (was 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink proto boot)",
            "~ route 10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink nhid 1174405123 (was 10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink proto boot)",
        ]
    );
    // Back to plain: the routes first, then their nexthops.
    let back = lines(&plain, &converged(&nexthop), Phase::Complete);
    assert_eq!(back.len(), 4, "{back:?}");
    assert!(
        back[0].starts_with("~ route 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink proto boot (was"),
        "{back:?}"
    );
    assert_eq!(back[2], "- nexthop id 1174405122 via 10.244.2.0 dev flannel.1 onlink");
}

#[test]
fn a_nexthop_that_differs_from_the_plan_is_replaced() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    if let Some(n) = live.nexthops.get_mut(&0x4600_0002) {
        n.onlink = false;
    }
    assert_eq!(
        lines(&p, &live, Phase::Complete),
        [
            "~ route 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink nhid 1174405122 (was 10.244.2.0/24 via 10.244.2.0 dev flannel.1 nhid 1174405122)"
        ]
    );
    let mut grouped = converged(&p);
    if let Some(n) = grouped.nexthops.get_mut(&0x4600_0003) {
        n.other = true;
    }
    assert_eq!(lines(&p, &grouped, Phase::Complete).len(), 1);
}

/// A peer's neighbour with a wrong MAC is replaced, not replaced and then
/// deleted by address (which left the node without it).
#[test]
fn a_neighbour_with_a_wrong_mac_is_replaced_only() {
    let p = plan_of("vxlan-3node", "node-1");
    let mut live = converged(&p);
    let n = live.neighs.iter_mut().find(|n| n.ip.to_string() == "10.244.3.0").expect("neighbour");
    n.lladdr = "02:00:00:00:00:99".parse().ok();
    assert_eq!(
        lines(&p, &live, Phase::Complete),
        ["+ neigh 10.244.3.0 lladdr 1a:cc:10:df:41:7d dev flannel.1 permanent"]
    );
}
