//! flannel's wireguard backend, as far as it is built: the node's keys
//! ([`key`], `flannel-gen wireguard keygen`). The device, its peers, the
//! lock's public keys and the UAPI transport are to come (issue #24).

pub mod key;
