//! A running cluster's leases -> a topology and its lock that reproduce it:
//! every node pinned to its lease (subnet, public IP, VTEP MAC or WireGuard
//! public key), then
//! compiled here and each node's plan checked against the leases before
//! anything is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::names::Names;
use super::{BackendData, Lease, VxlanData};
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::mac::Mac;
use crate::netaddr::Family;
use crate::plan::NodePlan;
use crate::topology::BackendKind;
use crate::topology::netconf::NetConf;
use crate::wireguard::key::Key;

/// How to fill in what leases do not record.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    pub cluster: &'a str,
    pub ip_masq: bool,
    /// On-link underlay prefix per family (leases record only the address).
    pub prefix: [u8; 2],
    pub interface: Option<&'a str>,
    pub names: &'a Names,
    /// Where the topology will be written (names the generated text in errors).
    pub out: &'a Path,
    /// First comment line: where the leases came from.
    pub source: String,
}

/// A lease that became a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedNode {
    pub name: String,
    pub lease: Lease,
    pub ips: [Option<IpNet>; 2],
}

#[derive(Debug)]
pub struct Imported {
    pub topology: String,
    pub lock: String,
    pub nodes: Vec<ImportedNode>,
    /// Leases left out, and why (flanneld's own backend ignores them too).
    pub skipped: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error(
        "internal error: the imported topology does not reproduce the leases ({0}); nothing was written, please report this"
    )]
    Mismatch(String),
}

impl From<Diagnostics> for ImportError {
    fn from(d: Diagnostics) -> Self {
        ImportError::Invalid(d)
    }
}

const FAMILIES: [Family; 2] = [Family::V4, Family::V6];

