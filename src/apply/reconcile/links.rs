//! Devices: create, replace, correct in place, adopt, retire.

use super::{Ctx, Phase, Refusal};
use crate::apply::desired::{DeviceState, TunState};
use crate::apply::kernel::ADDRGEN_NONE;
use crate::apply::live::{Live, LiveLink};
use crate::apply::ops::{LinkFix, Op};
use crate::plan::objects::VxlanDevice;

/// What about an existing device cannot be changed in place.
fn replace_reasons(want: &VxlanDevice, have: &LiveLink, live: &Live) -> Vec<String> {
    let Some(vx) = have.vxlan.as_ref().filter(|_| have.kind.as_deref() == Some("vxlan")) else {
        return vec![format!("kind {}, want vxlan", have.kind.as_deref().unwrap_or("none"))];
    };
    let mut why = Vec::new();
    if vx.vni != Some(want.vni) {
        why.push(format!("vni {}→{}", show(vx.vni), want.vni));
    }
    if vx.port != Some(want.port) {
        why.push(format!("dstport {}→{}", show(vx.port), want.port));
    }
    if vx.local != Some(want.local) {
        why.push(format!("local {}→{}", show(vx.local), want.local));
    }
    if vx.gbp.unwrap_or(false) != want.gbp {
        why.push(format!("gbp {}→{}", vx.gbp.unwrap_or(false), want.gbp));
    }
    if vx.link != live.index_of(&want.dev) {
        let name = vx.link.and_then(|i| live.name_of(i)).unwrap_or("none");
        why.push(format!("dev {name}→{}", want.dev));
    }
    why
}

fn show<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

fn fix(want: &DeviceState, have: &LiveLink, live: &Live) -> LinkFix {
    let (w, vx) = (&want.vxlan, have.vxlan.clone().unwrap_or_default());
    let csum = live.tx_checksum.get(&w.name).copied();
    LinkFix {
        mtu: (have.mtu != Some(w.mtu)).then(|| (have.mtu.unwrap_or(0), w.mtu)),
        mac: have.mac.filter(|m| *m != w.mac).map(|m| (m, w.mac)),
        learning: (vx.learning != Some(w.learning)).then(|| (vx.learning.unwrap_or(true), w.learning)),
        addrgen_none: crate::netaddr::takes_ipv6_settings(w.mtu) && have.addrgen != Some(ADDRGEN_NONE),
        up: (have.up != want.up).then_some(want.up),
        alias: (have.alias != want.alias).then(|| (have.alias.clone(), want.alias.clone())),
        tx_checksum: csum.filter(|c| *c != w.tx_checksum_offload).map(|c| (c, w.tx_checksum_offload)),
    }
}

/// The desired devices: made, replaced, corrected or adopted; and the owned
/// devices the desired state does not have, noted for [`retire`].
pub fn devices(ctx: &mut Ctx, ops: &mut Vec<Op>) -> Result<(), Refusal> {
    let marker = ctx.desired.marker.as_str();
    for want in &ctx.desired.devices {
        let w = &want.vxlan;
        let create = Op::CreateLink { device: w.clone(), alias: want.alias.clone(), up: want.up };
        let Some(have) = ctx.live.links.get(&w.name) else {
            ops.push(create);
            ctx.fresh.insert(w.name.clone());
            continue;
        };
        let owned = have.alias.as_deref() == Some(marker);
        let mut why = replace_reasons(w, have, ctx.live);
        // Adopting keeps the device as it is, so it must already be the plan's, MAC included.
        if !owned && why.is_empty() && have.mac != Some(w.mac) {
            why.push(format!("address {}→{}", show(have.mac), w.mac));
        }
        if !why.is_empty() {
            if !owned && !ctx.opts.adopt {
                return Err(Refusal::Unowned { name: w.name.clone(), differences: why.join(", ") });
            }
            ops.push(Op::DeleteLink { name: w.name.clone(), why: why.join(", "), replacing: true });
            ops.push(create);
            ctx.fresh.insert(w.name.clone());
            continue;
        }
        let f = fix(want, have, ctx.live);
        if !f.is_empty() {
            ops.push(Op::FixLink { name: w.name.clone(), fix: f });
        }
    }
    tun(ctx, ops)?;
    let wanted = ctx.desired.planned_names();
    ctx.retired = ctx
        .live
        .links
        .values()
        .filter(|l| l.alias.as_deref() == Some(marker) && !wanted.contains(&l.name.as_str()))
        .collect();
    Ok(())
}

