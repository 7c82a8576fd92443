//! Booted test nodes: a Debian 12 root filesystem made by debootstrap (cached
//! per target dir), one overlayfs copy per node, flannel-gen's package
//! installed with dpkg, and systemd as PID 1 inside the node's network
//! namespace: a real boot. Every node lives in
//! cgroups of its own below the test's, so several booted systemds never share
//! one. Dropping a node kills its PID 1, then unmounts and deletes what it made.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::netns::must;

/// What every booted node has besides minbase: systemd as init, what the
/// tests drive inside (iproute2, ping, the CNI plugins, iptables for the
/// rules), and docker.io with busybox-static (the one image, imported) for
/// a node whose pods are Docker containers. dpkg proves the package's
/// own Depends against this set.
const PACKAGES: &str = "systemd,systemd-sysv,dbus,iproute2,iptables,nftables,iputils-ping,containernetworking-plugins,\
     docker.io,busybox-static";
const SUITE: &str = "bookworm";
/// Units that wait for a console or touch the host's devices: a node has neither.
const MASKED: &[&str] = &[
    "getty.target",
    "serial-getty@ttyS0.service",
    "console-getty.service",
    "systemd-firstboot.service",
    "systemd-udevd.service",
    "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
];
/// Off in every node unless a test enables them.
const DISABLED: &[&str] = &["docker.service", "docker.socket", "containerd.service"];
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Where the host's root goes while the node's root is pivoted in. A node's
/// mount namespace has its root as the namespace root (pivot_root, not
/// chroot), as under a real boot: processes that join it later (nsenter,
/// `docker exec`) land in the node, not on the host.
const OLD_ROOT: &str = ".flannel-gen-old-root";

fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("boot")
}

/// An exclusive flock on `path`, held until the file is dropped.
fn lock(path: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::create(path).expect("lock file");
    // SAFETY: flock only reads the descriptor, which lives as long as `f`.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(r, 0, "flock {}", path.display());
    f
}

/// The Debian mirror debootstrap uses (`FLANNEL_GEN_DEBIAN_MIRROR` overrides).
fn mirror() -> String {
    std::env::var("FLANNEL_GEN_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into())
}

/// The base root filesystem, built once per target dir (and per package list).
pub fn base_rootfs() -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        use sha2::Digest;
        let key = sha2::Sha256::digest(format!("{SUITE} {PACKAGES} {MASKED:?} {DISABLED:?}"));
        let key: String = key.iter().take(6).map(|b| format!("{b:02x}")).collect();
        let dir = cache().join(format!("rootfs-{key}"));
        std::fs::create_dir_all(cache()).expect("mkdir cache");
        let _held = lock(&cache().join("rootfs.lock"));
        let root = dir.join("root");
        if root.join(".flannel-gen-complete").exists() {
            return root;
        }
        // Bases of other package lists are stale: 600 MB each.
        for e in std::fs::read_dir(cache()).expect("cache").flatten() {
            if e.file_name().to_string_lossy().starts_with("rootfs-") && e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let partial = dir.join("partial");
        std::fs::create_dir_all(&partial).expect("mkdir");
        let started = Instant::now();
        must(
            Command::new("debootstrap")
                .args(["--variant=minbase", &format!("--include={PACKAGES}"), SUITE])
                .arg(&partial)
                .arg(mirror()),
        );
        let mut args = vec!["mask"];
        args.extend_from_slice(MASKED);
        must(Command::new("chroot").arg(&partial).arg("systemctl").args(&args));
        let mut args = vec!["disable"];
        args.extend_from_slice(DISABLED);
        must(Command::new("chroot").arg(&partial).arg("systemctl").args(&args));
        std::fs::write(partial.join(".flannel-gen-complete"), "").expect("mark");
        std::fs::rename(&partial, &root).expect("rename rootfs");
        eprintln!("boot: debootstrap of {SUITE} with {PACKAGES} took {:?}", started.elapsed());
        root
    })
    .clone()
}

