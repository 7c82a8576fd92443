//! A node's own view of `/run/wireguard`: the UAPI socket path is the same on
//! every node, so each namespace node gets a private mount namespace per
//! flannel-gen call, with its own directory bound there. The userspace
//! implementation apply starts inherits that view.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The userspace WireGuard apply runs (wg-quick's convention, as apply's).
pub fn implementation() -> String {
    std::env::var("WG_QUICK_USERSPACE_IMPLEMENTATION").unwrap_or_else(|_| "wireguard-go".into())
}

/// Where the view is bound.
pub const RUN_WIREGUARD: &str = "/run/wireguard";

/// flannel-gen with `args`, in a private mount namespace whose
/// `/run/wireguard` is `run_dir`.
pub fn on_node(run_dir: &Path, args: &[&str]) -> Output {
    std::fs::create_dir_all(RUN_WIREGUARD).expect("/run/wireguard");
    std::fs::create_dir_all(run_dir).expect("run dir");
    let script = r#"mount --make-rprivate / && mount --bind "$1" /run/wireguard && shift && exec "$@""#;
    Command::new("unshare")
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(run_dir)
        .arg(env!("CARGO_BIN_EXE_flannel-gen"))
        .args(args)
        .current_dir(super::root())
        .output()
        .expect("unshare")
}

/// The wireguard backend's private key, in each node's view.
pub const KEY: &str = "private.key";

/// `vxlan_topology` (a `backend: {type: vxlan, vni: 1, port: 8472}` example
/// with a lock beside it) on the wireguard backend, written to `dir`: the
/// same leases (the lock, copied), a key made in each node's view
/// `dir/views/<node>`, and the public keys recorded with `lock
/// --wireguard-key`. Returns the topology and the views' directory.
pub fn on_wireguard(dir: &Path, vxlan_topology: &str) -> (String, PathBuf) {
    use super::{code, run, stderr, stdout};
    let source = super::root().join(vxlan_topology);
    let y = std::fs::read_to_string(&source).expect("topology");
    let backend = "backend:\n  type: vxlan\n  vni: 1\n  port: 8472\n";
    assert!(y.contains(backend), "{vxlan_topology}: its backend block changed:\n{y}");
    let y = y.replace(backend, &format!("backend:\n  type: wireguard\n  keyFile: {RUN_WIREGUARD}/{KEY}\n"));
    let t = dir.join("wg.yaml");
    std::fs::write(&t, &y).expect("write");
    std::fs::copy(source.with_extension("lock"), dir.join("wg.lock")).expect("lock");
    let views = dir.join("views");
    let mut args = vec!["lock".to_string(), t.to_string_lossy().into_owned()];
    let nodes = y.lines().filter_map(|l| l.strip_prefix("  - name: ")).map(str::trim);
    for n in nodes {
        std::fs::create_dir_all(views.join(n)).expect("view");
        let key = views.join(n).join(KEY);
        let o = run(&["wireguard", "keygen", "--key-file", &key.to_string_lossy()]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        args.extend(["--wireguard-key".into(), format!("{n}={}", stdout(&o).trim())]);
    }
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    (t.to_string_lossy().into_owned(), views)
}
