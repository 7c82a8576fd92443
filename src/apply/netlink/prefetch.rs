//! The per-peer kernel state — routes, nexthops, and the neighbours and FDB
//! entries of every device flannel-gen could own — read before the plan is
//! known. `apply` reads it on a second thread while the main one compiles
//! the topology: the two take about as long (~7 and ~10 ms at 5000 peers).

use std::collections::{BTreeMap, BTreeSet};

use super::NetlinkError;
use super::attr::attrs;
use super::bulk::Bulk;
use super::{nexthop, raw};
use crate::apply::live::{LiveFdb, LiveNeigh, LiveNexthop, LiveRoute};

const RTM_GETLINK: u16 = 18;
/// sizeof(struct ifinfomsg).
const IFINFOMSG_LEN: usize = 16;
const IFLA_IFNAME: u16 = 3;
const IFLA_IFALIAS: u16 = 20;

#[derive(Debug, Default)]
pub struct Prefetched {
    pub routes: Vec<LiveRoute>,
    pub blackholes: Vec<LiveRoute>,
    pub nexthops: BTreeMap<u32, LiveNexthop>,
    /// The devices whose neighbours and FDB entries were read.
    pub devices: BTreeSet<u32>,
    pub neighs: Vec<LiveNeigh>,
    pub fdb: Vec<LiveFdb>,
}

/// Reads everything [`Prefetched`] holds, on `bulk`'s namespace.
pub fn read(bulk: &mut Bulk) -> Result<Prefetched, NetlinkError> {
    let devices = candidates(bulk)?;
    let mut p = Prefetched { devices, ..routes(bulk)? };
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

/// Devices flannel-gen may own, whatever the plan: the overlay device names
/// (`flannel.<vni>`, `flannel-v6.<vni>`, `flannel0`) and flannel-gen's alias.
/// A plan's own devices are always among them; the dump checks.
fn candidates(bulk: &mut Bulk) -> Result<BTreeSet<u32>, NetlinkError> {
    let mut out = BTreeSet::new();
    bulk.dump(RTM_GETLINK, &[0; IFINFOMSG_LEN], |r| {
        let Some(index) = r.payload.get(4..8).and_then(super::attr::u32_of) else { return };
        let ours = attrs(r.payload, IFINFOMSG_LEN).any(|(k, v)| {
            let text = std::str::from_utf8(v).unwrap_or_default().trim_end_matches('\0');
            (k == IFLA_IFNAME && crate::topology::validate::is_overlay_device_name(text))
                || (k == IFLA_IFALIAS && text.starts_with(crate::plan::MARKER_PREFIX))
        });
        if ours {
            out.insert(index);
        }
    })?;
    Ok(out)
}
