//! What `publish etcd` writes, decided from a snapshot of the store. Pure:
//! the store is read before and written after, in [`super::etcd`].
//!
//! Each flannel-gen node's lease goes to `<prefix>/subnets/<key>` in
//! flanneld's exact format as a reservation (a key without an etcd lease,
//! which never expires — flannel's Documentation/reservations.md).
//!
//! Ownership: beside each key it writes, flannel-gen records what it wrote
//! under `<prefix>/flannel-gen/owned/<key>` (outside `subnets/`, so
//! flanneld never reads it). A subnet key is flannel-gen's only while that
//! record names this cluster, the key has no etcd lease and its value is
//! byte-identical to the recorded one. Anything else — a flanneld lease,
//! a hand-made reservation, a value someone edited — is never changed or
//! deleted; `--adopt NODE` takes over a key only when its facts already
//! equal the node's (the node moving off flanneld).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::etcd::{Guard, Kv, Snapshot, Target, Write};
use super::format::{decode_attrs, encode_attrs, parse_subnet_key, subnet_key};
use super::{LeaseAttrs, Published};
use crate::netaddr::overlaps;
use crate::topology::Cluster;

/// etcd's default `--max-txn-ops`; one transaction holds at most this many writes.
pub const MAX_TXN_OPS: usize = 128;

/// flannel-gen's record of a key it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub cluster: String,
    pub node: String,
    pub value: String,
}

pub fn records_dir(t: &Target) -> String {
    format!("{}/flannel-gen/owned/", t.prefix)
}

/// One subnet key flannel-gen wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub node: String,
    pub key: String,
    pub value: String,
    pub published: Published,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `<prefix>/config` is absent: written from the topology.
    CreateConfig {
        key: String,
        value: String,
    },
    Create(Entry),
    Keep(Entry),
    Update {
        entry: Entry,
        old: Kv,
    },
    /// A key with the node's exact facts, not ours, taken over (`--adopt`).
    Adopt {
        entry: Entry,
        old: Kv,
        ttl: Option<i64>,
    },
    /// A key with the node's exact facts that is someone else's.
    LeftAlone {
        entry: Entry,
        old: Kv,
        ttl: Option<i64>,
    },
    /// Ours, for a node no longer in the topology.
    Delete {
        old: Kv,
        node: String,
    },
    /// Our record for a key that someone else now holds, or that is gone.
    Forget {
        record_key: String,
        key: String,
        node: String,
    },
}

impl Action {
    /// Guards and writes; `None` when nothing is written.
    fn unit(&self, t: &Target, snap: &Index) -> Option<(Vec<Guard>, Vec<Write>)> {
        let rec = |key: &str| format!("{}{}", records_dir(t), short(t, key));
        let put = |key: &str, value: &str| Write::Put { key: key.to_string(), value: value.to_string() };
        let rec_guard = |key: &str| match snap.records.get(short(t, key)) {
            Some(r) => Guard::ModRevision(rec(key), r.kv.mod_revision),
            None => Guard::Absent(rec(key)),
        };
        let record = |e: &Entry| {
            let r = Record { cluster: snap.cluster.clone(), node: e.node.clone(), value: e.value.clone() };
            put(&rec(&e.key), &serde_json::to_string(&r).unwrap_or_default())
        };
        match self {
            Action::CreateConfig { key, value } => Some((vec![Guard::Absent(key.clone())], vec![put(key, value)])),
            Action::Create(e) => {
                Some((vec![Guard::Absent(e.key.clone()), rec_guard(&e.key)], vec![put(&e.key, &e.value), record(e)]))
            }
            Action::Update { entry: e, old } | Action::Adopt { entry: e, old, .. } => Some((
                vec![Guard::ModRevision(old.key.clone(), old.mod_revision), rec_guard(&e.key)],
                vec![put(&e.key, &e.value), record(e)],
            )),
            Action::Delete { old, .. } => Some((
                vec![Guard::ModRevision(old.key.clone(), old.mod_revision), rec_guard(&old.key)],
                vec![Write::Delete { key: old.key.clone() }, Write::Delete { key: rec(&old.key) }],
            )),
            // Guarded on the key too: a key made since the snapshot keeps its record.
            Action::Forget { record_key, key, .. } => {
                let key_guard = match snap.subnets.get(key) {
                    Some(kv) => Guard::ModRevision(key.clone(), kv.mod_revision),
                    None => Guard::Absent(key.clone()),
                };
                Some((vec![rec_guard(key), key_guard], vec![Write::Delete { key: record_key.clone() }]))
            }
            Action::Keep(_) | Action::LeftAlone { .. } => None,
        }
    }
}

/// The part of a key after `<prefix>/subnets/`.
fn short<'a>(t: &Target, key: &'a str) -> &'a str {
    key.strip_prefix(&t.subnets_dir()).unwrap_or(key)
}

