//! A node's own view of `/run/wireguard`: the UAPI socket path is the same on
//! every node, so each namespace node gets a private mount namespace per
//! flannel-gen call, with its own directory bound there. The userspace
//! implementation apply starts inherits that view.

use std::path::Path;
use std::process::{Command, Output};

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
