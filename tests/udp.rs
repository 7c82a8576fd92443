//! The udp backend end to end: namespace nodes, real CNI pods, `apply`
//! making flannel0 and `flannel-gen udp` forwarding between the nodes in
//! flanneld's wire format (pkg/backend/udp/proxy_amd64.c). Needs root;
//! skips loudly otherwise.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::forwarder::Forwarder;
use common::netns::{http_get, metric, root_or_skip};

const UDP: &str = "examples/udp-3node.yaml";

/// The health port every forwarder of [`udp_cluster`] serves (each in its namespace).
const HEALTH: &[&str] = &["--healthz-port", "9413", "--healthz-ip", "127.0.0.1"];

/// A udp cluster with a forwarder per node and one pod per node.
fn udp_cluster(dir: &std::path::Path) -> (Cluster, Vec<Forwarder>) {
    let mut c = Cluster::new(UDP);
    c.apply_all(UDP);
    let fw = c.nodes.iter().map(|n| Forwarder::start(UDP, &n.name, &n.ns.name, dir, HEALTH)).collect();
    c.attach_pods(1);
    (c, fw)
}

#[test]
fn pods_ping_across_in_udp_mode() {
    if !root_or_skip("pods_ping_across_in_udp_mode") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (c, fw) = udp_cluster(dir.path());
    assert_eq!(c.ping_across(), Vec::<String>::new());
    let counts = fw[0].counts();
    assert!(counts.tx_packets >= 2 && counts.rx_packets >= 2, "{counts:?}");
    // #28: flanneld's health endpoints, and the counters as Prometheus metrics.
    let ns = &c.node("node-1").ns;
    assert_eq!(http_get(ns, 9413, "/healthz"), (200, "flannel-gen udp is running".to_string()));
    assert_eq!(http_get(ns, 9413, "/readyz").0, 200);
    let (status, m) = http_get(ns, 9413, "/metrics");
    assert_eq!(status, 200);
    let sent = metric(&m, "flannel_gen_udp_tun_to_udp_packets_total").expect("tx metric");
    assert!(sent >= counts.tx_packets as f64, "{m}");
    assert_eq!(metric(&m, "flannel_gen_udp_dropped_not_from_a_peer_total"), Some(0.0), "{m}");
    for f in fw {
        let (status, log) = f.stop();
        assert_eq!(status, Some(0), "{log}");
        assert!(log.contains("stopped; tun->udp"), "{log}");
    }
}

fn pod_on<'a>(c: &'a Cluster, node: &str) -> &'a common::cluster::Pod {
    c.pods.iter().find(|p| p.node == node).expect("pod")
}

/// flanneld's send_net_unreachable: a packet for a subnet no node has gets
/// ICMP net unreachable from the TUN address, back to the sending pod —
/// but never for an ICMP packet (RFC 792), so a ping just goes unanswered.
/// (The error's source is flannel0's own address: the plan sets
/// accept_local on flannel0, or the kernel drops it as a martian.)
#[test]
fn a_packet_for_no_node_gets_icmp_net_unreachable() {
    if !root_or_skip("a_packet_for_no_node_gets_icmp_net_unreachable") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (c, fw) = udp_cluster(dir.path());
    let pod = pod_on(&c, "node-1");
    let err = common::netns::in_netns(&pod.ns, || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").expect("socket");
        // Net unreachable is a soft error: a UDP socket sees it with IP_RECVERR.
        let on: libc::c_int = 1;
        // SAFETY: `on` outlives the call and its size is passed.
        let r = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::SOL_IP,
                libc::IP_RECVERR,
                (&on as *const libc::c_int).cast(),
                4,
            )
        };
        assert_eq!(r, 0);
        s.connect("10.244.99.1:9").expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        s.send(b"anyone?").expect("send");
        s.recv(&mut [0u8; 64]).expect_err("no answer but the ICMP error")
    });
    assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH), "{err}");
    let out = pod.ns.exec("ping", &["-n", "-c", "1", "-W", "1", "10.244.99.1"]).output().expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Unreachable"), "no ICMP error about ICMP: {text}");
    assert_eq!(fw[0].counts().no_route, 2);
}

