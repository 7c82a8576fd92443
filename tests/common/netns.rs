//! Network namespaces as test "nodes": RAII guards that delete what they create,
//! also when a test panics.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// True when namespace tests can run. Otherwise prints a loud SKIPPED line;
/// with FLANNEL_GEN_E2E=require (CI) a missing root is a failure instead.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        if std::env::var("FLANNEL_GEN_E2E").as_deref() == Ok("require") {
            panic!("{test}: needs root (FLANNEL_GEN_E2E=require)");
        }
        eprintln!("SKIPPED {test}: needs root for network namespaces");
    }
    root
}

/// Runs a command, panicking with its output when it fails.
pub fn must(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("fgt{}-{}-{tag}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        must(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// A "node": eth0 is a veth whose peer stays inside (so it has carrier),
    /// carrying `ip` (with prefix) if given, and up.
    pub fn node(tag: &str, ip: Option<&str>) -> Netns {
        let ns = Netns::new(tag);
        ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "peer0"]);
        ns.ip(&["link", "set", "peer0", "up"]);
        if let Some(ip) = ip {
            ns.ip(&["addr", "add", ip, "dev", "eth0"]);
            ns.ip(&["link", "set", "eth0", "up"]);
        }
        ns
    }

    /// `ip -n NS ARGS...`
    pub fn ip(&self, args: &[&str]) -> String {
        let out = must(Command::new("ip").arg("-n").arg(&self.name).args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ip netns exec NS PROGRAM ARGS...`
    pub fn exec(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]).args(args);
        c
    }

    /// The directory `ip netns exec` bind-mounts over /etc.
    pub fn etc(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.name)
    }

    /// Starts the real systemd-networkd inside the namespace, in a mount namespace of its own.
    pub fn networkd(&self) -> Networkd {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, "unshare", "-m", "sh", "-c"])
            // /dev/net/tun as udev leaves it on a host (0666; it is 0600 in
            // this container), so networkd's unprivileged user can make TUN devices.
            .arg("mount -o remount,bind,ro /sys && mount -t tmpfs tmpfs /run/systemd/netif && chown systemd-network:systemd-network /run/systemd/netif && mount -t tmpfs tmpfs /dev/net && mknod -m 0666 /dev/net/tun c 10 200 && exec /lib/systemd/systemd-networkd")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start systemd-networkd");
        Networkd { child }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Anything still running inside (networkd, ping) goes first.
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &self.name]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                // SAFETY: kill has no memory effects; a stale pid at worst gets ESRCH.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        let _ = std::fs::remove_dir_all(self.etc());
        // What flannel-gen keeps in /run for this namespace: locks, the route
        // record, a snapshot.
        for file in ["apply-netns-{}.lock", "udp-netns-{}.lock", "routes-netns-{}.json", "snapshot-netns-{}.json"] {
            let _ = std::fs::remove_file(format!("/run/flannel-gen/{}", file.replace("{}", &self.name)));
        }
    }
}

/// A running systemd-networkd; killed on drop.
pub struct Networkd {
    child: Child,
}

impl Networkd {
    /// Stops it and returns what it logged.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let mut log = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut log);
        }
        let _ = self.child.wait();
        log
    }
}

impl Drop for Networkd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The overlay devices a plan.json calls for (`flannel.<vni>`, `flannel-v6.<vni>`, `flannel0`).
pub fn plan_devices(plan: &serde_json::Value) -> Vec<String> {
    if plan["backend"]["type"] == "udp" {
        return vec!["flannel0".into()];
    }
    let Some(vni) = plan["backend"]["vni"].as_u64().filter(|_| plan["backend"]["type"] == "vxlan") else {
        return Vec::new();
    };
    let mut v = Vec::new();
    if plan.get("ipv4").is_some() {
        v.push(format!("flannel.{vni}"));
    }
    if plan.get("ipv6").is_some() {
        v.push(format!("flannel-v6.{vni}"));
    }
    v
}

/// `ip -n NS -j ARGS` as JSON; a failing `ip` fails the test (an error is
/// never "no state").
pub fn ip_json(ns: &Netns, program: &str, args: &[&str]) -> serde_json::Value {
    let out = must(Command::new(program).arg("-n").arg(&ns.name).arg("-j").args(args));
    let text = String::from_utf8_lossy(&out.stdout);
    // iproute2 prints nothing at all for an empty dump.
    if text.trim().is_empty() {
        return serde_json::json!([]);
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{program} {args:?}: not JSON ({e}): {text}"))
}

/// The kernel state flannel-gen manages on a node, normalised for comparison:
/// the overlay devices in `devs` (those that exist), their addresses,
/// neighbours and FDB, and both families' main-table routes, as sorted JSON lines.
pub fn flannel_state(ns: &Netns, devs: &[&str]) -> String {
    use serde_json::{Value, json};
    let mut lines = Vec::new();
    let links = ip_json(ns, "ip", &["-d", "link", "show"]);
    for l in links.as_array().into_iter().flatten().filter(|l| devs.iter().any(|d| l["ifname"] == json!(d))) {
        let d = &l["linkinfo"]["info_data"];
        lines.push(json!({
            "link": l["ifname"], "up": l["flags"].as_array().is_some_and(|f| f.contains(&json!("UP"))),
            "mtu": l["mtu"], "mac": l["address"], "kind": l["linkinfo"]["info_kind"],
            "vni": d["id"], "local": d["local"], "dev": d["link"], "port": d["port"],
            "learning": d["learning"], "udp_csum": d["udp_csum"], "addrgenmode": l["inet6_addr_gen_mode"],
            "tun": d["type"], "pi": d["pi"], "multi_queue": d["multi_queue"], "persist": d["persist"],
        }));
        let dev = l["ifname"].as_str().unwrap_or_default();
        for a in ip_json(ns, "ip", &["addr", "show", "dev", dev]).as_array().into_iter().flatten() {
            for i in a["addr_info"].as_array().into_iter().flatten() {
                lines.push(
                    json!({"addr": i["local"], "prefix": i["prefixlen"], "family": i["family"], "scope": i["scope"]}),
                );
            }
        }
        for n in ip_json(ns, "ip", &["neigh", "show", "dev", dev]).as_array().into_iter().flatten() {
            lines.push(json!({"neigh": n["dst"], "lladdr": n["lladdr"], "state": n["state"]}));
        }
        for f in ip_json(ns, "bridge", &["fdb", "show", "dev", dev]).as_array().into_iter().flatten() {
            lines.push(json!({"fdb": f["mac"], "dst": f["dst"], "flags": f["flags"], "state": f["state"]}));
        }
    }
    for family in ["-4", "-6"] {
        // The kernel's own link-local routes depend on the uplink, not on flannel-gen.
        let routes = ip_json(ns, "ip", &[family, "route", "show", "table", "main"]);
        for r in
            routes.as_array().into_iter().flatten().filter(|r| !r["dst"].as_str().unwrap_or("").starts_with("fe80:"))
        {
            lines.push(json!({"route": r["dst"], "via": r["gateway"], "dev": r["dev"], "proto": r["protocol"], "flags": r["flags"], "scope": r["scope"], "nhid": r["nhid"], "type": r["type"], "metric": r["metric"]}));
        }
    }
    // routeStyle nexthop: the objects the routes go through, as each tool made them.
    for n in ip_json(ns, "ip", &["nexthop", "show"]).as_array().into_iter().flatten() {
        lines.push(json!({"nexthop": n["id"], "via": n["gateway"], "dev": n["dev"], "flags": n["flags"], "proto": n["protocol"], "scope": n["scope"]}));
    }
    let mut lines: Vec<String> = lines.iter().map(Value::to_string).collect();
    lines.sort();
    lines.join("\n")
}

/// Runs `f` on a thread inside the namespace (sockets it makes live there).
pub fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{}", ns.name);
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).expect("netns file");
            // SAFETY: setns only reads the descriptor; it moves this thread alone.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("netns thread")
    })
}

/// `GET path` over HTTP/1.0 to 127.0.0.1:`port` inside the namespace,
/// retried for up to 5 s while nothing listens: (status code, body).
pub fn http_get(ns: &Netns, port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    in_netns(ns, || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut stream = loop {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("connect to {port} in {}: {e}", ns.name),
            }
        };
        stream.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).expect("send");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read");
        let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    })
}

/// The value of a sample `name` in Prometheus text, if it is there.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(&format!("{name} ")).and_then(|v| v.trim().parse().ok()))
}
