//! Executing ops against the kernel: link creation and deletion one at a
//! time (they change the name -> index map), everything else pipelined on
//! one socket with at most [`super::IN_FLIGHT`] requests outstanding.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use rtnetlink::Handle;
use rtnetlink::packet_route::neighbour::{NeighbourFlags, NeighbourState};

use super::{NetlinkError, collect, messages as msg, timed};
use crate::apply::ops::Op;

/// Runs ops; name -> index is kept current as devices come and go.
pub struct Executor {
    pub handle: Handle,
    pub index: BTreeMap<String, u32>,
}

impl Executor {
    fn idx(&self, name: &str) -> Result<u32, NetlinkError> {
        self.index.get(name).copied().ok_or_else(|| NetlinkError::NoDevice(name.to_string()))
    }

    async fn refresh(&mut self, name: &str) -> Result<(), NetlinkError> {
        let found = collect(self.handle.link().get().match_name(name.to_string()).execute()).await?;
        match found.first() {
            Some(m) => self.index.insert(name.to_string(), m.header.index),
            None => self.index.remove(name),
        };
        Ok(())
    }

    /// Runs one op; link creation and deletion update the index map.
    pub async fn run(&mut self, op: &Op) -> Result<(), NetlinkError> {
        let h = self.handle.clone();
        match op {
            Op::CreateLink { device, alias, up } => {
                timed(h.link().add(msg::new_vxlan(device, self.idx(&device.dev)?)).execute()).await?;
                self.refresh(&device.name).await?;
                let i = self.idx(&device.name)?;
                timed(h.link().change(msg::addrgen_none(i)).execute()).await?;
                timed(h.link().change(msg::alias_and_state(i, alias.as_deref(), *up)).execute()).await?;
                // A new device has offload on (the kernel's default).
                if !device.tx_checksum_offload {
                    tx_checksum(&device.name, false)?;
                }
                Ok(())
            }
            Op::CreateTun { device, alias, up } => {
                crate::tun::create_persistent(&device.name)
                    .map_err(|source| NetlinkError::Tun { dev: device.name.clone(), source })?;
                self.refresh(&device.name).await?;
                let i = self.idx(&device.name)?;
                timed(h.link().change(msg::addrgen_none(i)).execute()).await?;
                let fix = crate::apply::ops::LinkFix {
                    mtu: Some((0, device.mtu)),
                    up: Some(*up),
                    alias: Some((None, alias.clone())),
                    ..Default::default()
                };
                timed(h.link().change(msg::fix_link(i, &fix)).execute()).await
            }
            Op::DeleteLink { name, .. } => {
                match timed(h.link().del(self.idx(name)?).execute()).await {
                    Err(e) if !e.is_gone() => return Err(e),
                    _ => {}
                }
                self.index.remove(name);
                Ok(())
            }
            _ => self.run_shared(op).await,
        }
    }

    /// Ops that need only `&self`, so many can be in flight at once.
    pub async fn run_shared(&self, op: &Op) -> Result<(), NetlinkError> {
        let h = &self.handle;
        match op {
            Op::Sysctl { key, to, .. } => {
                let path = crate::plan::Sysctl { key: key.clone(), value: to.clone() }.proc_path();
                std::fs::write(&path, format!("{to}\n")).map_err(|source| NetlinkError::Sysctl { path, source })
            }
            Op::FixLink { name, fix } => {
                let i = self.idx(name)?;
                if fix.addrgen_none {
                    timed(h.link().change(msg::addrgen_none(i)).execute()).await?;
                }
                if let Some((_, learning)) = fix.learning {
                    timed(h.link().change(msg::learning(name, i, learning)).execute()).await?;
                }
                if let Some((_, on)) = fix.tx_checksum {
                    tx_checksum(name, on)?;
                }
                timed(h.link().change(msg::fix_link(i, fix)).execute()).await
            }
            Op::AddAddress { dev, addr } => {
                timed(h.address().add(self.idx(dev)?, addr.addr(), addr.prefix_len()).replace().execute()).await
            }
            Op::DelAddress { dev, addr } => {
                let found = collect(h.address().get().set_link_index_filter(self.idx(dev)?).execute()).await?;
                for m in found.into_iter().filter(|m| m.header.prefix_len == addr.prefix_len()) {
                    if m.attributes.iter().any(|a| matches!(a, rtnetlink::packet_route::address::AddressAttribute::Address(ip) if *ip == addr.addr())) {
                        timed(h.address().del(m).execute()).await?;
                    }
                }
                Ok(())
            }
            Op::AddNeigh(n) => {
                let req = h
                    .neighbours()
                    .add(self.idx(&n.dev)?, n.ip)
                    .link_layer_address(&n.lladdr.0)
                    .state(NeighbourState::Permanent)
                    .replace();
                timed(req.execute()).await
            }
            Op::DelNeigh { dev, ip, .. } => {
                gone_ok(timed(h.neighbours().del(msg::neigh_del(self.idx(dev)?, *ip)).execute()).await)
            }
            Op::AddFdb(f) => {
                let req = h
                    .neighbours()
                    .add_bridge(self.idx(&f.dev)?, &f.lladdr.0)
                    .destination(f.dst)
                    .flags(NeighbourFlags::Own)
                    .state(NeighbourState::Permanent)
                    .replace();
                timed(req.execute()).await
            }
            Op::DelFdb { dev, lladdr, dst } => {
                gone_ok(timed(h.neighbours().del(msg::fdb_del(self.idx(dev)?, *lladdr, *dst)).execute()).await)
            }
            Op::ReplaceRoute { route, protocol, .. } => {
                timed(h.route().add(msg::route(route, self.idx(&route.dev)?, *protocol)).replace().execute()).await
            }
            Op::DelRoute { dst, .. } => gone_ok(timed(h.route().del(msg::route_del(*dst)).execute()).await),
            Op::SetRules(r) | Op::DelRules(r) => Ok(crate::apply::rules::load(r.backend, r.family, &r.payload)?),
            Op::CreateLink { .. } | Op::CreateTun { .. } | Op::DeleteLink { .. } => {
                Err(NetlinkError::Protocol("link creation and deletion run one at a time".into()))
            }
        }
    }

    /// Runs independent ops with up to [`super::IN_FLIGHT`] requests
    /// outstanding; returns every failure with its op.
    pub async fn run_pipelined<'a>(&self, ops: &[&'a Op]) -> Vec<(&'a Op, NetlinkError)> {
        stream::iter(ops.iter().copied())
            .map(|op| async move { (op, self.run_shared(op).await) })
            .buffer_unordered(super::IN_FLIGHT)
            .filter_map(|(op, r)| async move { r.err().map(|e| (op, e)) })
            .collect()
            .await
    }
}

fn tx_checksum(dev: &str, on: bool) -> Result<(), NetlinkError> {
    crate::apply::ethtool::set_tx_checksum(dev, on)
        .map_err(|source| NetlinkError::Ethtool { dev: dev.to_string(), source })
}

/// Deleting what is already gone counts as done.
fn gone_ok(r: Result<(), NetlinkError>) -> Result<(), NetlinkError> {
    match r {
        Err(e) if e.is_gone() => Ok(()),
        other => other,
    }
}
