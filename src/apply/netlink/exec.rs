//! Executing ops against the kernel, every netlink write on one socket
//! ([`Bulk`]): link creation and deletion one at a time (they change the
//! name -> index map), the per-peer objects (neighbours, FDB entries,
//! nexthops, routes) hundreds per write, the rest (link settings,
//! addresses, sysctls, rules) one request each.

use std::cell::RefCell;
use std::collections::BTreeMap;

use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use rtnetlink::packet_route::RouteNetlinkMessage as M;
use rtnetlink::packet_route::link::LinkMessage;

use super::bulk::{Bulk, Requests};
use super::{NetlinkError, links, messages as msg, nexthop};
use crate::apply::ops::Op;
use crate::netaddr::takes_ipv6_settings;

/// Runs ops; name -> index is kept current as devices come and go.
pub struct Executor<'b> {
    pub bulk: &'b RefCell<Bulk>,
    pub index: BTreeMap<String, u32>,
}

/// Ops written through [`Bulk`]: the per-peer objects.
fn is_bulk(op: &Op) -> bool {
    matches!(
        op,
        Op::AddNeigh(_)
            | Op::DelNeigh { .. }
            | Op::AddFdb(_)
            | Op::DelFdb { .. }
            | Op::ReplaceRoute { .. }
            | Op::DelRoute { .. }
            | Op::AddBlackhole { .. }
            | Op::DelBlackhole { .. }
            | Op::DelNexthop { .. }
    )
}

