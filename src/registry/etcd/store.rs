//! A blocking client of etcd's JSON gateway (`POST /v3/kv/range`,
//! `/v3/kv/txn`, `/v3/kv/lease/timetolive`; served by etcd 3.4 and later on
//! the client port, TLS included), so the build needs neither protoc nor a
//! gRPC stack. Reads and guarded transactions only.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use super::{EtcdError, Guard, Kv, Snapshot, Target, Tls, Write};

/// A client bound to the first endpoint that answered.
pub struct Store {
    target: Target,
    agent: ureq::Agent,
    /// `scheme://host:port` of the endpoint in use, without a trailing `/`.
    base: String,
}

fn read_file(path: &Path) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|source| EtcdError::TlsFile { path: path.to_path_buf(), source })
}

fn pem_error(path: &Path, e: ureq::Error) -> EtcdError {
    EtcdError::TlsFile { path: path.to_path_buf(), source: std::io::Error::new(std::io::ErrorKind::InvalidData, e) }
}

/// flanneld's TLS flags as a rustls configuration: the CA file or the
/// system's roots, and the client certificate when given.
fn tls_config(tls: &Tls) -> Result<TlsConfig, EtcdError> {
    let roots = match &tls.cacert {
        Some(ca) => {
            let cert = Certificate::from_pem(&read_file(ca)?).map_err(|e| pem_error(ca, e))?;
            RootCerts::new_with_certs(&[cert])
        }
        None => RootCerts::PlatformVerifier,
    };
    let mut b = TlsConfig::builder().root_certs(roots);
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        let chain = Certificate::from_pem(&read_file(cert)?).map_err(|e| pem_error(cert, e))?;
        let key = PrivateKey::from_pem(&read_file(key)?).map_err(|e| pem_error(key, e))?;
        b = b.client_cert(Some(ClientCert::new_with_certs(&[chain], key)));
    }
    Ok(b.build())
}

/// The first key after every key that starts with `prefix` (etcd's range_end).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The gateway writes int64 fields as JSON strings and leaves out zero values.
fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

#[derive(Deserialize, Default)]
struct Header {
    #[serde(default)]
    revision: Value,
}

#[derive(Deserialize)]
struct RangeKv {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    lease: Value,
    #[serde(default)]
    mod_revision: Value,
}

#[derive(Deserialize)]
struct RangeResponse {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    kvs: Vec<RangeKv>,
}

#[derive(Deserialize)]
struct TxnResponse {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    succeeded: bool,
}

#[derive(Deserialize)]
struct TtlResponse {
    #[serde(rename = "TTL", default)]
    ttl: Value,
}

/// A decoded key or value: etcd keys and values are bytes, ours are text.
fn text(encoded: &str, key: &str) -> Result<String, EtcdError> {
    let bytes = B64.decode(encoded).map_err(|_| EtcdError::NotText { key: key.to_string() })?;
    String::from_utf8(bytes).map_err(|_| EtcdError::NotText { key: key.to_string() })
}

