//! Stable allocation of node subnets and VTEP MACs, per address family.
//!
//! Order of precedence per node: a pin in the topology, then the node's
//! lease in the lock file, then the first free subnet (in file order) and a
//! MAC derived from cluster + node name. So adding, removing or reordering
//! nodes never moves a node that already holds a lease. A lease that no
//! longer fits (outside the network, taken by another node's pin) is an
//! error located where it is written, never a silent re-allocation.

use foldhash::{HashMap, HashMapExt};
use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, Diagnostics};
use crate::lock::{self, FamilyLease, Leases, Lock};
use crate::mac::Mac;
use crate::netaddr::{Family, PerFamily, SubnetPool, to_bits};
use crate::topology::{Cluster, Node};

/// A MAC derived from cluster and node name; `attempt` > 0 only after a collision.
pub fn derive_mac(family: Family, cluster: &str, node: &str, attempt: u32) -> Mac {
    let mut h = Sha256::new();
    h.update(match family {
        Family::V4 => &b"flannel-gen vtep\0"[..],
        Family::V6 => &b"flannel-gen vtep6\0"[..],
    });
    h.update(cluster.as_bytes());
    h.update(b"\0");
    h.update(node.as_bytes());
    if attempt > 0 {
        h.update(attempt.to_be_bytes());
    }
    let d = h.finalize();
    Mac::local_unicast([d[0], d[1], d[2], d[3], d[4], d[5]])
}

/// Leases for every node of `cluster`, keeping those recorded in `lock`.
pub fn allocate(cluster: &Cluster, lock: Option<&Lock>) -> Result<Leases, Diagnostics> {
    let mut problems = Vec::new();
    let mut per_family: Vec<(Family, Vec<FamilyLease>)> = Vec::new();
    for (family, pool) in cluster.pools.iter() {
        let mut a = FamilyAlloc::new(cluster, family, *pool);
        let lock = lock.filter(|l| a.lock_fits(l, &mut problems));
        a.take_pins();
        if let Some(l) = lock {
            a.take_leases(l, &mut problems);
        }
        if let Some(leases) = a.finish(&mut problems) {
            per_family.push((family, leases));
        }
    }
    if !problems.is_empty() {
        return Err(Diagnostics(problems).sorted());
    }
    let mut out = Leases::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let mut l = PerFamily::default();
        for (family, leases) in &per_family {
            l.set(*family, leases.get(i).copied());
        }
        out.insert(node.name.clone(), l);
    }
    Ok(out)
}

/// The allocation of one family, node by node (in file order).
struct FamilyAlloc<'a> {
    cluster: &'a Cluster,
    family: Family,
    pool: SubnetPool,
    subnets: Vec<Option<IpNet>>,
    macs: Vec<Option<Mac>>,
    /// Subnet / MAC -> the node (index) holding it.
    taken_subnets: HashMap<IpNet, usize>,
    taken_macs: HashMap<Mac, usize>,
}

impl<'a> FamilyAlloc<'a> {
    fn new(cluster: &'a Cluster, family: Family, pool: SubnetPool) -> Self {
        let n = cluster.nodes.len();
        FamilyAlloc {
            cluster,
            family,
            pool,
            subnets: vec![None; n],
            macs: vec![None; n],
            taken_subnets: HashMap::new(),
            taken_macs: HashMap::new(),
        }
    }

    /// The lock's leases of this family apply only to the network it was
    /// written for; another network means renumbering every node, which
    /// must be asked for explicitly.
    fn lock_fits(&self, lock: &Lock, problems: &mut Vec<Diagnostic>) -> bool {
        let Some(locked) = lock.networks.get(self.family) else { return false };
        if locked.network == self.pool.network && locked.subnet_len == self.pool.len {
            return true;
        }
        problems.push(Diagnostic::new(
            &lock.path,
            locked.pos,
            lock::keys(self.family)[0],
            format!(
                "the lock was written for {} with /{} subnets, the topology has {} with /{}: every node would be renumbered; if that is what you want, delete {} and run `flannel-gen lock`",
                locked.network,
                locked.subnet_len,
                self.pool.network,
                self.pool.len,
                lock.path.display()
            ),
        ));
        false
    }

    fn take_pins(&mut self) {
        for (i, node) in self.cluster.nodes.iter().enumerate() {
            let Some(pins) = node.pins.get(self.family) else { continue };
            if let Some(s) = pins.subnet {
                self.subnets[i] = Some(s.value);
                self.taken_subnets.insert(s.value, i);
            }
            if let Some(m) = pins.vtep_mac {
                self.macs[i] = Some(m.value);
                self.taken_macs.insert(m.value, i);
            }
        }
    }

    /// Leases from the lock, for nodes the pins left open; a lease another
    /// node's pin took is an error naming both.
    fn take_leases(&mut self, lock: &Lock, problems: &mut Vec<Diagnostic>) {
        for (i, node) in self.cluster.nodes.iter().enumerate() {
            let Some(lease) = lock.leases.get(&node.name).and_then(|l| l.get(self.family)).copied() else { continue };
            let at = lock.pos_of(&node.name, self.family);
            let k = lock::keys(self.family);
            if let Some(why) = self.pool.refusal(lease.subnet) {
                let m = format!(
                    "{why}; the topology changed under this lease: fix it, or remove the node's entry to allocate anew"
                );
                problems.push(Diagnostic::new(&lock.path, at.subnet, format!("nodes.{}.{}", node.name, k[2]), m));
                continue;
            }
            if let Some(j) = claim(&mut self.taken_subnets, &mut self.subnets, i, lease.subnet) {
                problems.push(self.stolen(j, node, &lease.subnet.to_string(), true));
            }
            if let Some(j) = claim(&mut self.taken_macs, &mut self.macs, i, lease.vtep_mac) {
                problems.push(self.stolen(j, node, &lease.vtep_mac.to_string(), false));
            }
        }
    }

