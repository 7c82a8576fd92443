//! The per-peer kernel state — routes, nexthops, and the neighbours and FDB
//! entries of every device flannel-gen could own — read before the plan is
//! known. `apply` reads it on a second thread while the main one compiles
//! the topology: the two take about as long (~7 and ~10 ms at 5000 peers).

use std::collections::{BTreeMap, BTreeSet};

use super::NetlinkError;
use super::bulk::Bulk;
use super::{links, nexthop, raw};
use crate::apply::live::{LiveFdb, LiveLink, LiveNeigh, LiveNexthop, LiveRoute};

#[derive(Debug, Default)]
pub struct Prefetched {
    /// Every link (the read's one link dump).
    pub links: Vec<LiveLink>,
    pub routes: Vec<LiveRoute>,
    pub blackholes: Vec<LiveRoute>,
    pub nexthops: BTreeMap<u32, LiveNexthop>,
    /// The devices whose neighbours and FDB entries were read.
    pub devices: BTreeSet<u32>,
    pub neighs: Vec<LiveNeigh>,
    pub fdb: Vec<LiveFdb>,
}

/// Reads everything [`Prefetched`] holds, on `bulk`'s namespace; the
/// neighbours and FDB entries of the links `candidate` picks (the devices
/// flannel-gen may own, whatever the plan: a plan's own are always among
/// them, and the dump checks).
pub fn read(bulk: &mut Bulk, candidate: impl Fn(&LiveLink) -> bool) -> Result<Prefetched, NetlinkError> {
    let links = links::dump(bulk)?;
    let devices = links.iter().filter(|l| candidate(l)).map(|l| l.index).collect();
    let mut p = Prefetched { links, devices, ..routes(bulk)? };
    for &i in &p.devices {
        raw::neighbours(bulk, i, &mut p.neighs)?;
        raw::fdb(bulk, i, &mut p.fdb)?;
    }
    Ok(p)
}

/// The main table's unicast and blackhole routes (both families) and
/// flannel-gen's nexthops; no device's neighbours yet.
pub fn routes(bulk: &mut Bulk) -> Result<Prefetched, NetlinkError> {
    let mut p = Prefetched::default();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        raw::routes(bulk, family, &mut p.routes)?;
        raw::routes_of(bulk, family, raw::RTN_BLACKHOLE, &mut p.blackholes)?;
    }
    p.nexthops = nexthop::dump(bulk)?;
    Ok(p)
}
