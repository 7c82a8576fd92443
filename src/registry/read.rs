//! An etcd snapshot as flanneld reads it: the network config and one lease
//! per subnet key (pkg/subnet/etcd/registry.go `getSubnets`). Where
//! flanneld would log and skip a key it cannot parse, import stops: a
//! registry it cannot read fully is not imported in part.

use std::path::{Path, PathBuf};

use super::etcd::{Snapshot, Target};
use super::format::{decode_attrs, parse_subnet_key};
use super::{Lease, Origin};
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::json_path::locate;
use crate::topology::netconf::{self, NetConf};

/// The config and the leases, or every problem with them.
pub fn from_etcd(t: &Target, snap: &Snapshot) -> Result<(NetConf, Vec<Lease>, Vec<String>), Diagnostics> {
    let key = t.config_key();
    let Some(config) = &snap.config else {
        return Err(Diagnostics::whole_file(
            &PathBuf::from(format!("etcd:{key}")),
            format!(
                "no such key: is {} the prefix flanneld runs with (--etcd-prefix; the default is {}, the seeds use /atomic.io/network)?",
                t.prefix,
                super::etcd::DEFAULT_PREFIX
            ),
        ));
    };
    let conf = netconf::parse(Path::new(&format!("etcd:{key}")), &config.value);
    let mut problems = Vec::new();
    let mut leases = Vec::new();
    for kv in &snap.subnets {
        let file = PathBuf::from(format!("etcd:{}", kv.key));
        let name = kv.key.strip_prefix(&t.subnets_dir()).unwrap_or(&kv.key);
        let subnets = parse_subnet_key(name).map_err(|m| Diagnostic::new(&file, Pos::FILE, "", m));
        let attrs = decode_attrs(&kv.value).map_err(|bad| {
            bad.into_iter()
                .map(|b| Diagnostic::new(&file, locate(&kv.value, &b.path).unwrap_or(Pos::FILE), b.path, b.message))
                .collect::<Vec<_>>()
        });
        match (subnets, attrs) {
            (Ok((v4, v6)), Ok(attrs)) => {
                let ttl = snap.ttls.get(&kv.lease).copied();
                let origin = Origin::Etcd { key: kv.key.clone(), lease_id: kv.lease, ttl };
                leases.push(Lease { subnet: Some(v4), subnet6: v6, attrs, origin, name: None });
            }
            (s, a) => {
                problems.extend(s.err());
                problems.extend(a.err().into_iter().flatten());
            }
        }
    }
    match conf {
        Ok((conf, warnings)) if problems.is_empty() => Ok((conf, leases, warnings)),
        Ok(_) => Err(Diagnostics(problems)),
        Err(mut d) => {
            d.0.extend(problems);
            Err(d)
        }
    }
}
