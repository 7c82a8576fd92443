//! render: golden output of every example, --check drift detection, pruning,
//! and the guarantee that a failed render leaves --out untouched.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{code, golden, root, run, stderr, stdout};

const EXAMPLES: &[&str] = &[
    "vxlan-3node",
    "hostgw-3node",
    "vxlan-directrouting",
    "udp-3node",
    "vxlan-dualstack",
    "hostgw-dualstack",
    "vxlan-ipv6only",
    "wireguard-3node",
];

/// Every file under `dir`, relative path -> contents.
fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in fs::read_dir(dir).expect("read_dir").map(|e| e.expect("entry")) {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).expect("under base").to_path_buf();
                out.insert(rel, fs::read_to_string(&p).expect("utf8 file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn render(topo: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["render", topo, "--out", out.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn examples_match_golden_files() {
    for ex in EXAMPLES {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = render(&format!("examples/{ex}.yaml"), dir.path(), &["--locked"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let actual = tree(dir.path());
        let golden_dir = root().join("golden").join(ex);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            let _ = fs::remove_dir_all(&golden_dir);
        }
        for (rel, text) in &actual {
            golden(&golden_dir.join(rel), text);
        }
        let expected: Vec<_> = tree(&golden_dir).into_keys().collect();
        let produced: Vec<_> = actual.into_keys().collect();
        assert_eq!(produced, expected, "{ex}: the set of files differs from golden/{ex}");
    }
}

#[test]
fn vxlan_node_gets_every_artefact_with_flanneld_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(code(&render("examples/vxlan-3node.yaml", dir.path(), &[])), 0);
    let n = tree(&dir.path().join("node-1"));
    let names: Vec<String> = n.keys().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "etc/cni/net.d/10-flannel.conflist",
            "etc/docker/daemon.json",
            "etc/flannel-gen/fdb.batch",
            "etc/flannel-gen/iptables.rules",
            "etc/flannel-gen/link.batch",
            "etc/flannel-gen/manifest",
            "etc/flannel-gen/neigh.batch",
            "etc/flannel-gen/plan.json",
            "etc/flannel-gen/route.batch",
            "etc/sysctl.d/50-flannel-gen.conf",
            "etc/systemd/network/50-flannel.1.link",
            "etc/systemd/network/50-flannel.1.netdev",
            "etc/systemd/network/50-flannel.1.network",
            "etc/systemd/network/eth0.network.d/50-flannel-gen.conf",
            "etc/systemd/system/flannel-gen-rules.service",
            "etc/systemd/system/flannel-gen-watch.service",
            "etc/systemd/system/flannel-gen.service",
            "etc/tmpfiles.d/flannel-gen.conf",
            "run/docker_opts.env",
            "run/flannel/subnet.env",
        ]
    );
    assert_eq!(
        n[Path::new("run/flannel/subnet.env")],
        "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
    );
    assert_eq!(
        n[Path::new("run/docker_opts.env")],
        "DOCKER_OPT_BIP=\"--bip=10.244.1.1/24\"\nDOCKER_OPT_IPMASQ=\"--ip-masq=false\"\nDOCKER_OPT_MTU=\"--mtu=1450\"\nDOCKER_OPTS=\" --bip=10.244.1.1/24 --ip-masq=false --mtu=1450\"\n"
    );
    let daemon: serde_json::Value = serde_json::from_str(&n[Path::new("etc/docker/daemon.json")]).expect("json");
    assert_eq!(daemon, serde_json::json!({"bip": "10.244.1.1/24", "mtu": 1450, "ip-masq": false}));
    let cni: serde_json::Value =
        serde_json::from_str(&n[Path::new("etc/cni/net.d/10-flannel.conflist")]).expect("json");
    assert_eq!(cni["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.244.1.0/24");
    assert_eq!(cni["plugins"][0]["ipMasq"], false);
    assert_eq!(cni["plugins"][1]["type"], "portmap");
    let unit = &n[Path::new("etc/systemd/system/flannel-gen.service")];
    for want in [
        "Type=oneshot",
        "After=network-pre.target",
        "Before=docker.service",
        "kubelet.service",
        "apply --plan /etc/flannel-gen/plan.json",
    ] {
        assert!(unit.contains(want), "unit lacks {want}: {unit}");
    }
    let modes = fs::metadata(dir.path().join("node-1/etc/systemd/network/50-flannel.1.network")).expect("meta");
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&modes.permissions()) & 0o777, 0o644);
}