#[derive(Debug, Clone)]
struct OwnedRecord {
    kv: Kv,
    record: Option<Record>,
}

/// The snapshot, indexed.
struct Index {
    cluster: String,
    subnets: BTreeMap<String, Kv>,
    /// By short key.
    records: BTreeMap<String, OwnedRecord>,
    ttls: BTreeMap<i64, i64>,
}

impl Index {
    fn new(t: &Target, cluster: &str, snap: &Snapshot) -> Index {
        let dir = records_dir(t);
        let records = snap
            .extra
            .iter()
            .filter_map(|kv| {
                let short = kv.key.strip_prefix(&dir)?.to_string();
                Some((short, OwnedRecord { kv: kv.clone(), record: serde_json::from_str(&kv.value).ok() }))
            })
            .collect();
        Index {
            cluster: cluster.to_string(),
            subnets: snap.subnets.iter().map(|kv| (kv.key.clone(), kv.clone())).collect(),
            records,
            ttls: snap.ttls.clone(),
        }
    }

    /// Whether flannel-gen (this cluster) wrote `kv` and nobody changed it since.
    fn ours(&self, t: &Target, kv: &Kv) -> Option<&Record> {
        let r = self.records.get(short(t, &kv.key))?.record.as_ref()?;
        (r.cluster == self.cluster && kv.lease == 0 && kv.value == r.value).then_some(r)
    }

    fn ttl(&self, kv: &Kv) -> Option<i64> {
        (kv.lease != 0).then(|| self.ttls.get(&kv.lease).copied()).flatten()
    }
}

/// What publishing would do, or why it must not.
#[derive(Debug, Clone, Default)]
pub struct PublishPlan {
    pub actions: Vec<Action>,
    pub conflicts: Vec<String>,
    pub warnings: Vec<String>,
    /// Guarded write units, in order (config and deletions first).
    units: Vec<(Vec<Guard>, Vec<Write>)>,
}

impl PublishPlan {
    pub fn writes(&self) -> usize {
        self.units.iter().map(|u| u.1.len()).sum()
    }

    /// Transactions of at most [`MAX_TXN_OPS`] operations each; a unit is
    /// never split, so every transaction leaves the store consistent.
    pub fn transactions(&self) -> Vec<(Vec<Guard>, Vec<Write>)> {
        let mut out: Vec<(Vec<Guard>, Vec<Write>)> = Vec::new();
        for (g, w) in &self.units {
            match out.last_mut() {
                Some(last) if last.1.len() + w.len() <= MAX_TXN_OPS && last.0.len() + g.len() <= MAX_TXN_OPS => {
                    last.0.extend(g.iter().cloned());
                    last.1.extend(w.iter().cloned());
                }
                _ => out.push((g.clone(), w.clone())),
            }
        }
        out
    }
}

/// Decides every write; conflicts stop all of them.
pub fn plan(t: &Target, cluster: &Cluster, published: &[Published], snap: &Snapshot, adopt: &[String]) -> PublishPlan {
    let idx = Index::new(t, &cluster.name, snap);
    let mut p = PublishPlan::default();
    let mut entries = Vec::new();
    for pb in published {
        match pb.subnet {
            Some(v4) => {
                let key = format!("{}{}", t.subnets_dir(), subnet_key(v4, pb.subnet6));
                entries.push(Entry { node: pb.node.clone(), key, value: encode_attrs(&pb.attrs), published: pb.clone() });
            }
            None => p.conflicts.push(format!(
                "node {}: flanneld's etcd registry keys every lease by its IPv4 subnet; an IPv6-only cluster cannot be published to etcd",
                pb.node
            )),
        }
    }
    config_action(t, cluster, snap, &mut p);
    let wanted: BTreeSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    stale(t, &idx, &wanted, &mut p);
    let foreign = foreign_keys(t, &idx, &wanted, &mut p);
    for e in &entries {
        entry_action(t, &idx, e, adopt, &mut p);
        foreign_overlaps(&foreign, e, &mut p);
    }
    if p.conflicts.is_empty() {
        p.units = p.actions.iter().filter_map(|a| a.unit(t, &idx)).collect();
    }
    p
}

fn config_action(t: &Target, cluster: &Cluster, snap: &Snapshot, p: &mut PublishPlan) {
    match &snap.config {
        None => {
            if cluster.backend.wireguard.as_ref().is_some_and(|w| w.psk_file.is_some()) {
                p.warnings.push(format!(
                    "{}: written without `PSK` (the pre-shared key is not in git); flanneld nodes need the same key: add it to the config's Backend by hand",
                    t.config_key()
                ));
            }
            p.actions.push(Action::CreateConfig { key: t.config_key(), value: super::config::netconf_json(cluster) })
        }
        Some(kv) => {
            let (errors, warnings) = super::config::compare(&kv.key, &kv.value, cluster);
            p.conflicts.extend(errors);
            p.warnings.extend(warnings);
        }
    }
}