    /// Node `thief` pins what the lock leases to `owner`.
    fn stolen(&self, thief: usize, owner: &Node, what: &str, subnet: bool) -> Diagnostic {
        let t = &self.cluster.nodes[thief];
        let pins = t.pins.get(self.family).copied().unwrap_or_default();
        let pos = if subnet { pins.subnet.map(|p| p.pos) } else { pins.vtep_mac.map(|p| p.pos) };
        let key = match (self.family, subnet) {
            (Family::V4, true) => "subnet",
            (Family::V6, true) => "subnet6",
            (Family::V4, false) => "vtepMAC",
            (Family::V6, false) => "vtepMAC6",
        };
        Diagnostic::new(
            &self.cluster.source,
            pos.unwrap_or(t.pos),
            format!("nodes[{}].{key}", t.index),
            format!(
                "node `{}` pins {what}, which the lock file leases to node `{}`; pin another one, or move `{}` first",
                t.name, owner.name, owner.name
            ),
        )
    }

    /// Fresh subnets (first free from subnetMin) and derived MACs for the rest.
    fn finish(mut self, problems: &mut Vec<Diagnostic>) -> Option<Vec<FamilyLease>> {
        let step = self.pool.step();
        let max = to_bits(self.pool.max);
        let mut cursor = to_bits(self.pool.min);
        let mut out = Vec::with_capacity(self.subnets.len());
        for (i, node) in self.cluster.nodes.iter().enumerate() {
            let subnet = match self.subnets[i] {
                Some(s) => s,
                None => loop {
                    if cursor > max {
                        problems.push(self.exhausted(node));
                        return None;
                    }
                    let s = self.pool.subnet_at(cursor);
                    cursor = cursor.saturating_add(step);
                    if let std::collections::hash_map::Entry::Vacant(e) = self.taken_subnets.entry(s) {
                        e.insert(i);
                        break s;
                    }
                },
            };
            let vtep_mac = match self.macs[i] {
                Some(m) => m,
                None => (0..)
                    .map(|attempt| derive_mac(self.family, &self.cluster.name, &node.name, attempt))
                    .find(|m| !self.taken_macs.contains_key(m))
                    .unwrap_or_else(|| derive_mac(self.family, &self.cluster.name, &node.name, 0)),
            };
            self.taken_macs.insert(vtep_mac, i);
            out.push(FamilyLease { subnet, vtep_mac });
        }
        Some(out)
    }

    fn exhausted(&self, node: &Node) -> Diagnostic {
        let p = &self.pool;
        Diagnostic::new(
            &self.cluster.source,
            node.pos,
            format!("nodes[{}]", node.index),
            format!("no free /{} subnet left between {} and {} for node `{}`", p.len, p.min, p.max, node.name),
        )
    }
}

/// The networks an allocation is recorded for, per family.
pub fn lock_networks(cluster: &Cluster) -> PerFamily<(IpNet, u8)> {
    let mut n = PerFamily::default();
    for (f, p) in cluster.pools.iter() {
        n.set(f, Some((p.network, p.len)));
    }
    n
}

/// The nodes' WireGuard public keys, as the lock records them.
pub fn wireguard_keys(cluster: &Cluster) -> lock::WireguardKeys {
    cluster.nodes.iter().filter_map(|n| Some((n.name.clone(), n.wireguard_key?))).collect()
}

/// The lock file text for an allocation.
pub fn render_lock(cluster: &Cluster, leases: &Leases) -> String {
    lock::render(&cluster.name, &lock_networks(cluster), leases, &wireguard_keys(cluster))
}

/// Whether `lock` records exactly this allocation.
pub fn lock_is_fresh(cluster: &Cluster, leases: &Leases, lock: &Lock) -> bool {
    let nets: PerFamily<(IpNet, u8)> = {
        let mut n = PerFamily::default();
        for (f, l) in lock.networks.iter() {
            n.set(f, Some((l.network, l.subnet_len)));
        }
        n
    };
    lock.cluster == cluster.name
        && nets == lock_networks(cluster)
        && lock.leases == *leases
        && lock.wireguard_keys == wireguard_keys(cluster)
}

/// Records `value` as node `i`'s unless another node holds it (that node's
/// index is returned) or node `i` already has one (a pin wins over its lease).
fn claim<K: std::hash::Hash + Eq + Copy>(
    taken: &mut HashMap<K, usize>,
    slots: &mut [Option<K>],
    i: usize,
    value: K,
) -> Option<usize> {
    match taken.get(&value) {
        Some(&j) if j != i => return Some(j),
        Some(_) => {}
        None if slots[i].is_none() => {
            slots[i] = Some(value);
            taken.insert(value, i);
        }
        None => {}
    }
    None
}

#[cfg(test)]
mod tests;
