//! `flannel-gen wireguard keygen`: the node's private key made on the node
//! (mode 0600, atomically, never replaced), its public key printed. The
//! expected public key of a known private key is RFC 7748 §6.1's (Alice),
//! the X25519 function WireGuard uses; flanneld keeps its key the same way
//! (pkg/backend/wireguard/device.go: generated when the file is absent, read
//! when present).

mod common;

use std::os::unix::fs::PermissionsExt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{code, run, stderr, stdout};

fn hex(h: &str) -> Vec<u8> {
    (0..h.len() / 2).map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

fn keygen(file: &std::path::Path) -> std::process::Output {
    run(&["wireguard", "keygen", "--key-file", &file.to_string_lossy()])
}

#[test]
fn a_new_key_is_private_and_kept() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("etc/flannel-gen/wireguard.key");
    let first = keygen(&file);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let public = stdout(&first);
    assert_eq!(public.trim().len(), 44, "{public}");
    assert_eq!(STANDARD.decode(public.trim()).expect("base64").len(), 32);
    let meta = std::fs::metadata(&file).expect("key file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let private = std::fs::read_to_string(&file).expect("key");
    assert_ne!(private.trim(), public.trim(), "the file holds the private key, stdout the public one");
    let leftovers: Vec<_> = std::fs::read_dir(file.parent().expect("dir")).expect("dir").collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left");

    let again = keygen(&file);
    assert_eq!(code(&again), 0);
    assert_eq!(stdout(&again), public, "an existing key is read, not replaced");
    assert_eq!(std::fs::read_to_string(&file).expect("key"), private);
}

#[test]
fn a_known_private_key_gives_its_rfc_7748_public_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("alice.key");
    let alice = STANDARD.encode(hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    std::fs::write(&file, format!("{alice}\n")).expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = keygen(&file);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let want = STANDARD.encode(hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
    assert_eq!(stdout(&out), format!("{want}\n"));
}

#[test]
fn bad_key_files_exit_2_located_and_stay_as_they_are() {
    let dir = tempfile::tempdir().expect("tmp");
    for (name, text, why) in [
        ("short.key", STANDARD.encode([7u8; 31]), "31 bytes"),
        ("garbage.key", "this is not a key".to_string(), "not base64"),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, &text).expect("write");
        let out = keygen(&file);
        assert_eq!(code(&out), 2, "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("{}:1:1: error: ", file.display())) && err.contains(why), "{name}: {err}");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), text, "{name} was changed");
    }
    let out = keygen(dir.path());
    assert_eq!(code(&out), 2, "a directory is not a key file: {}", stderr(&out));
}