/// docker_opts.env is byte for byte what flannel's dist/mk-docker-opts.sh
/// writes by default from our subnet.env: the individual keys in `set` order
/// (BIP, IPMASQ, MTU), then DOCKER_OPTS with a leading space and none
/// trailing; FLANNEL_IPMASQ=true gives `--ip-masq=false`, false gives
/// `--ip-masq=true` (flannel-io/flannel, dist/mk-docker-opts.sh).
#[test]
fn docker_opts_match_mk_docker_opts_for_both_ipmasq_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (masq, docker) in [("true", "false"), ("false", "true")] {
        let topo = dir.path().join(format!("t-{masq}.yaml"));
        let y = fs::read_to_string(root().join("examples/hostgw-3node.yaml"))
            .expect("read")
            .replace("ipMasq: true", &format!("ipMasq: {masq}"));
        fs::write(&topo, y).expect("write");
        let out = dir.path().join(format!("out-{masq}"));
        assert_eq!(code(&render(topo.to_str().expect("utf8"), &out, &[])), 0);
        assert_eq!(
            fs::read_to_string(out.join("node-1/run/flannel/subnet.env")).expect("read"),
            format!(
                "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ={masq}\n"
            )
        );
        assert_eq!(
            fs::read_to_string(out.join("node-1/run/docker_opts.env")).expect("read"),
            format!(
                "DOCKER_OPT_BIP=\"--bip=10.244.1.1/24\"\nDOCKER_OPT_IPMASQ=\"--ip-masq={docker}\"\nDOCKER_OPT_MTU=\"--mtu=1500\"\nDOCKER_OPTS=\" --bip=10.244.1.1/24 --ip-masq={docker} --mtu=1500\"\n"
            )
        );
        let daemon = fs::read_to_string(out.join("node-1/etc/docker/daemon.json")).expect("read");
        assert!(daemon.contains(&format!("\"ip-masq\": {docker}")), "{daemon}");
    }
}

/// An IPv6-only node: flannel's dist/mk-docker-opts.sh (flannel-io/flannel
/// at cdf76059) sets DOCKER_OPT_BIP only `if [ -n "$FLANNEL_SUBNET" ]`, and an
/// IPv6-only subnet.env has FLANNEL_IPV6_SUBNET instead; IPMASQ and MTU are
/// still written, and DOCKER_OPTS keeps its leading space. The bytes below are
/// what that script printed (dash, Debian 12) when run by hand on this
/// example's golden subnet.env. daemon.json has no `bip` then.
#[test]
fn docker_opts_on_an_ipv6_only_node_match_mk_docker_opts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("o");
    assert_eq!(code(&render("examples/vxlan-ipv6only.yaml", &out, &[])), 0);
    for node in ["node-1", "node-2", "node-3"] {
        assert_eq!(
            fs::read_to_string(out.join(node).join("run/flannel/subnet.env")).expect("subnet.env"),
            format!(
                "FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:{}::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
                &node[5..]
            )
        );
        assert_eq!(
            fs::read_to_string(out.join(node).join("run/docker_opts.env")).expect("docker_opts.env"),
            "DOCKER_OPT_IPMASQ=\"--ip-masq=false\"\nDOCKER_OPT_MTU=\"--mtu=1450\"\nDOCKER_OPTS=\" --ip-masq=false --mtu=1450\"\n"
        );
        let daemon: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(out.join(node).join("etc/docker/daemon.json")).expect("read"))
                .expect("json");
        assert!(daemon.get("bip").is_none(), "{daemon}");
        assert_eq!(daemon["mtu"], 1450);
    }
}

