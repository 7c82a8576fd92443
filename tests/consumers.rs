//! Real consumers of the rendered files build the same kernel state:
//! systemd-networkd from the .netdev/.network/drop-in files, iproute2 from the
//! ip -batch scripts (run twice: idempotent), and `flannel-gen apply` from
//! plan.json (re-applied: 0 changes). Needs root; skips loudly.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::netns::{Netns, flannel_state, must, plan_devices, root_or_skip};
use common::{code, run, stderr};

fn plan_of(overlay: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(overlay.join("etc/flannel-gen/plan.json")).expect("plan.json"))
        .expect("json")
}

/// What boot does with the rest of the overlay: systemd-sysctl applies the
/// sysctl.d file, flannel-gen-rules.service loads the rules file — by the
/// unit's own ExecStart lines (with the overlay's paths, stdin empty as under
/// systemd), so a command line that loads nothing fails here.
fn run_boot_files(ns: &Netns, overlay: &Path) {
    let conf = overlay.join("etc/sysctl.d/50-flannel-gen.conf");
    must(&mut ns.exec("/lib/systemd/systemd-sysctl", &[conf.to_str().expect("utf8")]));
    let unit = fs::read_to_string(overlay.join("etc/systemd/system/flannel-gen-rules.service")).expect("rules unit");
    let etc = overlay.join("etc/flannel-gen");
    for line in unit.lines().filter_map(|l| l.strip_prefix("ExecStart=")) {
        let line = line.replace("/etc/flannel-gen", etc.to_str().expect("utf8"));
        // systemd splits the line with shell-like quoting; sh does the same for these lines.
        must(ns.exec("sh", &["-c", &format!("exec {line}")]).stdin(std::process::Stdio::null()));
    }
}

/// Both underlay addresses of a node (one in a single-stack plan).
fn underlay(plan: &serde_json::Value) -> Vec<String> {
    ["ipv4", "ipv6"].iter().filter_map(|k| plan["uplink"][k].as_str().map(str::to_string)).collect()
}

/// The plan's connected interfaces: (name, address with prefix).
fn connected(plan: &serde_json::Value) -> Vec<(String, String)> {
    let list = plan["connected"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|c| (c["interface"].as_str().expect("interface").into(), c["ip"].as_str().expect("ip").into()))
        .collect()
}

