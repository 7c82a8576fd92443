//! A real Docker daemon (Debian docker.io) as the consumer of the rendered
//! daemon.json, on every namespace node, the way the seeds ran flannel:
//! flannel-gen first, then dockerd with `bip`, `mtu` and `ip-masq` from the
//! node's files. Containers on different nodes ping each other and a host
//! outside the cluster (flannel-gen's masquerade, under Docker's FORWARD
//! DROP), and have the plan's MTU. Needs root; skips loudly otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::netns::{Netns, must, root_or_skip};

const TOPO: &str = "examples/vxlan-3node.yaml";
const EXTERNAL: &str = "192.168.31.200";
/// Debian's docker CLI, matching its dockerd (another client may be first on PATH).
const DOCKER: &str = "/usr/bin/docker";
const IMAGE: &str = "flannel-gen-busybox:test";

/// dockerd in a node's namespace, with private roots; stopped and cleaned up on drop.
struct Dockerd {
    dir: PathBuf,
    child: Child,
}

impl Dockerd {
    fn start(ns: &Netns, daemon_json: &Path, dir: PathBuf) -> Dockerd {
        std::fs::create_dir_all(&dir).expect("mkdir");
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("log");
        // nsenter, not `ip netns exec`: that remounts /sys and hides the cgroup mounts dockerd needs.
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", ns.name))
            .arg("dockerd")
            .arg("--config-file")
            .arg(daemon_json)
            .args(["--storage-driver", "vfs"])
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dockerd (docker.io)");
        let d = Dockerd { dir, child };
        d.wait_ready();
        d
    }

    fn docker(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg("-H").arg(format!("unix://{}", self.dir.join("docker.sock").display()));
        c
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.docker().arg("info").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        panic!("dockerd did not come up:\n{log}");
    }

    fn out(&self, args: &[&str]) -> String {
        let o = must(self.docker().args(args));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Imports busybox-static as an image: no registry needed.
    fn import_busybox(&self, rootfs: &Path) {
        let mut tar =
            Command::new("tar").arg("-C").arg(rootfs).args(["-c", "."]).stdout(Stdio::piped()).spawn().expect("tar");
        let pipe = tar.stdout.take().expect("pipe");
        let st = self.docker().args(["import", "-", IMAGE]).stdin(pipe).stdout(Stdio::null()).status();
        assert!(tar.wait().is_ok_and(|s| s.success()), "tar");
        assert!(st.is_ok_and(|s| s.success()), "docker import");
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = self.docker().args(["ps", "-aq"]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        for id in ids.unwrap_or_default().split_whitespace() {
            let _ = self.docker().args(["rm", "-f", id]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        // SAFETY: kill has no memory effects; our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Whatever dockerd left mounted below its roots (container netns, shm).
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let prefix = self.dir.to_string_lossy().into_owned();
        let mut left: Vec<&str> =
            mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|m| m.starts_with(&prefix)).collect();
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in left {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A root filesystem with busybox-static and the applets the test uses.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
    for applet in ["sh", "ping", "sleep", "cat", "ip"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
    }
    root
}

#[test]
fn containers_on_flannel_gen_nodes_ping_across_and_out() {
    if !root_or_skip("containers_on_flannel_gen_nodes_ping_across_and_out") {
        return;
    }
    let mut c = Cluster::new(TOPO);
    c.external_host(&format!("{EXTERNAL}/24"));
    let work = tempfile::tempdir().expect("tempdir");
    let rootfs = busybox_rootfs(work.path());
    // Docker up first, on a node that did not forward yet: it enables
    // forwarding and sets the FORWARD policy to DROP. flannel-gen then has to
    // answer with its forward rules, as flanneld does.
    let mut daemons = Vec::new();
    for n in &c.nodes {
        let d = Dockerd::start(&n.ns, &c.overlay(&n.name).join("etc/docker/daemon.json"), work.path().join(&n.name));
        d.import_busybox(&rootfs);
        daemons.push(d);
    }
    c.apply_all(TOPO);
    for d in &daemons {
        d.out(&["run", "-d", "--name", "pod", IMAGE, "/bin/sleep", "3600"]);
    }
    let ips: Vec<String> =
        daemons.iter().map(|d| d.out(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "pod"])).collect();
    for (i, n) in c.nodes.iter().enumerate() {
        let plan: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(c.overlay(&n.name).join("etc/flannel-gen/plan.json")).expect("plan"),
        )
        .expect("json");
        let subnet: ipnet::Ipv4Net = plan["ipv4"]["subnet"].as_str().expect("subnet").parse().expect("net");
        let ip: std::net::Ipv4Addr = ips[i].parse().expect("container ip");
        assert!(subnet.contains(&ip), "{}: container {ip} is in the node's subnet {subnet} (docker's bip)", n.name);
        let mtu = daemons[i].out(&["exec", "pod", "cat", "/sys/class/net/eth0/mtu"]);
        assert_eq!(mtu, plan["mtu"].to_string(), "{}: container MTU is the plan's", n.name);
        let policy = String::from_utf8_lossy(&must(&mut n.ns.exec("iptables", &["-S", "FORWARD"])).stdout).into_owned();
        assert!(policy.starts_with("-P FORWARD DROP"), "{}: docker set FORWARD DROP: {policy}", n.name);
    }
    let ping = |d: &Dockerd, to: &str| {
        (0..3).any(|_| {
            d.docker()
                .args(["exec", "pod", "ping", "-c", "1", "-W", "2", to])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    };
    for (i, d) in daemons.iter().enumerate() {
        for (j, to) in ips.iter().enumerate().filter(|(j, _)| *j != i) {
            assert!(ping(d, to), "container on {} cannot reach the one on {} ({to})", c.nodes[i].name, c.nodes[j].name);
        }
        assert!(ping(d, EXTERNAL), "container on {} cannot reach the external host", c.nodes[i].name);
    }
    drop(daemons);
    let left = Command::new("pgrep").args(["-x", "dockerd"]).output().expect("pgrep");
    assert!(left.stdout.is_empty(), "every dockerd stopped");
}
