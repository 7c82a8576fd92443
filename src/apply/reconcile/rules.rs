//! flanneld's traffic rules: each owned chain (iptables) or table
//! (nftables) made exactly as planned in one commit when it differs, removed
//! when the plan has none of it. Compared with the tools' own listings.

use std::collections::BTreeMap;

use super::Ctx;
use crate::apply::ops::{Op, RulesChange};
use crate::netaddr::Family;
use crate::plan::objects::FamilyRules;
use crate::topology::RulesBackend;
use crate::traffic::{iptables, nft};

pub fn rules(ctx: &Ctx, ops: &mut Vec<Op>) {
    let backend = ctx.plan.traffic_rules.map(|t| t.backend);
    let want: BTreeMap<Family, FamilyRules> = ctx.plan.family_rules().into_iter().map(|r| (r.family, r)).collect();
    for family in Family::ALL {
        let fr = want.get(&family);
        iptables_family(ctx, family, fr.filter(|_| backend == Some(RulesBackend::Iptables)), ops);
        nft_family(ctx, family, fr.filter(|_| backend == Some(RulesBackend::Nftables)), ops);
    }
}

fn iptables_family(ctx: &Ctx, family: Family, want: Option<&FamilyRules>, ops: &mut Vec<Op>) {
    // No iptables on this node: the plan asks for none (apply checked), and nothing can be ours.
    let Some(saved) = ctx.live.rules.iptables.get(&family) else { return };
    let chains = want.map(iptables::chains).unwrap_or_default();
    for owned in iptables::OWNED {
        let live = saved.get(owned.chain).cloned().unwrap_or_default();
        let change = |count: usize, want: Option<&iptables::Chain>| RulesChange {
            backend: RulesBackend::Iptables,
            family,
            target: format!("{} {}", owned.table, owned.chain),
            count,
            was: live.exists.then_some(live.rules.len()),
            payload: iptables::payload(owned, want, &live),
        };
        match chains.iter().find(|c| c.owned == owned) {
            Some(c) if live.exists && live.rules == c.rules && live.jumps == [owned.jump()] => {}
            Some(c) => ops.push(Op::SetRules(change(c.rules.len(), Some(c)))),
            None if (live.exists || !live.jumps.is_empty()) && ctx.prunes() => ops.push(Op::DelRules(change(0, None))),
            None => {}
        }
    }
}

/// Rule lines of an `nft list table` listing.
fn nft_rules(text: &str) -> usize {
    text.lines().filter(|l| ["return", "accept", "masquerade", "fully-random"].iter().any(|w| l.ends_with(w))).count()
}

fn nft_family(ctx: &Ctx, family: Family, want: Option<&FamilyRules>, ops: &mut Vec<Op>) {
    let want = want.and_then(nft::table_text);
    let live = ctx.live.rules.nft.get(&family);
    let (fam, name) = nft::table_of(family);
    let change = |text: Option<&str>| RulesChange {
        backend: RulesBackend::Nftables,
        family,
        target: format!("{fam} {name}"),
        count: text.map_or(0, nft_rules),
        was: live.map(|l| nft_rules(l)),
        payload: nft::replace_script(family, text),
    };
    match (&want, live) {
        (Some(w), Some(l)) if w == l => {}
        (Some(w), _) => ops.push(Op::SetRules(change(Some(w)))),
        (None, Some(_)) if ctx.prunes() => ops.push(Op::DelRules(change(None))),
        (None, _) => {}
    }
}