/// Datagrams that are not IPv4 packets are dropped and counted; the
/// forwarder carries on.
#[test]
fn malformed_datagrams_are_dropped_and_counted() {
    if !root_or_skip("malformed_datagrams_are_dropped_and_counted") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (c, fw) = udp_cluster(dir.path());
    let sent = common::netns::in_netns(&c.node("node-2").ns, || {
        let s = std::net::UdpSocket::bind("192.168.31.62:0").expect("socket");
        let garbage: [&[u8]; 3] = [b"hello", &[0x60; 48], &[0x45, 0, 0xff, 0xff, 0, 0, 0, 0, 64, 1, 0, 0]];
        for g in garbage {
            s.send_to(g, "192.168.31.61:8285").expect("send");
        }
        garbage.len() as u64
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fw[0].counts().not_ipv4, sent);
    assert_eq!(c.ping_across(), Vec::<String>::new(), "still forwarding");
}

/// flanneld's udp backend takes a datagram from anyone and routes its inner
/// packet on. flannel-gen's forwarder takes only the plan's peers, each only
/// for packets from its own subnet, and counts the rest; `--accept-any-source`
/// is flanneld's behaviour back.
#[test]
fn only_peers_may_send_and_only_their_own_subnets_packets() {
    if !root_or_skip("only_peers_may_send_and_only_their_own_subnets_packets") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = Cluster::new(UDP);
    c.apply_all(UDP);
    let stranger = c.external_host("192.168.31.200/24");
    let strict = Forwarder::start(UDP, "node-1", &c.node("node-1").ns.name, dir.path(), &[]);
    c.attach_pods(1);
    let target: std::net::Ipv4Addr = pod_on(&c, "node-1").ip.parse().expect("pod ip");
    let send = |ns: &common::netns::Netns, bind: &str, from: std::net::Ipv4Addr| {
        common::netns::in_netns(ns, || {
            let s = std::net::UdpSocket::bind(bind).expect("socket");
            s.send_to(&echo_request(from, target, 64), "192.168.31.61:8285").expect("send");
        })
    };
    let before = strict.counts();
    // A host that is no node, claiming to be a pod of node-3.
    send(&c.hosts[stranger], "192.168.31.200:0", std::net::Ipv4Addr::new(10, 244, 3, 9));
    // node-3 itself, claiming a source in node-2's subnet.
    send(&c.node("node-3").ns, "192.168.31.63:0", std::net::Ipv4Addr::new(10, 244, 2, 9));
    std::thread::sleep(Duration::from_millis(200));
    let after = strict.counts();
    assert_eq!(after.foreign - before.foreign, 2, "{after:?}");
    assert_eq!(after.rx_packets, before.rx_packets, "nothing forged reached the TUN device");
    drop(strict);

    let open = Forwarder::start(UDP, "node-1", &c.node("node-1").ns.name, dir.path(), &["--accept-any-source"]);
    let before = open.counts();
    send(&c.hosts[stranger], "192.168.31.200:0", std::net::Ipv4Addr::new(10, 244, 3, 9));
    std::thread::sleep(Duration::from_millis(200));
    let after = open.counts();
    assert_eq!((after.rx_packets - before.rx_packets, after.foreign), (1, 0), "as flanneld: {after:?}");
}

/// A node running flanneld's udp backend (played by the test on node-3's
/// address and port) sends an ICMP echo request the way flanneld does — the
/// datagram's payload is the bare IPv4 packet — and gets the pod's reply in
/// the same format, its TTL decremented by node-1's kernel and forwarder.
#[test]
fn the_wire_format_is_flanneld_udp() {
    if !root_or_skip("the_wire_format_is_flanneld_udp") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = Cluster::new(UDP);
    c.apply_all(UDP);
    let fw: Vec<Forwarder> =
        ["node-1", "node-2"].iter().map(|n| Forwarder::start(UDP, n, &c.node(n).ns.name, dir.path(), &[])).collect();
    c.attach_pods(1);
    let target: std::net::Ipv4Addr = pod_on(&c, "node-1").ip.parse().expect("pod ip");
    let from = std::net::Ipv4Addr::new(10, 244, 3, 77);
    let reply = common::netns::in_netns(&c.node("node-3").ns, || {
        let s = std::net::UdpSocket::bind("192.168.31.63:8285").expect("flanneld's port");
        s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        s.send_to(&echo_request(from, target, 64), "192.168.31.61:8285").expect("send");
        let mut buf = [0u8; 2048];
        let (n, peer) = s.recv_from(&mut buf).expect("a reply datagram");
        assert_eq!(peer.to_string(), "192.168.31.61:8285", "from node-1's forwarder socket");
        buf[..n].to_vec()
    });
    assert_eq!(reply[0], 0x45, "a bare IPv4 packet, no header of ours");
    assert_eq!(usize::from(u16::from_be_bytes([reply[2], reply[3]])), reply.len(), "nothing after it");
    assert_eq!(reply[8], 62, "TTL 64, minus node-1's kernel forwarding and its forwarder");
    assert_eq!(reply[9], 1, "ICMP");
    assert_eq!(&reply[12..16], &target.octets());
    assert_eq!(&reply[16..20], &from.octets());
    assert_eq!(checksum(&reply[..20]), 0, "IP header checksum");
    assert_eq!((reply[20], &reply[24..28]), (0, &[0x42, 0x42, 0, 1][..]), "echo reply, same id and sequence");
    assert_eq!(&reply[28..], b"flannel-gen wire test");
    drop(fw);
}

/// The ones' complement checksum of `b` (0 when `b` carries a valid one).
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 ICMP echo request, as a pod on a flanneld node would send it.
fn echo_request(src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr, ttl: u8) -> Vec<u8> {
    let payload = b"flannel-gen wire test";
    let mut icmp = vec![8, 0, 0, 0, 0x42, 0x42, 0, 1];
    icmp.extend_from_slice(payload);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let len = (20 + icmp.len()) as u16;
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, ttl, 1, 0, 0];
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&icmp);
    p
}