/// What about an existing device keeps it from being the udp backend's
/// TUN device: flanneld's flannel0 is single-queue and not persistent, so it
/// is replaced, never adopted.
fn tun_replace_reasons(have: &LiveLink) -> Vec<String> {
    let Some(t) = have.tun.as_ref().filter(|_| have.kind.as_deref() == Some("tun")) else {
        return vec![format!("kind {}, want tun", have.kind.as_deref().unwrap_or("none"))];
    };
    let mut why = Vec::new();
    if t.tun_type != Some(crate::tun::TYPE_TUN) {
        why.push("tap, want tun".to_string());
    }
    if t.pi != Some(false) {
        why.push("packet info on".to_string());
    }
    if t.multi_queue != Some(true) {
        why.push("single queue".to_string());
    }
    if t.persist != Some(true) {
        why.push("not persistent".to_string());
    }
    why
}

fn tun_fix(want: &TunState, have: &LiveLink) -> LinkFix {
    simple_fix(want.tun.mtu, want.up, &want.alias, have)
}

/// MTU, addrgen, state and alias: all a device without kind-specific
/// settings (TUN, userspace WireGuard) can be corrected in.
pub(super) fn simple_fix(mtu: u32, up: bool, alias: &Option<String>, have: &LiveLink) -> LinkFix {
    LinkFix {
        mtu: (have.mtu != Some(mtu)).then(|| (have.mtu.unwrap_or(0), mtu)),
        addrgen_none: crate::netaddr::takes_ipv6_settings(mtu) && have.addrgen != Some(ADDRGEN_NONE),
        up: (have.up != up).then_some(up),
        alias: (have.alias != *alias).then(|| (have.alias.clone(), alias.clone())),
        ..LinkFix::default()
    }
}

/// The udp backend's TUN device: made, replaced, corrected or adopted.
fn tun(ctx: &mut Ctx, ops: &mut Vec<Op>) -> Result<(), Refusal> {
    let Some(want) = &ctx.desired.tun else { return Ok(()) };
    let name = &want.tun.name;
    let create = Op::CreateTun { device: want.tun.clone(), alias: want.alias.clone(), up: want.up };
    let Some(have) = ctx.live.links.get(name) else {
        ops.push(create);
        ctx.fresh.insert(name.clone());
        return Ok(());
    };
    let why = tun_replace_reasons(have);
    if why.is_empty() {
        let f = tun_fix(want, have);
        if !f.is_empty() {
            ops.push(Op::FixLink { name: name.clone(), fix: f });
        }
        return Ok(());
    }
    let owned = have.alias.as_deref() == Some(ctx.desired.marker.as_str());
    if !owned && !ctx.opts.adopt {
        return Err(Refusal::Unowned { name: name.clone(), differences: why.join(", ") });
    }
    ops.push(Op::DeleteLink { name: name.clone(), why: why.join(", "), replacing: true });
    ops.push(create);
    ctx.fresh.insert(name.clone());
    Ok(())
}

/// Owned devices the desired state does not have go last. Phase 1 keeps
/// them all; phase 2 keeps those that still carried routes when it began,
/// since peers that have not switched may still send to them.
pub fn retire(ctx: &Ctx, ops: &mut Vec<Op>) {
    for l in &ctx.retired {
        let in_use = ctx.live.routes.iter().any(|r| r.oif == Some(l.index));
        let keep = match ctx.opts.phase {
            Phase::Prepare => true,
            Phase::Switch => in_use,
            Phase::Complete => false,
        };
        if !keep {
            ops.push(Op::DeleteLink { name: l.name.clone(), why: ctx.desired.retire_reason.clone(), replacing: false });
        }
    }
}
