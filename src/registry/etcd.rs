//! The etcd v3 store flanneld uses (pkg/subnet/etcd/registry.go): keys
//! `<prefix>/config` and `<prefix>/subnets/<key>`. Here what a snapshot and
//! a guarded write are; the client ([`Store`], feature `etcd`) is in
//! [`store`]. Nothing here decides what to write.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "etcd")]
mod store;
#[cfg(feature = "etcd")]
pub use store::Store;

/// flanneld's default `--etcd-prefix`.
pub const DEFAULT_PREFIX: &str = "/coreos.com/network";

/// Where the store is and how to talk to it.
#[derive(Debug, Clone)]
pub struct Target {
    pub endpoints: Vec<String>,
    /// Normalised: starts with `/`, no trailing `/` (as Go's path.Join leaves it).
    pub prefix: String,
    pub tls: Tls,
    pub timeout: Duration,
}

/// flanneld's --etcd-cafile/--etcd-certfile/--etcd-keyfile.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl Target {
    pub fn config_key(&self) -> String {
        format!("{}/config", self.prefix)
    }

    pub fn subnets_dir(&self) -> String {
        format!("{}/subnets/", self.prefix)
    }

    pub fn endpoint_list(&self) -> String {
        self.endpoints.join(",")
    }
}

/// Checks a `--prefix` and writes it the way flanneld's path.Join does.
pub fn normalise_prefix(p: &str) -> Result<String, String> {
    let trimmed = p.trim_end_matches('/');
    if !p.starts_with('/') || trimmed.is_empty() || trimmed.contains("//") {
        return Err(format!("--prefix `{p}` must be an absolute key path like {DEFAULT_PREFIX}"));
    }
    Ok(trimmed.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("cannot reach etcd at {endpoints}: {message}")]
    Unreachable { endpoints: String, message: String },
    #[error("etcd at {endpoints}: {what}: {message}")]
    Request { endpoints: String, what: String, message: String },
    #[error("{}: {source}", path.display())]
    TlsFile { path: PathBuf, source: std::io::Error },
    #[error("etcd key {key}: the value is not UTF-8 text")]
    NotText { key: String },
}

/// One key as read, with what the ownership rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: String,
    pub value: String,
    /// etcd lease id; 0 for a key without a lease (a reservation).
    pub lease: i64,
    pub mod_revision: i64,
}

/// Everything under the prefix that flanneld and flannel-gen read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub revision: i64,
    pub config: Option<Kv>,
    pub subnets: Vec<Kv>,
    /// Seconds left per etcd lease id (only ids that keys use).
    pub ttls: BTreeMap<i64, i64>,
    /// Keys under an extra prefix (flannel-gen's ownership records).
    pub extra: Vec<Kv>,
}

/// A condition a write depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// The key does not exist.
    Absent(String),
    /// The key is unchanged since it was read.
    ModRevision(String, i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// A put without a lease: never expires.
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
}