/// A node namespace with every underlay address of the plan, and each
/// connected interface (a veth whose peer stays inside) with its address.
fn node_with(tag: &str, plan: &serde_json::Value) -> Netns {
    let addrs = underlay(plan);
    let ns = Netns::node(tag, Some(&addrs[0]));
    for a in &addrs[1..] {
        ns.ip(&["addr", "add", a, "dev", "eth0", "nodad"]);
    }
    for (i, (dev, ip)) in connected(plan).iter().enumerate() {
        let peer = format!("cpeer{i}");
        ns.ip(&["link", "add", dev, "type", "veth", "peer", "name", &peer]);
        ns.ip(&["link", "set", &peer, "up"]);
        ns.ip(&["addr", "add", ip, "dev", dev, "nodad"]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    ns
}

/// Applies the rendered ip/bridge batch scripts.
fn run_batches(ns: &Netns, overlay: &Path, again: bool) {
    let dir = overlay.join("etc/flannel-gen");
    let f = |n: &str| dir.join(n).to_string_lossy().into_owned();
    if dir.join("link.batch").exists() {
        let out = Command::new("ip").args(["-n", &ns.name, "-force", "-batch", &f("link.batch")]).output().expect("ip");
        let err = String::from_utf8_lossy(&out.stderr);
        if again {
            // The one expected failure on a re-run: the device exists already
            // (`link add` says so; `tuntap add` finds it busy).
            let exists = |l: &str| l.contains("File exists") || l.contains("TUNSETIFF): Device or resource busy");
            assert!(err.lines().all(|l| exists(l) || l.starts_with("Command failed")), "{err}");
        } else {
            assert!(out.status.success(), "link.batch: {err}");
        }
    }
    if dir.join("neigh.batch").exists() {
        must(Command::new("ip").args(["-n", &ns.name, "-batch", &f("neigh.batch")]));
        must(Command::new("bridge").args(["-n", &ns.name, "-batch", &f("fdb.batch")]));
    }
    must(Command::new("ip").args(["-n", &ns.name, "-batch", &f("route.batch")]));
}

fn wait_for(ns: &Netns, devs: &[&str], want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = flannel_state(ns, devs);
        if got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn parity(example: &str) {
    parity_of(&format!("examples/{example}.yaml"), example);
}

fn parity_of(topology: &str, example: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("o");
    let o = run(&["render", topology, "--out", out.to_str().expect("utf8"), "--locked"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for entry in fs::read_dir(&out).expect("out") {
        let overlay = entry.expect("entry").path();
        let plan = plan_of(&overlay);
        let node = plan["node"].as_str().expect("node").to_string();
        let addrs = underlay(&plan);
        let devs = plan_devices(&plan);
        let dev: Vec<&str> = devs.iter().map(String::as_str).collect();

        // iproute2 from the batch scripts.
        let by_ip = node_with("ip", &plan);
        run_batches(&by_ip, &overlay, false);
        let ip_state = flannel_state(&by_ip, &dev);
        run_batches(&by_ip, &overlay, true);
        assert_eq!(flannel_state(&by_ip, &dev), ip_state, "{example}/{node}: second ip -batch run changed state");

        // flannel-gen apply from the plan.json.
        let by_apply = node_with("ap", &plan);
        let plan_file = overlay.join("etc/flannel-gen/plan.json");
        let o = run(&["apply", "--plan", plan_file.to_str().expect("utf8"), "--netns", &by_apply.name]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(
            flannel_state(&by_apply, &dev),
            ip_state,
            "{example}/{node}: apply state (left) differs from ip -batch state (right)"
        );
        let o = run(&["apply", "--plan", plan_file.to_str().expect("utf8"), "--netns", &by_apply.name]);
        assert_eq!(common::stdout(&o), "0 changes\n", "{example}/{node}: re-apply");

        // systemd-networkd from the .netdev/.network files.
        // networkd configures eth0 itself, from the eth0.network written below.
        let by_nd = Netns::node("nd", None);
        let net = by_nd.etc().join("systemd/network");
        fs::create_dir_all(&net).expect("mkdir");
        let rendered = overlay.join("etc/systemd/network");
        must(Command::new("cp").arg("-r").arg(format!("{}/.", rendered.display())).arg(&net));
        let addresses: String = addrs.iter().map(|a| format!("Address={a}\n")).collect();
        fs::write(
            net.join("eth0.network"),
            format!(
                "[Match]\nName=eth0\n\n[Network]\n{addresses}LinkLocalAddressing=no\nIPv6AcceptRA=no\nConfigureWithoutCarrier=yes\n"
            ),
        )
        .expect("eth0.network");
        // Each connected interface: networkd configures it too (its own
        // network file, which the rendered drop-in adds the routes to).
        for (i, (d, ip)) in connected(&plan).iter().enumerate() {
            let peer = format!("cpeer{i}");
            by_nd.ip(&["link", "add", d, "type", "veth", "peer", "name", &peer]);
            by_nd.ip(&["link", "set", &peer, "up"]);
            let file =
                format!("[Match]\nName={d}\n\n[Network]\nAddress={ip}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n");
            fs::write(net.join(format!("{d}.network")), file).expect("network file");
        }
        let networkd = by_nd.networkd();
        let nd_state = wait_for(&by_nd, &dev, &ip_state);
        let log = networkd.stop();
        assert_eq!(
            nd_state, ip_state,
            "{example}/{node}: networkd state (left) differs from ip -batch state (right)\nnetworkd log:\n{log}"
        );

        // apply sees the batch scripts' devices as its own (they carry the
        // marker), and adopts networkd's, which match the plan but cannot;
        // the sysctls and the iptables rules loaded from the rendered files
        // are exactly what apply keeps.
        run_boot_files(&by_ip, &overlay);
        run_boot_files(&by_nd, &overlay);
        let p = plan_file.to_str().expect("utf8");
        // The one setting no boot file carries: the uplink's accept_ra 1 -> 2
        // under IPv6 forwarding, which a file cannot make conditional (on a
        // networkd uplink, as below, networkd takes advertisements itself).
        let ra = if plan["ipv6"].is_object() {
            "~ sysctl net/ipv6/conf/eth0/accept_ra=2 (was 1)\n1 change\n"
        } else {
            "0 changes\n"
        };
        assert_eq!(
            common::stdout(&run(&["apply", "--plan", p, "--netns", &by_ip.name])),
            ra,
            "{node}: apply after ip -batch"
        );
        let adopted = run(&["apply", "--plan", p, "--netns", &by_nd.name]);
        let want: String = dev
            .iter()
            .map(|d| {
                format!(
                    "~ link {d} (adopted, alias \"flannel-gen:{}\")\n",
                    plan["cluster"].as_str().unwrap_or_default()
                )
            })
            .collect();
        let n = dev.len();
        assert_eq!(
            common::stdout(&adopted),
            format!("{want}{n} change{}\n", if n == 1 { "" } else { "s" }),
            "{node}: apply after networkd"
        );

        // And the state is what the plan says, not just the same twice.
        assert_state_is_the_plan(&node, &plan, &dev, &ip_state);
    }
}

/// Every peer's route, and every vxlan peer's FDB entry and neighbour, and the
/// devices with their MACs, are in `state`; for udp, the TUN device (multi-queue,
/// persistent, no packet info) and its one network route.
fn assert_state_is_the_plan(node: &str, plan: &serde_json::Value, devs: &[&str], state: &str) {
    if plan["backend"]["type"] == "udp" {
        let net = plan["ipv4"]["network"].as_str().expect("network");
        assert!(
            state.contains(&format!("\"route\":\"{net}\"")) && state.contains("\"dev\":\"flannel0\""),
            "{node}:\n{state}"
        );
        let tun = "\"multi_queue\":true,\"persist\":true,\"pi\":false";
        assert!(state.contains(tun) && state.contains("\"tun\":\"tun\""), "{node}: TUN device:\n{state}");
        return;
    }
    for p in plan["peers"].as_array().expect("peers") {
        let dst = p["subnet"].as_str().expect("subnet");
        assert!(state.contains(&format!("\"route\":\"{dst}\"")), "{node}: route {dst} missing:\n{state}");
        if let Some(mac) = p["vtepMAC"].as_str() {
            let ip = p["publicIP"].as_str().expect("ip");
            let fdb = format!("{{\"dst\":\"{ip}\",\"fdb\":\"{mac}\",\"flags\":[\"self\"],\"state\":\"permanent\"}}");
            assert!(state.contains(&fdb), "{node}: fdb {mac}:\n{state}");
            let gw = dst.split('/').next().expect("net");
            let neigh = format!("\"lladdr\":\"{mac}\",\"neigh\":\"{gw}\",\"state\":[\"PERMANENT\"]");
            assert!(state.contains(&neigh), "{node}: neigh:\n{state}");
        }
    }
    for dev in devs {
        let family = if dev.starts_with("flannel-v6.") { "ipv6" } else { "ipv4" };
        let mac = plan[family]["vtepMAC"].as_str().expect("mac");
        assert!(state.contains(&format!("\"link\":\"{dev}\"")) && state.contains(mac), "{node}: device:\n{state}");
    }
}

#[test]
fn networkd_ip_batch_and_apply_agree_vxlan() {
    if root_or_skip("networkd_ip_batch_and_apply_agree_vxlan") {
        parity("vxlan-3node");
    }
}

#[test]
fn networkd_ip_batch_and_apply_agree_host_gw() {
    if root_or_skip("networkd_ip_batch_and_apply_agree_host_gw") {
        parity("hostgw-3node");
    }
}

#[test]
fn networkd_ip_batch_and_apply_agree_direct_routing() {
    if root_or_skip("networkd_ip_batch_and_apply_agree_direct_routing") {
        parity("vxlan-directrouting");
    }
}

#[test]
fn networkd_ip_batch_and_apply_agree_udp() {
    if root_or_skip("networkd_ip_batch_and_apply_agree_udp") {
        parity("udp-3node");
    }
}

#[test]
fn networkd_ip_batch_and_apply_agree_dual_stack_vxlan() {
    if root_or_skip("networkd_ip_batch_and_apply_agree_dual_stack_vxlan") {
        parity("vxlan-dualstack");
    }
}

#[test]
fn networkd_ip_batch_and_apply_agree_dual_stack_host_gw() {
    if root_or_skip("networkd_ip_batch_and_apply_agree_dual_stack_host_gw") {
        parity("hostgw-dualstack");
    }
}

#[test]
fn networkd_ip_batch_and_apply_agree_ipv6_only() {
    if root_or_skip("networkd_ip_batch_and_apply_agree_ipv6_only") {
        parity("vxlan-ipv6only");
    }
}

/// `routeStyle: plain` (flanneld's routes, `proto boot`): networkd's
/// `Protocol=boot`, the batch script's `proto boot` and apply agree, for
/// vxlan routes and the direct (host-gw) ones.
#[test]
fn networkd_ip_batch_and_apply_agree_plain_routes() {
    if !root_or_skip("networkd_ip_batch_and_apply_agree_plain_routes") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let y = fs::read_to_string(common::root().join("examples/vxlan-directrouting.yaml")).expect("example").replacen(
        "backend:\n",
        "backend:\n  routeStyle: plain\n",
        1,
    );
    let topo = dir.path().join("plain.yaml");
    fs::write(&topo, y).expect("write");
    fs::copy(common::root().join("examples/vxlan-directrouting.lock"), dir.path().join("plain.lock")).expect("lock");
    parity_of(topo.to_str().expect("utf8"), "vxlan-directrouting plain");
}

/// #28: a node's `connected` interface (directRouting through eth1): the
/// drop-in for eth1's network file, the batch script and apply make the
/// same route `via <peer> dev eth1`.
#[test]
fn networkd_ip_batch_and_apply_agree_connected_interface() {
    if !root_or_skip("networkd_ip_batch_and_apply_agree_connected_interface") {
        return;
    }
    parity_of(common::root().join("tests/fixtures/connected.yaml").to_str().expect("utf8"), "connected");
}
