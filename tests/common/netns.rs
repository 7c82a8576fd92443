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

    /// Starts the real systemd-networkd inside the namespace (DESIGN.md recipe).
    pub fn networkd(&self) -> Networkd {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, "unshare", "-m", "sh", "-c"])
            .arg("mount -o remount,bind,ro /sys && mount -t tmpfs tmpfs /run/systemd/netif && chown systemd-network:systemd-network /run/systemd/netif && exec /lib/systemd/systemd-networkd")
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
        // The apply lock flannel-gen keeps for this namespace.
        let _ = std::fs::remove_file(format!("/run/flannel-gen/apply-netns-{}.lock", self.name));
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

/// The kernel state flannel-gen manages on a node, normalised for comparison:
/// the flannel device, its IPv4 addresses, IPv4 main-table routes, its
/// neighbours and its FDB, as sorted JSON lines.
pub fn flannel_state(ns: &Netns, dev: Option<&str>) -> String {
    use serde_json::{Value, json};
    // A device that does not exist (yet) is an empty state, not an error.
    let j = |args: &[&str]| -> Value {
        let out = Command::new("ip").arg("-n").arg(&ns.name).args(args).output().expect("ip");
        serde_json::from_slice(&out.stdout).unwrap_or(json!([]))
    };
    let mut lines = Vec::new();
    if let Some(dev) = dev {
        for l in j(&["-j", "-d", "link", "show", "dev", dev]).as_array().into_iter().flatten() {
            let d = &l["linkinfo"]["info_data"];
            lines.push(json!({
                "link": l["ifname"], "up": l["flags"].as_array().is_some_and(|f| f.contains(&json!("UP"))),
                "mtu": l["mtu"], "mac": l["address"], "kind": l["linkinfo"]["info_kind"],
                "vni": d["id"], "local": d["local"], "dev": d["link"], "port": d["port"],
                "learning": d["learning"], "udp_csum": d["udp_csum"], "addrgenmode": l["inet6_addr_gen_mode"],
            }));
        }
        for a in j(&["-j", "addr", "show", "dev", dev]).as_array().into_iter().flatten() {
            for i in a["addr_info"].as_array().into_iter().flatten() {
                lines.push(
                    json!({"addr": i["local"], "prefix": i["prefixlen"], "family": i["family"], "scope": i["scope"]}),
                );
            }
        }
        for n in j(&["-j", "neigh", "show", "dev", dev]).as_array().into_iter().flatten() {
            lines.push(json!({"neigh": n["dst"], "lladdr": n["lladdr"], "state": n["state"]}));
        }
        let fdb =
            Command::new("bridge").args(["-n", &ns.name, "-j", "fdb", "show", "dev", dev]).output().expect("bridge");
        let fdb: Value = serde_json::from_slice(&fdb.stdout).unwrap_or(json!([]));
        for f in fdb.as_array().into_iter().flatten() {
            lines.push(json!({"fdb": f["mac"], "dst": f["dst"], "flags": f["flags"], "state": f["state"]}));
        }
    }
    for r in j(&["-j", "-4", "route", "show", "table", "main"]).as_array().into_iter().flatten() {
        lines.push(json!({"route": r["dst"], "via": r["gateway"], "dev": r["dev"], "proto": r["protocol"], "flags": r["flags"], "scope": r["scope"]}));
    }
    let mut lines: Vec<String> = lines.iter().map(Value::to_string).collect();
    lines.sort();
    lines.join("\n")
}