/// Our keys for nodes the topology no longer has (or whose key moved), and
/// records of ours that no longer describe their key.
fn stale(t: &Target, idx: &Index, wanted: &BTreeSet<&str>, p: &mut PublishPlan) {
    for (short_key, rec) in &idx.records {
        let key = format!("{}{short_key}", t.subnets_dir());
        let node = rec.record.as_ref().map_or_else(|| "?".to_string(), |r| r.node.clone());
        if rec.record.as_ref().is_some_and(|r| r.cluster != idx.cluster) {
            continue;
        }
        // A wanted key is decided with its entry, which rewrites the record
        // (one transaction must not both delete and put it).
        if wanted.contains(key.as_str()) {
            continue;
        }
        match idx.subnets.get(&key) {
            Some(kv) if idx.ours(t, kv).is_some() => p.actions.push(Action::Delete { old: kv.clone(), node }),
            _ => p.actions.push(Action::Forget { record_key: rec.kv.key.clone(), key, node }),
        }
    }
}

fn same_facts(kv: &Kv, attrs: &LeaseAttrs) -> bool {
    decode_attrs(&kv.value).is_ok_and(|a| &a == attrs)
}

fn entry_action(t: &Target, idx: &Index, e: &Entry, adopt: &[String], p: &mut PublishPlan) {
    let Some(old) = idx.subnets.get(&e.key) else {
        p.actions.push(Action::Create(e.clone()));
        return;
    };
    if idx.ours(t, old).is_some() {
        p.actions.push(if old.value == e.value {
            Action::Keep(e.clone())
        } else {
            Action::Update { entry: e.clone(), old: old.clone() }
        });
        return;
    }
    let ttl = idx.ttl(old);
    if same_facts(old, &e.published.attrs) {
        p.actions.push(if adopt.contains(&e.node) {
            Action::Adopt { entry: e.clone(), old: old.clone(), ttl }
        } else {
            Action::LeftAlone { entry: e.clone(), old: old.clone(), ttl }
        });
        return;
    }
    let holder = if old.lease != 0 { "a flanneld lease" } else { "a reservation flannel-gen did not write" };
    p.conflicts.push(format!(
        "{}: node {} needs this key, but it is {holder} with other facts: {} (flannel-gen would write {}); pin node {} to a free subnet (`subnet:` in the topology) or remove the key",
        old.key, e.node, old.value, e.value, e.node
    ));
}

/// A subnet key that is not flannel-gen's nor wanted, parsed once.
struct Foreign<'a> {
    key: &'a str,
    v4: ipnet::Ipv4Net,
    v6: Option<ipnet::Ipv6Net>,
    public_ip: Option<std::net::Ipv4Addr>,
}

/// The keys others hold (ours are either wanted, and decided with their
/// entry, or deleted in this publish); unreadable ones warned about once.
fn foreign_keys<'a>(t: &Target, idx: &'a Index, wanted: &BTreeSet<&str>, p: &mut PublishPlan) -> Vec<Foreign<'a>> {
    let mut out = Vec::new();
    for (key, kv) in &idx.subnets {
        if wanted.contains(key.as_str()) || idx.ours(t, kv).is_some() {
            continue;
        }
        match parse_subnet_key(short(t, key)) {
            Ok((v4, v6)) => {
                let public_ip = decode_attrs(&kv.value).ok().map(|a| a.public_ip);
                out.push(Foreign { key, v4, v6, public_ip });
            }
            Err(_) => p.warnings.push(format!("{key}: not a subnet key flanneld reads; ignored")),
        }
    }
    out
}

/// Another key whose subnet overlaps the entry's, or that claims its public
/// IP (flanneld on that address would reuse that lease).
fn foreign_overlaps(foreign: &[Foreign], e: &Entry, p: &mut PublishPlan) {
    let pb = &e.published;
    for f in foreign {
        let clash4 = pb.subnet.is_some_and(|s| overlaps(s.into(), f.v4.into()));
        let clash6 = matches!((pb.subnet6, f.v6), (Some(a), Some(b)) if overlaps(a.into(), b.into()));
        if clash4 || clash6 {
            p.conflicts.push(format!("{} overlaps node {}'s subnet ({})", f.key, e.node, e.key));
        } else if f.public_ip == Some(pb.attrs.public_ip) {
            p.conflicts.push(format!(
                "{} claims node {}'s public IP {} with another subnet; flanneld there would reuse it (remove it, or pin the node to it)",
                f.key, e.node, pb.attrs.public_ip
            ));
        }
    }
}

#[cfg(test)]
mod tests;