/// /run is a tmpfs on a node: the overlay's tmpfiles.d drop-in must make the
/// real systemd-tmpfiles (Debian's systemd, as at boot) write every `run/`
/// file of the overlay byte for byte, for every example.
#[test]
fn systemd_tmpfiles_recreates_the_runtime_files_at_boot() {
    let dir = tempfile::tempdir().expect("tempdir");
    for example in EXAMPLES {
        let out = dir.path().join(example);
        assert_eq!(code(&render(&format!("examples/{example}.yaml"), &out, &[])), 0);
        for node in fs::read_dir(&out).expect("out").map(|e| e.expect("entry").path()) {
            let boot = dir.path().join("boot");
            let _ = fs::remove_dir_all(&boot);
            fs::create_dir_all(boot.join("run")).expect("mkdir");
            let conf = node.join("etc/tmpfiles.d/flannel-gen.conf");
            let o = std::process::Command::new("systemd-tmpfiles")
                .arg("--create")
                .arg(format!("--root={}", boot.display()))
                .arg(&conf)
                .output()
                .expect("systemd-tmpfiles (Debian systemd)");
            assert!(o.status.success(), "{}: {}", conf.display(), String::from_utf8_lossy(&o.stderr));
            let made = tree(&boot.join("run"));
            assert_eq!(made, tree(&node.join("run")), "{}", node.display());
            assert!(made.contains_key(Path::new("flannel/subnet.env")) && made.len() == 2, "{made:?}");
        }
    }
}

#[test]
fn check_detects_drift_and_shows_the_diff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("o");
    let topo = "examples/vxlan-3node.yaml";
    assert_eq!(code(&render(topo, &out, &[])), 0);
    let o = render(topo, &out, &["--check"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));

    let f = out.join("node-2/run/flannel/subnet.env");
    fs::write(
        &f,
        "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.9.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
    )
    .expect("edit");
    let o = render(topo, &out, &["--check"]);
    assert_eq!(code(&o), 1);
    let diff = stdout(&o);
    assert!(diff.contains("--- a/node-2/run/flannel/subnet.env"), "{diff}");
    assert!(diff.contains("-FLANNEL_SUBNET=10.244.9.1/24\n+FLANNEL_SUBNET=10.244.2.1/24"), "{diff}");
    assert!(fs::read_to_string(&f).expect("read").contains("10.244.9.1"), "--check must not write");

    // A file we did not write stays, and does not count as drift.
    let foreign = out.join("node-2/etc/systemd/network/10-eth0.network");
    fs::write(&foreign, "[Match]\nName=eth0\n").expect("foreign");
    assert_eq!(code(&render(topo, &out, &[])), 0);
    assert_eq!(code(&render(topo, &out, &["--check"])), 0);
    assert_eq!(fs::read_to_string(&foreign).expect("kept"), "[Match]\nName=eth0\n");

    // A deleted file is drift too.
    fs::remove_file(out.join("node-3/etc/flannel-gen/plan.json")).expect("rm");
    let o = render(topo, &out, &["--check"]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("+++ b/node-3/etc/flannel-gen/plan.json"), "{}", stdout(&o));
}

#[test]
fn stale_files_are_pruned_and_foreign_ones_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("o");
    let topo = dir.path().join("t.yaml");
    fs::copy(root().join("examples/vxlan-3node.yaml"), &topo).expect("copy");
    let t = topo.to_str().expect("utf8");
    assert_eq!(code(&render(t, &out, &[])), 0);
    fs::write(out.join("node-3/etc/notes.txt"), "mine").expect("foreign");

    // Switch to host-gw and drop node-3.
    let y = fs::read_to_string(&topo)
        .expect("read")
        .replace("type: vxlan", "type: host-gw")
        .replace("  - name: node-3\n    ip: 192.168.31.63/24\n", "");
    fs::write(&topo, y).expect("write");
    let o = render(t, &out, &["-v"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("- node-1/etc/systemd/network/50-flannel.1.netdev"), "{}", stdout(&o));
    assert!(!out.join("node-1/etc/flannel-gen/fdb.batch").exists());
    assert!(out.join("node-1/etc/systemd/network/eth0.network.d/50-flannel-gen.conf").exists());
    let left: Vec<_> = tree(&out.join("node-3")).into_keys().collect();
    assert_eq!(left, [PathBuf::from("etc/notes.txt")], "only the foreign file of the removed node stays");
    assert_eq!(code(&render(t, &out, &["--check"])), 0);
}