impl Store {
    /// Connects to the first endpoint that answers a read; none is `Unreachable`.
    pub fn connect(target: &Target) -> Result<Store, EtcdError> {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(target.timeout))
            .http_status_as_error(false)
            .tls_config(tls_config(&target.tls)?)
            .build();
        let agent = ureq::Agent::new_with_config(config);
        let mut last = String::from("no endpoint given");
        for endpoint in &target.endpoints {
            let store =
                Store { target: target.clone(), agent: agent.clone(), base: endpoint.trim_end_matches('/').into() };
            // One cheap read proves the store answers.
            let probe = json!({"key": b64(target.config_key().as_bytes()), "keys_only": true});
            match store.call("/v3/kv/range", &probe, "connecting") {
                Ok(_) => return Ok(store),
                Err(e) => last = e.to_string(),
            }
        }
        Err(EtcdError::Unreachable { endpoints: target.endpoint_list(), message: last })
    }

    fn failed(&self, what: &str, message: impl std::fmt::Display) -> EtcdError {
        EtcdError::Request { endpoints: self.target.endpoint_list(), what: what.into(), message: message.to_string() }
    }

    /// One gateway call; a non-200 answer carries etcd's own message.
    fn call(&self, path: &str, body: &Value, what: &str) -> Result<Value, EtcdError> {
        let mut resp =
            self.agent.post(format!("{}{path}", self.base)).send_json(body).map_err(|e| self.failed(what, e))?;
        let status = resp.status();
        let answer: Value = resp.body_mut().read_json().map_err(|e| self.failed(what, e))?;
        if status != 200 {
            let message = answer.get("message").or_else(|| answer.get("error")).and_then(Value::as_str);
            return Err(self.failed(what, format!("HTTP {status}: {}", message.unwrap_or("no message"))));
        }
        Ok(answer)
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, v: Value, what: &str) -> Result<T, EtcdError> {
        serde_json::from_value(v).map_err(|e| self.failed(what, format!("unexpected answer: {e}")))
    }

    /// Keys under `prefix`, at `revision` when given (0: the newest).
    fn get_prefix(&mut self, prefix: &str, revision: i64) -> Result<(i64, Vec<Kv>), EtcdError> {
        let what = format!("reading {prefix}");
        let body = json!({"key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix)), "revision": revision.to_string()});
        let resp: RangeResponse = self.decode(self.call("/v3/kv/range", &body, &what)?, &what)?;
        let mut out = Vec::with_capacity(resp.kvs.len());
        for kv in resp.kvs {
            let key = text(&kv.key, &kv.key)?;
            let value = text(&kv.value, &key)?;
            out.push(Kv { key, value, lease: int(&kv.lease), mod_revision: int(&kv.mod_revision) });
        }
        Ok((int(&resp.header.revision), out))
    }

    fn lease_ttl(&self, id: i64) -> Result<i64, EtcdError> {
        let what = format!("reading lease {id:x}");
        let body = json!({"ID": id.to_string()});
        let resp: TtlResponse = self.decode(self.call("/v3/kv/lease/timetolive", &body, &what)?, &what)?;
        Ok(int(&resp.ttl))
    }

    /// The config, every subnet key with its lease TTL, and keys under
    /// `extra`: all read at one revision, so a publish running beside this
    /// one cannot show half its work (a key without its record).
    pub fn snapshot(&mut self, extra: Option<&str>) -> Result<Snapshot, EtcdError> {
        let (revision, subnets) = self.get_prefix(&self.target.subnets_dir(), 0)?;
        let config_key = self.target.config_key();
        let (_, config) = self.get_prefix(&config_key, revision)?;
        let config = config.into_iter().find(|kv| kv.key == config_key);
        let extra = match extra {
            Some(p) => self.get_prefix(p, revision)?.1,
            None => Vec::new(),
        };
        let mut ttls = BTreeMap::new();
        for id in subnets.iter().map(|kv| kv.lease).filter(|id| *id != 0) {
            if let std::collections::btree_map::Entry::Vacant(slot) = ttls.entry(id) {
                slot.insert(self.lease_ttl(id)?);
            }
        }
        Ok(Snapshot { revision, config, subnets, ttls, extra })
    }

    /// One atomic transaction: every write if every guard holds, else none.
    /// Returns whether it was applied, and the store's revision after it.
    pub fn commit(&mut self, guards: &[Guard], writes: &[Write]) -> Result<(bool, i64), EtcdError> {
        let compare: Vec<Value> = guards
            .iter()
            .map(|g| match g {
                Guard::Absent(k) => {
                    json!({"key": b64(k.as_bytes()), "target": "VERSION", "result": "EQUAL", "version": "0"})
                }
                Guard::ModRevision(k, r) => {
                    json!({"key": b64(k.as_bytes()), "target": "MOD", "result": "EQUAL", "mod_revision": r.to_string()})
                }
            })
            .collect();
        let success: Vec<Value> = writes
            .iter()
            .map(|w| match w {
                Write::Put { key, value } => {
                    json!({"request_put": {"key": b64(key.as_bytes()), "value": b64(value.as_bytes())}})
                }
                Write::Delete { key } => json!({"request_delete_range": {"key": b64(key.as_bytes())}}),
            })
            .collect();
        let body = json!({"compare": compare, "success": success});
        let resp: TxnResponse = self.decode(self.call("/v3/kv/txn", &body, "transaction")?, "transaction")?;
        Ok((resp.succeeded, int(&resp.header.revision)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end("/a/subnets/"), b"/a/subnets0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }

    #[test]
    fn gateway_integers_come_as_strings_numbers_or_not_at_all() {
        assert_eq!(int(&json!("7587882929432107010")), 7587882929432107010);
        assert_eq!(int(&json!(12)), 12);
        assert_eq!(int(&Value::Null), 0);
    }
}
