//! The kernel side of apply: dump the state it looks at, execute changes.
//! One small method per kernel operation; requests of a phase are pipelined
//! on one socket (bounded in flight), every wait has a timeout.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};
use ipnet::Ipv4Net;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVxlan, RouteMessageBuilder};

use super::live::{Live, LiveFdb, LiveLink, LiveNeigh, LiveRoute, LiveVxlan};
use super::ops::Op;
use crate::mac::Mac;
use crate::plan::NodePlan;

/// Requests in flight on one socket. Beyond ~256 the default receive buffer
/// drops acks and replies never come (NOTES-crates.md).
pub const IN_FLIGHT: usize = 128;
/// No single request or dump may take longer than this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const RT_TABLE_MAIN: u8 = 254;
const NUD_PERMANENT: u16 = 0x80;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("{0}")]
    Kernel(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

fn kernel(e: rtnetlink::Error) -> NetlinkError {
    match e {
        rtnetlink::Error::NetlinkError(m) => match m.code {
            Some(code) => {
                let text = std::io::Error::from_raw_os_error(-code.get()).to_string();
                NetlinkError::Kernel(text.split(" (os error").next().unwrap_or(&text).to_string())
            }
            None => NetlinkError::Kernel("netlink error without a code".into()),
        },
        other => NetlinkError::Kernel(other.to_string()),
    }
}

async fn timed<T>(f: impl std::future::Future<Output = Result<T, rtnetlink::Error>>) -> Result<T, NetlinkError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, f).await {
        Ok(r) => r.map_err(kernel),
        Err(_) => Err(NetlinkError::Timeout(REQUEST_TIMEOUT)),
    }
}

async fn collect<T>(s: impl futures::Stream<Item = Result<T, rtnetlink::Error>>) -> Result<Vec<T>, NetlinkError> {
    timed(s.try_collect::<Vec<T>>()).await
}

fn mac_of(bytes: &[u8]) -> Option<Mac> {
    <[u8; 6]>::try_from(bytes).ok().map(Mac)
}