/// The Debian package of the flannel-gen under test, as `dist/build-deb`
/// builds it (with this test's binary, so it cannot be stale).
pub fn package() -> PathBuf {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        let out = cache().join("deb");
        let o = Command::new(super::root().join("dist/build-deb"))
            .env("FLANNEL_GEN_BINARY", env!("CARGO_BIN_EXE_flannel-gen"))
            .env("FLANNEL_GEN_DEB_DIR", &out)
            .output()
            .expect("dist/build-deb");
        assert!(
            o.status.success(),
            "dist/build-deb (needs cargo-deb: cargo install cargo-deb --locked): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::read_dir(&out)
            .expect("deb dir")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .expect("a .deb")
    })
    .clone()
}

/// One node's root (an overlay on the base) and, once booted, its PID 1.
pub struct BootNode {
    pub name: String,
    /// Unique in this run: names the node's directory and cgroups.
    tag: String,
    dir: PathBuf,
    pub root: PathBuf,
    pid1: Option<i32>,
    launcher: Option<Child>,
    cgroups: Vec<PathBuf>,
}

impl BootNode {
    /// A node's own root filesystem: writes go to its upper layer, and stay
    /// there across reboots.
    pub fn new(name: &str, base: &Path) -> BootNode {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let tag = format!("{}-{}-{name}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = cache().join(format!("node-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["upper", "work", "root"] {
            std::fs::create_dir_all(dir.join(d)).expect("mkdir");
        }
        let root = dir.join("root");
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        must(Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(&root));
        let node = BootNode { name: name.into(), tag, dir, root, pid1: None, launcher: None, cgroups: Vec::new() };
        std::fs::write(node.root.join("etc/hostname"), format!("{name}\n")).expect("hostname");
        node
    }

    /// A command run in the node's root before it boots (no systemd yet).
    pub fn chroot(&self, args: &[&str]) -> Output {
        must(Command::new("chroot").arg(&self.root).args(args))
    }

    /// `dpkg -i` of the package: fails when its Depends are not met.
    pub fn install(&self, deb: &Path) {
        let inside = Path::new("var/tmp/flannel-gen.deb");
        std::fs::copy(deb, self.root.join(inside)).expect("copy deb");
        self.chroot(&["dpkg", "-i", "/var/tmp/flannel-gen.deb"]);
    }

    /// Copies a rendered overlay onto the root, as README says to.
    pub fn copy_overlay(&self, overlay: &Path) {
        must(Command::new("cp").arg("-a").arg(format!("{}/.", overlay.display())).arg(&self.root));
    }

    /// Boots systemd as PID 1 in network namespace `netns` and waits until the
    /// boot is done (running or degraded).
    pub fn boot(&mut self, netns: &str) {
        assert!(self.pid1.is_none(), "{} is already up", self.name);
        let id = format!("fgt-{}", self.tag);
        let groups = own_cgroups(&id);
        self.cgroups = groups.iter().map(|(dir, _, _)| dir.clone()).collect();
        let r = self.root.display();
        // The hierarchies are mounted afresh inside the cgroup namespace (not
        // bound from the host's /sys/fs/cgroup), so the node's systemd sees
        // its own cgroup as the root and never the other nodes'.
        let mut cgroupfs = format!("mount -t tmpfs -o mode=755 tmpfs {r}/sys/fs/cgroup");
        for (_, controllers, name) in &groups {
            let fs = match controllers.as_str() {
                "" => "-t cgroup2 cgroup2".to_string(),
                c if c.starts_with("name=") => format!("-t cgroup -o none,{c} cgroup"),
                c => format!("-t cgroup -o {c} cgroup"),
            };
            cgroupfs.push_str(&format!("; mkdir {r}/sys/fs/cgroup/{name}; mount {fs} {r}/sys/fs/cgroup/{name}"));
        }
        let script = format!(
            "set -e; for g in {cg}; do echo $$ > $g/cgroup.procs; done
exec unshare --fork --pid --mount --uts --cgroup sh -c 'set -e; mount --make-rprivate /
mount --bind {r} {r}; mount -t proc proc {r}/proc; mount -t sysfs -o ro sysfs {r}/sys
mount -t tmpfs tmpfs {r}/run; mount -t tmpfs tmpfs {r}/tmp; {cgroupfs}
mount --rbind /dev {r}/dev; hostname {name}; cd {r}; mkdir -p {OLD_ROOT}; pivot_root . {OLD_ROOT}
umount -l /{OLD_ROOT}; rmdir /{OLD_ROOT}; exec /lib/systemd/systemd --system'",
            cg = self.cgroups.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(" "),
            name = self.name,
        );
        let log = std::fs::File::create(self.dir.join("console.log")).expect("log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{netns}"))
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("nsenter");
        let launcher = child.id();
        self.launcher = Some(child);
        self.pid1 = Some(self.wait_pid1(launcher));
        // systemctl answers once systemd has its private socket; then wait for the boot to end.
        let script = format!(
            "for i in $(seq 200); do case $(systemctl is-system-running 2>/dev/null) in \
             ''|offline) sleep 0.1 ;; *) break ;; esac; done; \
             timeout {} systemctl is-system-running --wait",
            BOOT_TIMEOUT.as_secs()
        );
        let state = String::from_utf8_lossy(&self.sh(&script).stdout).trim().to_string();
        if state != "running" {
            let failed = self.sh("systemctl --failed --no-legend --plain");
            eprintln!("boot: {} is {state}; failed units:\n{}", self.name, String::from_utf8_lossy(&failed.stdout));
            assert_eq!(state, "degraded", "{} did not finish booting:\n{}", self.name, self.console());
        }
    }

