//! A WireGuard key as a file or a flag gives it: arbitrary text through the
//! key reader must never panic, and a key it accepts reads back the same.
#![no_main]

use flannel_gen::wireguard::key::Key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(k) = text.parse::<Key>() {
        assert_eq!(k.to_string().parse::<Key>(), Ok(k));
        let _ = k.public();
    }
});
