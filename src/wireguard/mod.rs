//! flannel's wireguard backend: the node's keys ([`key`], `flannel-gen
//! wireguard keygen`) and the userspace implementation's configuration
//! protocol ([`uapi`]). The devices and their peers are plan objects
//! ([`crate::plan::objects::WireguardDevice`]).

pub mod key;
pub mod keyfile;
pub mod uapi;

/// Where `keygen` keeps the node's private key, and where the plan's
/// devices read it, unless the topology's `keyFile` says otherwise.
pub const DEFAULT_KEY_FILE: &str = "/etc/flannel-gen/wireguard.key";