fn live_link(m: &LinkMessage) -> LiveLink {
    let mut l = LiveLink { index: m.header.index, up: m.header.flags.contains(LinkFlags::Up), ..LiveLink::default() };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Mtu(v) => l.mtu = Some(*v),
            LinkAttribute::Address(b) => l.mac = mac_of(b),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => l.kind = Some(k.to_string()),
                        LinkInfo::Data(InfoData::Vxlan(v)) => {
                            let mut x = LiveVxlan::default();
                            for a in v {
                                match a {
                                    InfoVxlan::Id(id) => x.vni = Some(*id),
                                    InfoVxlan::Port(p) => x.port = Some(*p),
                                    InfoVxlan::Local(ip) => x.local = Some(*ip),
                                    InfoVxlan::Link(i) => x.link = Some(*i),
                                    InfoVxlan::Learning(b) => x.learning = Some(*b),
                                    _ => {}
                                }
                            }
                            l.vxlan = Some(x);
                        }
                        _ => {}
                    }
                }
            }
            LinkAttribute::AfSpecUnspec(specs) => {
                for s in specs {
                    if let AfSpecUnspec::Inet6(v) = s {
                        for x in v {
                            if let AfSpecInet6::AddrGenMode(m) = x {
                                l.addrgen = Some(u8::from(m));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    l
}

fn live_route(m: &RouteMessage) -> Option<LiveRoute> {
    let h = &m.header;
    if h.address_family != AddressFamily::Inet || h.kind != RouteType::Unicast {
        return None;
    }
    let mut table = u32::from(h.table);
    let (mut dst, mut gateway, mut oif) = (Ipv4Addr::UNSPECIFIED, None, None);
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = *ip,
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => gateway = Some(*ip),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    if table != u32::from(RT_TABLE_MAIN) {
        return None;
    }
    Some(LiveRoute {
        dst: Ipv4Net::new(dst, h.destination_prefix_length).ok()?,
        gateway,
        oif,
        onlink: h.flags.contains(RouteFlags::Onlink),
        protocol: u8::from(h.protocol),
    })
}

fn neigh_fields(m: &NeighbourMessage) -> (Option<IpAddr>, Option<Mac>, bool) {
    let state: u16 = m.header.state.into();
    let (mut ip, mut mac) = (None, None);
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => ip = Some(IpAddr::V4(*v)),
            // FDB destinations arrive as raw bytes.
            NeighbourAttribute::Destination(NeighbourAddress::Other(b)) if b.len() == 4 => {
                ip = Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
            }
            NeighbourAttribute::LinkLayerAddress(b) => mac = mac_of(b),
            _ => {}
        }
    }
    (ip, mac, state & NUD_PERMANENT != 0)
}

/// Dumps links, the device's addresses, main-table routes, and the device's
/// neighbours and FDB: one dump per object kind.
pub async fn dump(h: &Handle, plan: &NodePlan) -> Result<Live, NetlinkError> {
    let mut live = Live::default();
    for m in collect(h.link().get().execute()).await? {
        let l = live_link(&m);
        live.links.insert(l.name.clone(), l);
    }
    let dev = live.links.get(&plan.device).map(|l| l.index);
    let uplink = live.links.get(&plan.uplink.name).map(|l| l.index);
    for m in collect(h.address().get().execute()).await? {
        let i = m.header.index;
        if Some(i) != dev && Some(i) != uplink {
            continue;
        }
        for a in &m.attributes {
            if let AddressAttribute::Address(IpAddr::V4(ip)) = a
                && let Ok(n) = Ipv4Net::new(*ip, m.header.prefix_len)
            {
                live.addrs.entry(i).or_default().push(n);
            }
        }
    }
    let all = RouteMessageBuilder::<Ipv4Addr>::new().build();
    live.routes = collect(h.route().get(all).execute()).await?.iter().filter_map(live_route).collect();
    if let Some(dev) = dev {
        let neighs = collect(h.neighbours().get().set_address_family(AddressFamily::Inet).execute()).await?;
        for m in neighs.iter().filter(|m| m.header.ifindex == dev) {
            if let (Some(IpAddr::V4(ip)), mac, permanent) = neigh_fields(m) {
                live.neighs.push(LiveNeigh { ip, lladdr: mac, permanent });
            }
        }
        let fdb = collect(h.neighbours().get().set_address_family(AddressFamily::Bridge).execute()).await?;
        for m in fdb.iter().filter(|m| m.header.ifindex == dev && m.header.flags.contains(NeighbourFlags::Own)) {
            let (ip, mac, permanent) = neigh_fields(m);
            if let Some(lladdr) = mac {
                let dst = match ip {
                    Some(IpAddr::V4(v)) => Some(v),
                    _ => None,
                };
                live.fdb.push(LiveFdb { lladdr, dst, permanent });
            }
        }
    }
    for s in &plan.sysctls {
        if let Ok(v) = std::fs::read_to_string(s.proc_path()) {
            live.sysctls.insert(s.key.clone(), v.trim().to_string());
        }
    }
    Ok(live)
}

/// Executes ops against the kernel; name -> index is kept current as devices come and go.
pub struct Executor {
    pub handle: Handle,
    pub index: BTreeMap<String, u32>,
}

impl Executor {
    fn idx(&self, name: &str) -> Result<u32, NetlinkError> {
        self.index.get(name).copied().ok_or_else(|| NetlinkError::Kernel(format!("no device {name}")))
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
        match op {
            Op::CreateLink(l) => {
                let msg = LinkVxlan::new(&l.name, l.vni)
                    .dev(self.idx(&l.dev)?)
                    .local(l.local)
                    .port(l.port)
                    .learning(l.learning)
                    .mtu(l.mtu)
                    .address(l.mac.0.to_vec())
                    .build();
                timed(self.handle.link().add(msg).execute()).await?;
                self.refresh(&l.name).await?;
                let i = self.idx(&l.name)?;
                // No IPv6 link-local on the overlay: set before up, as networkd does.
                timed(self.handle.link().change(addrgen_none(i)).execute()).await?;
                timed(self.handle.link().change(LinkUnspec::new_with_index(i).up().build()).execute()).await
            }
            Op::DeleteLink { name, .. } => {
                timed(self.handle.link().del(self.idx(name)?).execute()).await?;
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
                let path = crate::plan::sysctl_proc_path(key);
                std::fs::write(&path, format!("{to}\n")).map_err(|e| NetlinkError::Kernel(format!("{path}: {e}")))
            }
            Op::FixLink { name, fix } => {
                let i = self.idx(name)?;
                if fix.addrgen_none {
                    timed(h.link().change(addrgen_none(i)).execute()).await?;
                }
                if let Some((_, learning)) = fix.learning {
                    let msg = LinkMessageBuilder::<LinkVxlan>::new(name).index(i).learning(learning).build();
                    timed(h.link().change(msg).execute()).await?;
                }
                let mut b = LinkUnspec::new_with_index(i);
                if let Some((_, mtu)) = fix.mtu {
                    b = b.mtu(mtu);
                }
                if let Some((_, mac)) = fix.mac {
                    b = b.address(mac.0.to_vec());
                }
                timed(h.link().change(b.up().build()).execute()).await
            }
            Op::AddAddress { dev, addr } => {
                timed(h.address().add(self.idx(dev)?, IpAddr::V4(addr.addr()), addr.prefix_len()).replace().execute())
                    .await
            }
            Op::DelAddress { dev, addr } => {
                let msg = rtnetlink::AddressMessageBuilder::<Ipv4Addr>::new()
                    .index(self.idx(dev)?)
                    .address(addr.addr(), addr.prefix_len())
                    .build();
                timed(h.address().del(msg).execute()).await
            }
            Op::AddNeigh(n) => {
                let req = h
                    .neighbours()
                    .add(self.idx(&n.dev)?, IpAddr::V4(n.ip))
                    .link_layer_address(&n.lladdr.0)
                    .state(NeighbourState::Permanent)
                    .replace();
                timed(req.execute()).await
            }
            Op::DelNeigh { dev, ip, .. } => {
                let mut m = NeighbourMessage::default();
                m.header.family = AddressFamily::Inet;
                m.header.ifindex = self.idx(dev)?;
                m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(*ip)));
                timed(h.neighbours().del(m).execute()).await
            }
            Op::AddFdb(f) => {
                let req = h
                    .neighbours()
                    .add_bridge(self.idx(&f.dev)?, &f.lladdr.0)
                    .destination(IpAddr::V4(f.dst))
                    .flags(NeighbourFlags::Own)
                    .state(NeighbourState::Permanent)
                    .replace();
                timed(req.execute()).await
            }
            Op::DelFdb { dev, lladdr, dst } => {
                let mut m = NeighbourMessage::default();
                m.header.family = AddressFamily::Bridge;
                m.header.ifindex = self.idx(dev)?;
                m.header.flags = NeighbourFlags::Own;
                m.attributes.push(NeighbourAttribute::LinkLayerAddress(lladdr.0.to_vec()));
                if let Some(d) = dst {
                    m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(*d)));
                }
                timed(h.neighbours().del(m).execute()).await
            }
            Op::ReplaceRoute { route, .. } => {
                let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(route.dst.addr(), route.dst.prefix_len())
                    .gateway(route.via)
                    .output_interface(self.idx(&route.dev)?)
                    .protocol(RouteProtocol::Static);
                if route.onlink {
                    b = b.onlink();
                }
                timed(h.route().add(b.build()).replace().execute()).await
            }
            Op::DelRoute { dst, .. } => {
                // Unspecified protocol and scope "nowhere" match any route to dst,
                // whoever installed it (as `ip route del` does).
                let msg = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(dst.addr(), dst.prefix_len())
                    .protocol(RouteProtocol::Unspec)
                    .scope(RouteScope::NoWhere)
                    .build();
                timed(h.route().del(msg).execute()).await
            }
            Op::CreateLink(_) | Op::DeleteLink { .. } => Err(NetlinkError::Kernel("link ops run one at a time".into())),
        }
    }

    /// Runs independent ops with up to [`IN_FLIGHT`] requests outstanding;
    /// returns every failure with its op.
    pub async fn run_pipelined<'a>(&self, ops: &[&'a Op]) -> Vec<(&'a Op, NetlinkError)> {
        stream::iter(ops.iter().copied())
            .map(|op| async move { (op, self.run_shared(op).await) })
            .buffer_unordered(IN_FLIGHT)
            .filter_map(|(op, r)| async move { r.err().map(|e| (op, e)) })
            .collect()
            .await
    }
}

fn addrgen_none(index: u32) -> LinkMessage {
    LinkUnspec::new_with_index(index)
        .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(
            In6AddrGenMode::None,
        )])]))
        .build()
}
