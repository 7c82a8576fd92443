//! What `import` reads from a registry it does not control: etcd lease
//! values and keys, and `kubectl get nodes -o json`. Must never panic; a
//! lease value that decodes must survive flanneld's encoding unchanged.
#![no_main]

use std::path::Path;

use flannel_gen::registry::format::{decode_attrs, encode_attrs, parse_subnet_key, subnet_key};
use flannel_gen::registry::kube::{Annotations, DEFAULT_PREFIX, read};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(a) = decode_attrs(text) {
        assert_eq!(decode_attrs(&encode_attrs(&a)).ok(), Some(a), "encode/decode round trip");
    }
    let first = text.lines().next().unwrap_or_default();
    if let Ok((v4, v6)) = parse_subnet_key(first) {
        assert_eq!(parse_subnet_key(&subnet_key(v4, v6)), Ok((v4, v6)));
    }
    let ann = Annotations::new(DEFAULT_PREFIX).expect("the default prefix is valid");
    let _ = read(Path::new("nodes.json"), text, &ann);
});