#[test]
fn a_failing_render_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("o");
    let topo = "examples/vxlan-3node.yaml";
    assert_eq!(code(&render(topo, &out, &[])), 0);
    let before = tree(&out);

    let tdir = dir.path().join("templates");
    fs::create_dir(&tdir).expect("mkdir");
    fs::write(tdir.join("route.batch.j2"), "{{ no_such_variable }}\n").expect("write");
    let t2 = jumbo(dir.path(), topo);
    let o = render(&t2, &out, &["--templates", tdir.to_str().expect("utf8")]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("route.batch.j2"), "{}", stderr(&o));
    assert_eq!(tree(&out), before, "--out unchanged after a failed render");
    let stray: Vec<_> = fs::read_dir(&out)
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "no staging directory left behind");
}

/// A render killed mid-way leaves its staging directory in --out (SIGKILL
/// runs no cleanup); the next render removes it under --out's render lock,
/// whatever pid it names. A render that fails into an --out it had to
/// create leaves no empty directory.
#[test]
fn leftovers_of_killed_or_failed_renders_do_not_survive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("o");
    let topo = "examples/vxlan-3node.yaml";
    assert_eq!(code(&render(topo, &out, &[])), 0);
    for pid in ["999999", "1"] {
        let stale = out.join(format!(".flannel-gen-stage-{pid}"));
        fs::create_dir(&stale).expect("mkdir");
        fs::write(stale.join("0"), "half-written").expect("write");
    }
    fs::write(out.join("node-1/run/flannel/subnet.env"), "edited\n").expect("edit");
    assert_eq!(code(&render(topo, &out, &[])), 0);
    let dots: Vec<String> = fs::read_dir(&out)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(dots.is_empty(), "stale staging directories survived: {dots:?}");

    let tdir = dir.path().join("templates");
    fs::create_dir(&tdir).expect("mkdir");
    fs::write(tdir.join("route.batch.j2"), "{{ no_such_variable }}\n").expect("write");
    let fresh = dir.path().join("new/out");
    let o = render(topo, &fresh, &["--templates", tdir.to_str().expect("utf8")]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(!fresh.exists(), "a failed render left the --out it created");
}