/// A 2-node variant of the udp example (node-3 left out), with its lock.
fn two_nodes(dir: &std::path::Path) -> String {
    let y = std::fs::read_to_string(common::root().join(UDP)).expect("example");
    let cut = y.find("  - name: node-3").expect("node-3");
    let t = dir.join("udp2.yaml");
    std::fs::write(&t, &y[..cut]).expect("write");
    let o = common::run(&["lock", t.to_str().expect("utf8")]);
    assert_eq!(common::code(&o), 0);
    t.to_string_lossy().into_owned()
}

/// SIGHUP re-reads the plan: node-1 and node-2 start without node-3, learn
/// of it on reload, and pods between them keep pinging throughout.
#[test]
fn sighup_adds_a_node_without_losing_pings() {
    if !root_or_skip("sighup_adds_a_node_without_losing_pings") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let topo = two_nodes(dir.path());
    let mut c = Cluster::new(UDP);
    c.apply_all(UDP);
    let fw: Vec<Forwarder> = c
        .nodes
        .iter()
        .map(|n| {
            let t = if n.name == "node-3" { UDP } else { topo.as_str() };
            Forwarder::start(t, &n.name, &n.ns.name, dir.path(), &[])
        })
        .collect();
    c.attach_pods(1);
    let (a, b, third) = (pod_on(&c, "node-1"), pod_on(&c, "node-2"), pod_on(&c, "node-3"));
    let reach = |from: &common::cluster::Pod, to: &str| {
        from.ns.exec("ping", &["-n", "-c", "1", "-W", "1", to]).output().expect("ping").status.success()
    };
    assert!(!reach(a, &third.ip), "node-1 does not know node-3 yet");
    let pinger =
        a.ns.exec("ping", &["-n", "-q", "-i", "0.01", "-c", "300", "-W", "1", &b.ip])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("ping");
    std::thread::sleep(Duration::from_millis(500));
    std::fs::copy(common::root().join(UDP), &topo).expect("node-3 joins");
    std::fs::copy(common::root().join("examples/udp-3node.lock"), dir.path().join("udp2.lock")).expect("lock");
    fw[0].reload();
    fw[1].reload();
    assert!(fw[0].log_text().contains("reloaded the plan: 2 peers (was 1)"), "{}", fw[0].log_text());
    let out = pinger.wait_with_output().expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("300 packets transmitted, 300 received"), "{text}");
    assert!(reach(a, &third.ip) && reach(third, &a.ip), "node-1 and node-3 reach each other after the reload");
}

/// What the forwarder refuses, before it forwards anything.
#[test]
fn missing_device_taken_port_and_wrong_plans_are_refused() {
    if !root_or_skip("missing_device_taken_port_and_wrong_plans_are_refused") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let c = Cluster::new(UDP);
    let ns = &c.node("node-1").ns.name;
    let run = |topo: &str| common::run(&["udp", topo, "--node", "node-1", "--netns", ns]);
    let o = run(UDP);
    assert_eq!(common::code(&o), 3, "{}", common::stderr(&o));
    assert!(
        common::stderr(&o).contains("flannel0 does not exist in this network namespace; run `flannel-gen apply` first")
    );
    let o = run("examples/vxlan-3node.yaml");
    assert_eq!(common::code(&o), 2, "{}", common::stderr(&o));
    assert!(common::stderr(&o).contains("uses the vxlan backend; `flannel-gen udp` runs only for udp"));
    c.apply(UDP, "node-1", &[]);
    // flanneld (played by a plain socket) still holds the port.
    let taken = common::netns::in_netns(&c.node("node-1").ns, || {
        let holder = std::net::UdpSocket::bind("192.168.31.61:8285").expect("bind");
        let o = run(UDP);
        drop(holder);
        o
    });
    assert_eq!(common::code(&taken), 3, "{}", common::stderr(&taken));
    assert!(
        common::stderr(&taken).contains("cannot listen on UDP 192.168.31.61:8285: Address already in use"),
        "{}",
        common::stderr(&taken)
    );
    let first = Forwarder::start(UDP, "node-1", ns, dir.path(), &[]);
    let second = run(UDP);
    assert_eq!(common::code(&second), 3, "{}", common::stderr(&second));
    assert!(common::stderr(&second).contains("another flannel-gen udp holds"), "{}", common::stderr(&second));
    let (status, _) = first.stop();
    assert_eq!(status, Some(0));
}

