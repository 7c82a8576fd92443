//! What a userspace WireGuard implementation answers on its UAPI socket:
//! arbitrary text through the `get=1` parser must never panic, and a
//! configuration it reads, written back as a `set=1` request and answered
//! the way wireguard-go answers, reads the same.
#![no_main]

use flannel_gen::wireguard::key::Key;
use flannel_gen::wireguard::uapi::{DeviceConfig, parse_get, set_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(dev) = parse_get(text) else { return };
    // The private key is not kept, so a fixed one stands in.
    let private = Key::from_hex(&"11".repeat(32)).expect("hex");
    let want = DeviceConfig { public_key: Some(private.public()), ..dev };
    let answer: String = set_request(&private, &want)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("set=") && !l.starts_with("replace_"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + "errno=0\n\n";
    assert_eq!(parse_get(&answer).ok(), Some(want));
});