#[test]
fn template_override_is_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tdir = dir.path().join("templates");
    fs::create_dir(&tdir).expect("mkdir");
    fs::write(tdir.join("subnet.env.j2"), "SUBNET={{ ipv4.subnet }}\n").expect("write");
    let out = dir.path().join("o");
    let o =
        render("examples/vxlan-3node.yaml", &out, &["--templates", tdir.to_str().expect("utf8"), "--node", "node-2"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::read_to_string(out.join("node-2/run/flannel/subnet.env")).expect("read"), "SUBNET=10.244.2.0/24\n");
    assert!(!out.join("node-1").exists(), "--node renders only that node");

    fs::write(tdir.join("subnet.env.typo"), "x").expect("write");
    let o = render("examples/vxlan-3node.yaml", &out, &["--templates", tdir.to_str().expect("utf8")]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not a flannel-gen template"), "{}", stderr(&o));
}

/// The per-peer templates are written natively (src/render/native.rs) unless
/// overridden: the same templates given through `--templates` go through
/// minijinja, and every example in both route styles must come out the same.
#[test]
fn native_rendering_is_byte_identical_to_the_templates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tdir = dir.path().join("templates");
    fs::create_dir(&tdir).expect("mkdir");
    for t in ["flannel.network.j2", "neigh.batch.j2", "fdb.batch.j2", "route.batch.j2", "uplink.conf.j2"] {
        fs::copy(root().join("templates").join(t), tdir.join(t)).expect("copy template");
    }
    let mut compared = 0;
    for ex in EXAMPLES {
        let text = fs::read_to_string(root().join(format!("examples/{ex}.yaml"))).expect("example");
        let plain = text.replacen("backend:\n", "backend:\n  routeStyle: plain\n", 1);
        let styles = if ex.starts_with("udp") || ex.starts_with("wireguard") {
            vec![("nexthop", &text)]
        } else {
            vec![("nexthop", &text), ("plain", &plain)]
        };
        for (style, body) in styles {
            let topo = dir.path().join(format!("{ex}-{style}.yaml"));
            fs::write(&topo, body).expect("write topology");
            // WireGuard's public keys are only in the lock.
            let lock = root().join(format!("examples/{ex}.lock"));
            if lock.exists() {
                fs::copy(&lock, topo.with_extension("lock")).expect("copy lock");
            }
            let t = topo.to_str().expect("utf8");
            let (native, jinja) =
                (dir.path().join(format!("{ex}-{style}-n")), dir.path().join(format!("{ex}-{style}-j")));
            let o = render(t, &native, &[]);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            let o = render(t, &jinja, &["--templates", tdir.to_str().expect("utf8")]);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            let (n, j) = (tree(&native), tree(&jinja));
            assert!(n.len() > 10, "{ex} {style}: rendered {} files", n.len());
            for (path, text) in &j {
                assert_eq!(n.get(path), Some(text), "{ex} {style}: {} differs from its template", path.display());
            }
            assert_eq!(n.len(), j.len(), "{ex} {style}: the same files");
            compared += n.len();
        }
    }
    assert!(compared > 200, "compared {compared} files");
}

#[test]
fn out_must_be_a_real_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    fs::write(&file, "x").expect("write");
    let o = render("examples/vxlan-3node.yaml", &file, &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));

    let target = dir.path().join("elsewhere");
    fs::create_dir(&target).expect("mkdir");
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let o = render("examples/vxlan-3node.yaml", &link, &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("symlink"), "{}", stderr(&o));
    assert_eq!(fs::read_dir(&target).expect("dir").count(), 0);

    // A symlinked directory inside --out is refused too.
    let out = dir.path().join("o");
    fs::create_dir_all(out.join("node-1")).expect("mkdir");
    std::os::unix::fs::symlink(&target, out.join("node-1/etc")).expect("symlink");
    let o = render("examples/vxlan-3node.yaml", &out, &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(fs::read_dir(&target).expect("dir").count(), 0);
}

/// `example` with a 9000-byte underlay MTU (every node's files change), in `dir`.
fn jumbo(dir: &std::path::Path, example: &str) -> String {
    let y = fs::read_to_string(root().join(example)).expect("read").replace("mtu: 1500", "mtu: 9000");
    let t = dir.join("t.yaml");
    fs::write(&t, y).expect("write");
    t.to_string_lossy().into_owned()
}

/// Clears the immutable flag again however the test ends.
struct Immutable(PathBuf);

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// `path` made immutable (root ignores permission bits; the flag refuses
/// even root), or `None` after saying loudly why `test` cannot show it here.
fn immutable(path: &std::path::Path, test: &str) -> Option<Immutable> {
    if std::process::Command::new("chattr").arg("+i").arg(path).status().is_ok_and(|s| s.success()) {
        return Some(Immutable(path.to_path_buf()));
    }
    let why = "chattr +i is not supported here (needs root and ext4/xfs/btrfs)";
    if std::env::var("FLANNEL_GEN_E2E").as_deref() == Ok("require") {
        panic!("{test}: {why} (FLANNEL_GEN_E2E=require)");
    }
    eprintln!("SKIPPED {test}: {why}");
    None
}