/// vxlan → udp → vxlan, node by node in three phases each, while every pod
/// pings a pod on every other node at 100 per second: no ping lost. The
/// forwarders start once every node has flannel0 (after phase 1) and, after
/// the way back, find their device gone and wait.
#[test]
fn vxlan_to_udp_and_back_loses_no_packets() {
    if !root_or_skip("vxlan_to_udp_and_back_loses_no_packets") {
        return;
    }
    const VXLAN: &str = "examples/vxlan-3node.yaml";
    const COUNT: usize = 1500;
    let step = Duration::from_millis(150);
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = Cluster::new(VXLAN);
    c.apply_all(VXLAN);
    c.attach_pods(1);
    assert!(c.ping_across().is_empty(), "the vxlan cluster works first");
    let pingers = common::ping::start_pingers(&c, COUNT);
    std::thread::sleep(Duration::from_millis(500));
    let phases = |topo: &str, phases: &[&str]| {
        for phase in phases {
            for n in &c.nodes {
                c.apply(topo, &n.name, &["--phase", phase]);
                std::thread::sleep(step);
            }
        }
    };
    phases(UDP, &["1"]);
    let fw: Vec<Forwarder> =
        c.nodes.iter().map(|n| Forwarder::start(UDP, &n.name, &n.ns.name, dir.path(), &[])).collect();
    phases(UDP, &["2", "3"]);
    for n in &c.nodes {
        let links = n.ns.ip(&["-o", "link", "show"]);
        assert!(links.contains("flannel0") && !links.contains("flannel.1"), "{}: {links}", n.name);
    }
    assert!(fw.iter().all(|f| f.counts().rx_packets > 0), "traffic went over udp");
    phases(VXLAN, &["1", "2", "3"]);
    for n in &c.nodes {
        let links = n.ns.ip(&["-o", "link", "show"]);
        assert!(links.contains("flannel.1") && !links.contains("flannel0"), "{}: {links}", n.name);
        let dry = common::run(&["apply", VXLAN, "--node", &n.name, "--netns", &n.ns.name, "--dry-run"]);
        assert_eq!(common::code(&dry), 0, "{}: converged: {}", n.name, common::stdout(&dry));
    }
    for f in &fw {
        f.wait_for("flannel0 is gone", 1);
    }
    let mut pingers = pingers;
    for (pair, child) in &mut pingers {
        assert!(child.try_wait().expect("try_wait").is_none(), "{pair}: ping ended before the migration did");
    }
    let (sent, lost, report) = common::ping::ping_totals(pingers);
    eprintln!("udp migration pings: {sent} sent, {lost} lost\n{}", report.join("\n"));
    assert_eq!(sent, COUNT * c.pods.len() * (c.nodes.len() - 1));
    assert_eq!(lost, 0, "packets lost during the migration:\n{}", report.join("\n"));
}

#[test]
fn diff_onto_and_off_udp_names_the_forwarder_and_the_three_phases() {
    let o = common::run(&["diff", "examples/vxlan-3node.yaml", UDP, "--color", "never", "--node", "node-1"]);
    assert_eq!(common::code(&o), 1);
    let text = common::stdout(&o);
    for want in [
        "backend vxlan → udp",
        "+ device flannel0 (TUN, mtu 1472) and the udp forwarder (flannel-gen-udp.service)",
        "~ 2 routes move flannel.1 → flannel0: 10.244.2.0/24, 10.244.3.0/24",
        "start `flannel-gen udp` (flannel-gen-udp.service) on every node, `--phase 2`",
        "+++ b/node-1/etc/systemd/system/flannel-gen-udp.service",
        "+route replace 10.244.0.0/16 dev flannel0 scope global proto static",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    let back = common::stdout(&common::run(&["diff", UDP, "examples/vxlan-3node.yaml", "--color", "never", "--stat"]));
    assert!(
        back.contains("- device flannel0 (TUN) and the udp forwarder")
            && back.contains("off udp: roll out in three phases"),
        "{back}"
    );
}