    /// The unshare process forks systemd: its only child is the node's PID 1.
    fn wait_pid1(&self, launcher: u32) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let children = std::fs::read_to_string(format!("/proc/{launcher}/task/{launcher}/children"));
            if let Some(pid) = children.ok().and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok())) {
                // Wait until it is systemd, not the shell that execs it.
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "systemd" {
                    return pid;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{}: systemd did not start:\n{}", self.name, self.console());
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.dir.join("console.log")).unwrap_or_default()
    }

    /// `sh -c SCRIPT` inside the booted node (its namespaces and root).
    pub fn sh(&self, script: &str) -> Output {
        let pid = self.pid1.expect("booted").to_string();
        Command::new("nsenter")
            .args(["-t", &pid, "-m", "-p", "-u", "-n", "sh", "-c", script])
            .output()
            .expect("nsenter")
    }

    /// [`BootNode::sh`], which must succeed; its stdout.
    pub fn must_sh(&self, script: &str) -> String {
        let o = self.sh(script);
        assert!(
            o.status.success(),
            "{}: `{script}` failed: {}{}",
            self.name,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A property of a unit, as `systemctl show -p NAME --value` prints it.
    pub fn unit_property(&self, unit: &str, property: &str) -> String {
        self.must_sh(&format!("systemctl show -p {property} --value {unit}")).trim().to_string()
    }

    /// What the journal says of `unit` (for failure messages).
    pub fn journal(&self, unit: &str) -> String {
        String::from_utf8_lossy(&self.sh(&format!("journalctl -b --no-pager -u {unit} | tail -n 40")).stdout).into()
    }

    /// A pod: a network namespace made inside the node, attached by the CNI
    /// bridge plugin with the first plugin of the node's own conflist.
    /// Returns the pod's first address.
    pub fn add_pod(&self, pod: &str) -> String {
        let conf = super::cluster::bridge_conf(&self.root.join("etc/cni/net.d/10-flannel.conflist"));
        std::fs::write(self.root.join(format!("var/tmp/{pod}.json")), conf.to_string()).expect("write conf");
        let out = self.must_sh(&format!(
            "ip netns add {pod} && CNI_COMMAND=ADD CNI_CONTAINERID={pod} CNI_NETNS=/run/netns/{pod} CNI_IFNAME=eth0 \
             CNI_PATH=/usr/lib/cni /usr/lib/cni/bridge < /var/tmp/{pod}.json"
        ));
        let result: serde_json::Value = serde_json::from_str(&out).expect("CNI result");
        let addr = result["ips"][0]["address"].as_str().expect("a pod address");
        addr.split('/').next().unwrap_or(addr).to_string()
    }

    /// A Docker container on the node's docker0 (the `bip` flannel-gen
    /// rendered), from busybox-static imported as the only image. Returns its address.
    pub fn add_container(&self, name: &str) -> String {
        self.must_sh(&format!(
            "set -e; [ -n \"$(docker images -q fgt:busybox)\" ] || \
             tar -C /bin -c busybox | docker import -c 'CMD [\"/busybox\",\"sleep\",\"3600\"]' - fgt:busybox >/dev/null; \
             docker run -d --name {name} fgt:busybox >/dev/null"
        ));
        self.must_sh(&format!("docker inspect -f '{{{{.NetworkSettings.IPAddress}}}}' {name}")).trim().to_string()
    }

    /// Whether pod `pod` of this node (a network namespace, or with
    /// `container:` a Docker container) gets an answer from `to`.
    pub fn pod_pings(&self, pod: &str, to: &str) -> bool {
        let cmd = match pod.strip_prefix("container:") {
            Some(c) => format!("docker exec {c} /busybox ping -c 1 -W 2 {to}"),
            None => format!("ip netns exec {pod} ping -c 1 -W 2 {to}"),
        };
        let mut last = None;
        for _ in 0..3 {
            let o = self.sh(&cmd);
            if o.status.success() {
                return true;
            }
            last = Some(o);
        }
        if let Some(o) = last {
            eprintln!(
                "{}: `{cmd}`: {}{}",
                self.name,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        false
    }

    /// Stops the node: kills its PID 1 (and with it everything in its pid
    /// namespace) and removes its cgroups; its root filesystem stays.
    pub fn halt(&mut self) {
        if let Some(pid) = self.pid1.take() {
            // SAFETY: kill has no memory effects; a pid that is gone gets ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(mut l) = self.launcher.take() {
            let _ = l.kill();
            let _ = l.wait();
        }
        remove_cgroups(&self.cgroups);
        self.cgroups.clear();
    }
}

impl Drop for BootNode {
    fn drop(&mut self) {
        self.halt();
        // The overlay is busy until the last process of the node is gone.
        for _ in 0..50 {
            if Command::new("umount").arg(&self.root).status().is_ok_and(|s| s.success()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A cgroup named `id` below this process's own in every hierarchy, so a
/// booted systemd (with a cgroup namespace rooted there) sees only its node;
/// with each, the hierarchy's controllers ("" for cgroup v2) and the name
/// of its mount under /sys/fs/cgroup.
fn own_cgroups(id: &str) -> Vec<(PathBuf, String, String)> {
    let mine = std::fs::read_to_string("/proc/self/cgroup").expect("/proc/self/cgroup");
    let mut out = Vec::new();
    for line in mine.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let mount = match controllers {
            "" => "unified".to_string(),
            c => c.trim_start_matches("name=").to_string(),
        };
        let parent = Path::new("/sys/fs/cgroup").join(&mount).join(path.trim_start_matches('/'));
        if !parent.join("cgroup.procs").exists() {
            continue;
        }
        let dir = parent.join(id);
        let _ = std::fs::create_dir(&dir);
        // A v1 cpuset takes no process until it has CPUs and memory nodes.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read_to_string(parent.join(f)) {
                std::fs::write(dir.join(f), v).expect("cpuset");
            }
        }
        out.push((dir, controllers.to_string(), mount));
    }
    out
}

/// Removes the cgroups a node's systemd left, deepest first, once empty.
fn remove_cgroups(dirs: &[PathBuf]) {
    fn subdirs(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                subdirs(&e.path(), out);
            }
        }
        out.push(d.to_path_buf());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for d in dirs {
        let mut all = Vec::new();
        subdirs(d, &mut all);
        for c in all {
            // Killed processes leave their cgroup a moment later.
            while std::fs::remove_dir(&c).is_err() && c.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