#[test]
fn unwritable_out_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("o");
    assert_eq!(code(&render("examples/vxlan-3node.yaml", &out, &[])), 0);
    let before = tree(&out);
    let Some(_guard) = immutable(&out, "unwritable_out_is_a_clear_error_and_changes_nothing") else { return };
    let topo = jumbo(dir.path(), "examples/vxlan-3node.yaml");
    let o = render(&topo, &out, &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot write into --out: Operation not permitted"), "{}", stderr(&o));
    assert_eq!(tree(&out), before);
}

/// #30 item 6: a rename that fails half-way (one immutable file among many
/// changing ones) leaves every file of --out as it was: all nodes or none.
#[test]
fn a_failing_rename_changes_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("o");
    assert_eq!(code(&render("examples/vxlan-3node.yaml", &out, &[])), 0);
    let before = tree(&out);
    let last = out.join("node-3/run/flannel/subnet.env");
    let Some(guard) = immutable(&last, "a_failing_rename_changes_no_file") else { return };
    let topo = jumbo(dir.path(), "examples/vxlan-3node.yaml");
    let o = render(&topo, &out, &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("node-3/run/flannel/subnet.env"), "names the file: {}", stderr(&o));
    assert!(tree(&out) == before, "node-1's and node-2's files were put back");
    drop(guard);
    let o = render(&topo, &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_ne!(tree(&out), before);
}

/// subnet.env as flanneld's WriteSubnetFile (pkg/subnet/subnet.go) writes it
/// for the same leases: the subnet's first address, the IPv4 pair only with
/// IPv4, the IPv6 pair only with IPv6, then MTU and IPMASQ.
#[test]
fn subnet_env_is_flanneld_bytes_for_every_family() {
    let cases = [
        (
            "vxlan-dualstack",
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
        ),
        (
            "vxlan-ipv6only",
            "FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
        ),
        (
            "hostgw-dualstack",
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n",
        ),
    ];
    for (ex, want) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = render(&format!("examples/{ex}.yaml"), dir.path(), &["--locked", "--node", "node-1"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let got = fs::read_to_string(dir.path().join("node-1/run/flannel/subnet.env")).expect("subnet.env");
        assert_eq!(got, want, "{ex}");
    }
}

/// #28: flanneld's `--subnet-file`: subnet.env rendered where the node's
/// consumers look for it, kept across reboots by tmpfiles like the default;
/// paths that would land elsewhere or on another rendered file are exit 2.
#[test]
fn subnet_file_goes_where_it_is_asked_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (default, moved) = (dir.path().join("a"), dir.path().join("b"));
    let r = |out: &std::path::Path, extra: &[&str]| {
        let mut args =
            vec!["render", "examples/vxlan-3node.yaml", "--out", out.to_str().expect("utf8"), "--node", "node-1"];
        args.extend_from_slice(extra);
        run(&args)
    };
    assert_eq!(code(&r(&default, &[])), 0);
    let o = r(&moved, &["--subnet-file", "/run/k8s/flannel-subnet.env"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let want = fs::read(default.join("node-1/run/flannel/subnet.env")).expect("default subnet.env");
    assert_eq!(fs::read(moved.join("node-1/run/k8s/flannel-subnet.env")).expect("moved"), want);
    assert!(!moved.join("node-1/run/flannel/subnet.env").exists());
    let tmpfiles = fs::read_to_string(moved.join("node-1/etc/tmpfiles.d/flannel-gen.conf")).expect("tmpfiles");
    assert!(
        tmpfiles.contains("d /run/k8s 0755") && tmpfiles.contains("f+ /run/k8s/flannel-subnet.env 0644"),
        "{tmpfiles}"
    );
    for bad in [
        "run/flannel/subnet.env",
        "/run/../etc/passwd",
        "/run//x",
        "/etc/flannel-gen/plan.json",
        "/etc/docker/daemon.json",
    ] {
        let out = dir.path().join("bad");
        let o = r(&out, &["--subnet-file", bad]);
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
        assert!(!out.join("node-1").exists(), "{bad}: nothing written");
    }
}