fn idx(f: Family) -> usize {
    match f {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

pub fn import(conf: &NetConf, leases: &[Lease], o: &Options) -> Result<Imported, ImportError> {
    let mut skipped = Vec::new();
    let mut warnings = Vec::new();
    let mut problems = Vec::new();
    let mut nodes = Vec::new();
    for l in leases {
        match node_of(conf, l, o, &mut warnings) {
            Ok(Some(n)) => nodes.push(n),
            Ok(None) => skipped.push(format!(
                "{}: backend `{}`, not the cluster's {}; left out, as flanneld's {} backend ignores it too (its subnet stays taken: publish refuses to give it to a flannel-gen node)",
                l.origin.describe(),
                if l.attrs.backend_type.is_empty() { "udp (none given)" } else { &l.attrs.backend_type },
                conf.backend.kind.as_str(),
                conf.backend.kind.as_str()
            )),
            Err(d) => problems.push(d),
        }
    }
    if !problems.is_empty() {
        return Err(Diagnostics(problems).into());
    }
    if nodes.is_empty() {
        let msg = format!(
            "of the {} in {}, none belongs to the cluster's {} backend; nothing to import",
            crate::words::plural(leases.len(), "lease"),
            o.source,
            conf.backend.kind.as_str()
        );
        return Err(Diagnostics::whole_file(o.out, msg).into());
    }
    unused_names(o, &nodes, &mut warnings);
    nodes.sort_by(|a, b| (a.ips, &a.name).cmp(&(b.ips, &b.name)));
    let conf = &widened(conf, &nodes, &mut warnings);
    let topology = topology_text(conf, o, &nodes);
    let generated = PathBuf::from(format!("{} (generated, not written)", o.out.display()));
    let doc = crate::topology::parse::parse_topology(&generated, &topology)?;
    let cluster = crate::topology::validate::validate(&generated, &doc)?;
    let allocation = crate::alloc::allocate(&cluster, None)?;
    let lock = crate::alloc::render_lock(&cluster, &allocation);
    let plans =
        crate::plan::build_all(&cluster, &allocation).map_err(|e| ImportError::Mismatch(format!("no plan: {e}")))?;
    check_plans(&plans, &nodes, conf.backend.kind).map_err(ImportError::Mismatch)?;
    Ok(Imported { topology, lock, nodes, skipped, warnings })
}

/// One lease as a node; `None` when it belongs to another backend.
fn node_of(
    conf: &NetConf,
    l: &Lease,
    o: &Options,
    warnings: &mut Vec<String>,
) -> Result<Option<ImportedNode>, Diagnostic> {
    let fail = |m: String| Diagnostic::new(&PathBuf::from(l.origin.label()), Pos::FILE, "", m);
    if !super::of_backend(conf.backend.kind, &l.attrs.backend_type) {
        return Ok(None);
    }
    let mut ips = [None, None];
    for f in FAMILIES {
        let Some(fc) = conf.family(f) else { continue };
        let subnet = l.subnet(f).ok_or_else(|| {
            fail(format!(
                "no {f} subnet, but the network config enables {f} ({}) and flannel-gen needs every node in it",
                fc.network
            ))
        })?;
        let ip = l.attrs.public_ip(f).ok_or_else(|| fail(format!("no {f} public IP for subnet {subnet}")))?;
        match conf.backend.kind {
            BackendKind::Vxlan => {
                let d = l
                    .attrs
                    .vxlan(f)
                    .ok_or_else(|| fail(format!("a vxlan lease without {f} backend data (VNI, VtepMAC)")))?;
                vni_warning(conf, l, f, d, warnings);
            }
            BackendKind::Wireguard => wireguard_lease(conf, l, f, warnings).map_err(fail)?,
            _ => {}
        }
        let prefix = o.names.get(ip).and_then(|e| e.prefix).unwrap_or(o.prefix[idx(f)]);
        ips[idx(f)] = Some(IpNet::new(ip, prefix).map_err(|e| fail(format!("{ip}/{prefix}: {e}")))?);
    }
    let first_ip = ips.iter().flatten().next().map(IpNet::addr).ok_or_else(|| fail("no family enabled".into()))?;
    if conf.backend.kind.is_cloud() && o.names.get(first_ip).and_then(|e| e.instance.as_ref()).is_none() {
        return Err(fail(format!(
            "{first_ip}: an {} node needs its instance (flanneld read it from the instance metadata; no lease \
             records it): give it after the name in --names (`{first_ip} NAME {}`)",
            conf.backend.kind.as_str(),
            if conf.backend.kind == BackendKind::AwsVpc { "i-…" } else { "ZONE/INSTANCE" }
        )));
    }
    let name = match (o.names.get(first_ip), &l.name) {
        (Some(e), _) => e.name.clone(),
        (None, Some(n)) => n.clone(),
        (None, None) => derived_name(first_ip),
    };
    Ok(Some(ImportedNode { name, lease: l.clone(), ips }))
}

/// Kubernetes hands out the network's first subnet (kube-flannel's first
/// node gets 10.244.0.0/24), which flanneld's own allocator skips: the
/// range starts there when a node holds it and the config set no minimum.
fn widened(conf: &NetConf, nodes: &[ImportedNode], warnings: &mut Vec<String>) -> NetConf {
    let mut conf = conf.clone();
    for f in FAMILIES {
        let fc = match f {
            Family::V4 => conf.v4.as_mut(),
            Family::V6 => conf.v6.as_mut(),
        };
        let Some(fc) = fc.filter(|fc| fc.min.is_none()) else { continue };
        let first = fc.network.network();
        if let Some(n) = nodes.iter().find(|n| n.lease.subnet(f).is_some_and(|s| s.network() == first)) {
            warnings.push(format!(
                "node {} holds the network's first subnet; the topology's {f} range starts at {first} so it stays valid",
                n.name
            ));
            fc.min = Some(first.to_string());
        }
    }
    conf
}

fn vni_warning(conf: &NetConf, l: &Lease, f: Family, d: VxlanData, warnings: &mut Vec<String>) {
    let vni = conf.backend.effective_vni();
    if u64::from(d.vni) != vni {
        warnings.push(format!(
            "{}: {f} lease data says VNI {} but the cluster runs VNI {vni}; flanneld uses the cluster's, and so does the topology",
            l.origin.describe(),
            d.vni
        ));
    }
}

/// A wireguard lease's data for family `f`: present, the same key as the
/// other family's (flanneld's node has one), and the cluster's port.
fn wireguard_lease(conf: &NetConf, l: &Lease, f: Family, warnings: &mut Vec<String>) -> Result<(), String> {
    let d =
        l.attrs.wireguard(f).ok_or_else(|| format!("a wireguard lease without {f} backend data (PublicKey, Port)"))?;
    if let Some(other) = FAMILIES.iter().filter_map(|&g| l.attrs.wireguard(g)).find(|o| o.public_key != d.public_key) {
        return Err(format!(
            "its IPv4 and IPv6 backend data name different public keys ({} and {}); a node has one WireGuard key",
            d.public_key, other.public_key
        ));
    }
    let port = conf.backend.wireguard_port(f);
    if d.port != 0 && d.port != port {
        warnings.push(format!(
            "{}: {f} lease data says port {} but the cluster's is {port}; the topology uses the cluster's, as a flanneld restarted with this config would publish",
            l.origin.describe(),
            d.port
        ));
    }
    Ok(())
}

/// `ip-10-0-0-11`, `ip-fd00--11`: a DNS label from the public IP.
pub fn derived_name(ip: IpAddr) -> String {
    format!("ip-{}", ip.to_string().replace(['.', ':'], "-"))
}

fn unused_names(o: &Options, nodes: &[ImportedNode], warnings: &mut Vec<String>) {
    let used: BTreeSet<IpAddr> = nodes.iter().flat_map(|n| n.ips.iter().flatten().map(IpNet::addr)).collect();
    for (ip, e) in &o.names.0 {
        if !used.contains(ip) {
            warnings.push(format!(
                "names file line {}: no imported lease has public IP {ip} (`{}` unused)",
                e.line, e.name
            ));
        }
    }
}

fn topology_text(conf: &NetConf, o: &Options, nodes: &[ImportedNode]) -> String {
    let mut out = format!("# Imported by flannel-gen from {}.\n", o.source);
    let pins =
        if conf.backend.kind == BackendKind::Wireguard { "subnet, WireGuard public key" } else { "subnet, VTEP MAC" };
    let _ = writeln!(out, "# Each node is pinned to its lease ({pins}): plans program what flanneld programs.");
    out.push_str(&conf.topology_head(o.cluster, o.ip_masq, o.interface));
    out.push_str("nodes:\n");
    let keys = [["ip", "subnet", "vtepMAC"], ["ip6", "subnet6", "vtepMAC6"]];
    for n in nodes {
        let _ = writeln!(out, "  - name: {}", n.name);
        for f in FAMILIES {
            let (Some(ip), Some(subnet)) = (n.ips[idx(f)], n.lease.subnet(f)) else { continue };
            let k = keys[idx(f)];
            let _ = writeln!(out, "    {}: {ip}\n    {}: {subnet}", k[0], k[1]);
            if let Some(d) = n.lease.attrs.vxlan(f).filter(|_| conf.backend.kind == BackendKind::Vxlan) {
                let _ = writeln!(out, "    {}: \"{}\"", k[2], d.vtep_mac);
            }
        }
        if let Some(d) = FAMILIES.iter().find_map(|&f| n.lease.attrs.wireguard(f)) {
            let _ = writeln!(out, "    wireguardKey: \"{}\"", d.public_key);
        }
        let first_ip = n.ips.iter().flatten().next().map(IpNet::addr);
        if let Some(i) = first_ip.and_then(|ip| o.names.get(ip)).and_then(|e| e.instance.as_deref()) {
            match i.split_once('/') {
                Some((zone, name)) => {
                    let _ = writeln!(out, "    instance: {name}\n    zone: {zone}");
                }
                None => {
                    let _ = writeln!(out, "    instanceID: {i}");
                }
            }
        }
    }
    out
}

/// What identifies a node on the overlay besides its address: its VTEP
/// MAC (vxlan) or WireGuard public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ident {
    Mac(Mac),
    Key(Key),
}

/// Per family: each node's subnet -> (public IP, identity), as the leases
/// say and as one node's plan sees itself and its peers. A peer the plan
/// routes directly (host-gw, directRouting) programs no MAC, as in flanneld.
type Facts = BTreeMap<IpNet, (IpAddr, Option<Ident>)>;

fn lease_facts(nodes: &[ImportedNode], f: Family, kind: BackendKind) -> Facts {
    nodes
        .iter()
        .filter_map(|n| {
            let ident = match (kind, n.lease.attrs.data(f)) {
                (BackendKind::Vxlan, Some(BackendData::Vxlan(d))) => Some(Ident::Mac(d.vtep_mac)),
                (BackendKind::Wireguard, Some(BackendData::Wireguard(d))) => Some(Ident::Key(d.public_key)),
                _ => None,
            };
            Some((n.lease.subnet(f)?, (n.ips[idx(f)]?.addr(), ident)))
        })
        .collect()
}

fn plan_facts(p: &NodePlan, f: Family) -> Facts {
    let d = p.data();
    let ident = |mac: Option<Mac>, key: Option<Key>| mac.map(Ident::Mac).or(key.map(Ident::Key));
    let mut facts: Facts = d
        .peers
        .iter()
        .filter(|x| x.family() == f)
        .map(|x| (x.subnet(), (x.public_ip(), ident(x.vtep_mac(), x.public_key()))))
        .collect();
    if let (Some(fp), Some(ip)) = (d.family(f), d.uplink.address(f)) {
        let own_key = p.wireguard_identity(f).map(|(k, _)| k);
        facts.insert(fp.subnet, (ip.addr(), ident(fp.vtep_mac, own_key)));
    }
    facts
}

/// Whether a plan's view of one node agrees with its lease; a missing MAC
/// (a directly routed peer) agrees with any.
fn agrees(lease: (IpAddr, Option<Ident>), plan: (IpAddr, Option<Ident>)) -> bool {
    lease.0 == plan.0 && (plan.1.is_none() || plan.1 == lease.1)
}

/// Every node's plan sees exactly the leases: itself and all its peers.
fn check_plans(plans: &[NodePlan], nodes: &[ImportedNode], kind: BackendKind) -> Result<(), String> {
    for f in FAMILIES {
        let want = lease_facts(nodes, f, kind);
        for p in plans {
            let got = plan_facts(p, f);
            let same_subnets = got.keys().eq(want.keys());
            let bad = want.iter().find(|(s, l)| got.get(*s).is_none_or(|g| !agrees(**l, *g)));
            if !same_subnets || bad.is_some() {
                return Err(format!("node {} {f}: plan {got:?}, leases {want:?}", p.data().node));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