impl Executor<'_> {
    fn idx(&self, name: &str) -> Result<u32, NetlinkError> {
        self.index.get(name).copied().ok_or_else(|| NetlinkError::NoDevice(name.to_string()))
    }

    /// One request, acknowledged: the kernel's answer to it.
    fn write(&self, m: M, flags: u16) -> Result<(), NetlinkError> {
        let mut reqs = Requests::default();
        reqs.route(0, m, flags);
        let failures = self.bulk.borrow_mut().execute(&mut reqs)?;
        failures.first().map_or(Ok(()), |(_, errno)| Err(NetlinkError::Kernel { errno: *errno }))
    }

    /// `ip link set`: an RTM_NEWLINK without create flags.
    fn change(&self, m: LinkMessage) -> Result<(), NetlinkError> {
        self.write(M::NewLink(m), 0)
    }

    fn refresh(&mut self, name: &str) -> Result<(), NetlinkError> {
        let found = links::by_name(&mut self.bulk.borrow_mut(), name)?;
        match found {
            Some(l) => self.index.insert(name.to_string(), l.index),
            None => self.index.remove(name),
        };
        Ok(())
    }

    /// A device made outside rtnetlink (a TUN device, by ioctl or by a
    /// userspace WireGuard implementation): marker first, addrgen none (at
    /// creation it has the kernel's MTU, 1500, so this cannot fail yet),
    /// then MTU and state.
    fn settle_new_link(&mut self, name: &str, mtu: u32, alias: &Option<String>, up: bool) -> Result<(), NetlinkError> {
        self.refresh(name)?;
        let i = self.idx(name)?;
        self.change(msg::alias_and_state(i, alias.as_deref(), false))?;
        self.change(msg::addrgen_none(i))?;
        let fix = crate::apply::ops::LinkFix {
            mtu: Some((0, mtu)),
            up: Some(up),
            alias: Some((None, alias.clone())),
            ..Default::default()
        };
        self.change(msg::fix_link(i, &fix))
    }

    /// Runs one op; link creation and deletion update the index map.
    pub fn run(&mut self, op: &Op) -> Result<(), NetlinkError> {
        match op {
            Op::CreateLink { device, alias, up } => {
                self.write(M::NewLink(msg::new_vxlan(device, self.idx(&device.dev)?)), NLM_F_CREATE | NLM_F_EXCL)?;
                self.refresh(&device.name)?;
                let i = self.idx(&device.name)?;
                // The marker first (the kernel ignores it in the creating
                // message): whatever fails next, teardown knows the device.
                self.change(msg::alias_and_state(i, alias.as_deref(), false))?;
                if takes_ipv6_settings(device.mtu) {
                    self.change(msg::addrgen_none(i))?;
                }
                if *up {
                    self.change(msg::alias_and_state(i, alias.as_deref(), true))?;
                }
                // A new device has offload on (the kernel's default).
                if !device.tx_checksum_offload {
                    tx_checksum(&device.name, false)?;
                }
                Ok(())
            }
            Op::CreateTun { device, alias, up } => {
                crate::tun::create_persistent(&device.name)
                    .map_err(|source| NetlinkError::Tun { dev: device.name.clone(), source })?;
                self.settle_new_link(&device.name, device.mtu, alias, *up)
            }
            Op::CreateWireguard { device, alias, up } => {
                crate::apply::wireguard::start(device)?;
                self.settle_new_link(&device.name, device.mtu, alias, *up)?;
                crate::apply::wireguard::configure(device)
            }
            Op::DeleteLink { name, .. } => {
                match self.write(M::DelLink(msg::link_del(self.idx(name)?)), 0) {
                    Err(e) if !e.is_gone() => return Err(e),
                    _ => {}
                }
                self.index.remove(name);
                Ok(())
            }
            _ => self.run_shared(op),
        }
    }

    /// Ops that do not change the name -> index map.
    pub fn run_shared(&self, op: &Op) -> Result<(), NetlinkError> {
        match op {
            Op::Sysctl { key, to, .. } => {
                let path = crate::plan::Sysctl::set(key.clone(), to.clone()).proc_path();
                std::fs::write(&path, format!("{to}\n")).map_err(|source| NetlinkError::Sysctl { path, source })
            }
            Op::FixLink { name, fix } => self.fix_link(name, fix),
            Op::AddAddress { dev, addr } => {
                self.write(M::NewAddress(msg::address(self.idx(dev)?, *addr)), NLM_F_CREATE | NLM_F_REPLACE)
            }
            Op::DelAddress { dev, addr } => match self.write(M::DelAddress(msg::address(self.idx(dev)?, *addr)), 0) {
                Err(e) if e.is_gone() || e.errno() == Some(libc::EADDRNOTAVAIL) => Ok(()),
                r => r,
            },
            Op::SetRules(r) | Op::DelRules(r) => Ok(crate::apply::rules::load(r.backend, r.family, &r.payload)?),
            Op::ConfigureWireguard { device, .. } => crate::apply::wireguard::configure(device),
            Op::CreateLink { .. } | Op::CreateTun { .. } | Op::CreateWireguard { .. } | Op::DeleteLink { .. } => {
                Err(NetlinkError::Protocol("link creation and deletion run one at a time".into()))
            }
            _ => self.run_bulk(&[op]).pop().map_or(Ok(()), |(_, e)| Err(e)),
        }
    }

    fn fix_link(&self, name: &str, fix: &crate::apply::ops::LinkFix) -> Result<(), NetlinkError> {
        let i = self.idx(name)?;
        if fix.addrgen_none {
            // A device that grows past 1280 takes IPv6 settings only once it has.
            if let Some(mtu) = fix.mtu {
                let grow = crate::apply::ops::LinkFix { mtu: Some(mtu), ..Default::default() };
                self.change(msg::fix_link(i, &grow))?;
            }
            self.change(msg::addrgen_none(i))?;
        }
        if let Some((_, learning)) = fix.learning {
            self.change(msg::learning(name, i, learning))?;
        }
        if let Some((_, on)) = fix.tx_checksum {
            tx_checksum(name, on)?;
        }
        self.change(msg::fix_link(i, fix))
    }

    /// Neighbours, FDB entries, nexthops and routes: written in bulk
    /// ([`Bulk`]), each failure reported against its op.
    fn run_bulk<'a>(&self, ops: &[&'a Op]) -> Vec<(&'a Op, NetlinkError)> {
        let mut reqs = Requests::default();
        let mut failures = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if let Err(e) = self.request(&mut reqs, i, op) {
                failures.push((*op, e));
            }
        }
        if reqs.is_empty() {
            return failures;
        }
        let written = self.bulk.borrow_mut().execute(&mut reqs);
        match written {
            Ok(kernel) => {
                let mut seen = std::collections::HashSet::new();
                for (i, errno) in kernel {
                    let e = NetlinkError::Kernel { errno };
                    // Deleting what is already gone counts as done.
                    let deleting = ops[i].sign() == '-';
                    if seen.insert(i) && !(deleting && e.is_gone()) {
                        failures.push((ops[i], e));
                    }
                }
            }
            Err(e) => failures.extend(ops.first().map(|op| (*op, e))),
        }
        failures
    }

    /// The request(s) of one bulk op.
    fn request(&self, reqs: &mut Requests, i: usize, op: &Op) -> Result<(), NetlinkError> {
        use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
        use rtnetlink::packet_route::RouteNetlinkMessage as M;
        let put = NLM_F_CREATE | NLM_F_REPLACE;
        match op {
            Op::AddNeigh(n) => reqs.route(i, M::NewNeighbour(msg::neigh_add(self.idx(&n.dev)?, n)), put),
            Op::DelNeigh { dev, ip, .. } => reqs.route(i, M::DelNeighbour(msg::neigh_del(self.idx(dev)?, *ip)), 0),
            Op::AddFdb(f) => reqs.route(i, M::NewNeighbour(msg::fdb_add(self.idx(&f.dev)?, f)), put),
            Op::DelFdb { dev, lladdr, dst } => {
                reqs.route(i, M::DelNeighbour(msg::fdb_del(self.idx(dev)?, *lladdr, *dst)), 0);
            }
            Op::ReplaceRoute { route, protocol, nexthop_protocol, .. } => {
                let oif = self.idx(&route.dev)?;
                if let Some(id) = route.nhid {
                    nexthop::replace(reqs, i, id, route, oif, *nexthop_protocol);
                }
                reqs.route(i, M::NewRoute(msg::route(route, oif, *protocol)), put);
            }
            Op::DelRoute { dst, .. } => reqs.route(i, M::DelRoute(msg::route_del(*dst)), 0),
            Op::AddBlackhole { dst } => reqs.route(i, M::NewRoute(msg::blackhole(*dst)), put),
            Op::DelBlackhole { dst } => reqs.route(i, M::DelRoute(msg::blackhole(*dst)), 0),
            Op::DelNexthop { id, .. } => nexthop::delete(reqs, i, *id),
            other => return Err(NetlinkError::Protocol(format!("not a bulk change: {other}"))),
        }
        Ok(())
    }

    /// Runs independent ops, the per-peer ones in bulk; returns every
    /// failure with its op.
    pub fn run_independent<'a>(&self, ops: &[&'a Op]) -> Vec<(&'a Op, NetlinkError)> {
        let (bulk, rest): (Vec<&'a Op>, Vec<&'a Op>) = ops.iter().copied().partition(|o| is_bulk(o));
        let mut failures = self.run_bulk(&bulk);
        failures.extend(rest.into_iter().filter_map(|op| self.run_shared(op).err().map(|e| (op, e))));
        failures
    }
}

fn tx_checksum(dev: &str, on: bool) -> Result<(), NetlinkError> {
    crate::apply::ethtool::set_tx_checksum(dev, on)
        .map_err(|source| NetlinkError::Ethtool { dev: dev.to_string(), source })
}
