//! The etcd v3 store flanneld uses (pkg/subnet/etcd/registry.go): keys
//! `<prefix>/config` and `<prefix>/subnets/<key>`. A blocking facade over
//! `etcd-client` (tonic) on a current-thread runtime; reads and guarded
//! transactions only — nothing here decides what to write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, TlsOptions};
use etcd_client::{Txn, TxnOp};

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

/// A connected client and the runtime it runs on.
pub struct Store {
    target: Target,
    client: Client,
    rt: tokio::runtime::Runtime,
}

fn read_file(path: &Path) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|source| EtcdError::TlsFile { path: path.to_path_buf(), source })
}

fn tls_options(tls: &Tls) -> Result<Option<TlsOptions>, EtcdError> {
    if tls.cacert.is_none() && tls.cert.is_none() {
        return Ok(None);
    }
    let mut o = TlsOptions::new();
    o = match &tls.cacert {
        Some(ca) => o.ca_certificate(Certificate::from_pem(read_file(ca)?)),
        None => o.with_native_roots(),
    };
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        o = o.identity(Identity::from_pem(read_file(cert)?, read_file(key)?));
    }
    Ok(Some(o))
}

impl Store {
    /// Connects; an endpoint that does not answer is `Unreachable`.
    pub fn connect(target: &Target) -> Result<Store, EtcdError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
            EtcdError::Request { endpoints: target.endpoint_list(), what: "runtime".into(), message: e.to_string() }
        })?;
        let mut opts = ConnectOptions::new().with_connect_timeout(target.timeout).with_timeout(target.timeout);
        if let Some(tls) = tls_options(&target.tls)? {
            opts = opts.with_tls(tls);
        }
        let unreachable = |e: &dyn std::fmt::Display| EtcdError::Unreachable {
            endpoints: target.endpoint_list(),
            message: e.to_string(),
        };
        let connect = Client::connect(target.endpoints.clone(), Some(opts));
        let mut client = rt
            .block_on(async { tokio::time::timeout(target.timeout, connect).await })
            .map_err(|e| unreachable(&e))?
            .map_err(|e| unreachable(&e))?;
        // The channel connects lazily: one cheap read proves the store answers.
        let probe = client.get(target.config_key(), Some(GetOptions::new().with_keys_only()));
        rt.block_on(async { tokio::time::timeout(target.timeout, probe).await })
            .map_err(|e| unreachable(&e))?
            .map_err(|e| unreachable(&e))?;
        Ok(Store { target: target.clone(), client, rt })
    }

    fn failed(&self, what: &str) -> impl Fn(etcd_client::Error) -> EtcdError + '_ {
        let what = what.to_string();
        move |e| EtcdError::Request {
            endpoints: self.target.endpoint_list(),
            what: what.clone(),
            message: e.to_string(),
        }
    }

    fn get_prefix(&mut self, prefix: &str) -> Result<(i64, Vec<Kv>), EtcdError> {
        let req = self.client.get(prefix, Some(GetOptions::new().with_prefix()));
        let resp = self.rt.block_on(req).map_err(self.failed(&format!("reading {prefix}")))?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let mut out = Vec::with_capacity(resp.kvs().len());
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let value = kv.value_str().map_err(|_| EtcdError::NotText { key: key.clone() })?.to_string();
            out.push(Kv { key, value, lease: kv.lease(), mod_revision: kv.mod_revision() });
        }
        Ok((revision, out))
    }

    /// The config, every subnet key with its lease TTL, and keys under `extra`.
    pub fn snapshot(&mut self, extra: Option<&str>) -> Result<Snapshot, EtcdError> {
        let (revision, subnets) = self.get_prefix(&self.target.subnets_dir())?;
        let config_key = self.target.config_key();
        let (_, config) = self.get_prefix(&config_key)?;
        let config = config.into_iter().find(|kv| kv.key == config_key);
        let extra = match extra {
            Some(p) => self.get_prefix(p)?.1,
            None => Vec::new(),
        };
        let mut ttls = BTreeMap::new();
        for id in subnets.iter().map(|kv| kv.lease).filter(|id| *id != 0) {
            if let std::collections::btree_map::Entry::Vacant(slot) = ttls.entry(id) {
                let req = self.client.lease_time_to_live(id, None);
                let ttl = self.rt.block_on(req).map_err(self.failed(&format!("reading lease {id:x}")))?.ttl();
                slot.insert(ttl);
            }
        }
        Ok(Snapshot { revision, config, subnets, ttls, extra })
    }

    /// One atomic transaction: every write if every guard holds, else none.
    /// Returns whether it was applied, and the store's revision after it.
    pub fn commit(&mut self, guards: &[Guard], writes: &[Write]) -> Result<(bool, i64), EtcdError> {
        let compares: Vec<Compare> = guards
            .iter()
            .map(|g| match g {
                Guard::Absent(k) => Compare::version(k.as_str(), CompareOp::Equal, 0),
                Guard::ModRevision(k, r) => Compare::mod_revision(k.as_str(), CompareOp::Equal, *r),
            })
            .collect();
        let ops: Vec<TxnOp> = writes
            .iter()
            .map(|w| match w {
                Write::Put { key, value } => TxnOp::put(key.as_str(), value.as_str(), None),
                Write::Delete { key } => TxnOp::delete(key.as_str(), None),
            })
            .collect();
        let txn = Txn::new().when(compares).and_then(ops);
        let req = self.client.txn(txn);
        let resp = self.rt.block_on(req).map_err(self.failed("transaction"))?;
        Ok((resp.succeeded(), resp.header().map_or(0, |h| h.revision())))
    }
}
