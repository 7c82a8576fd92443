//! flanneld's traffic rules: each owned chain (iptables) or table
//! (nftables) made exactly as desired in one commit when it differs, removed
//! when the desired state has none of it. Compared with the tools' own listings.

use super::Ctx;
use crate::apply::desired::NftState;
use crate::apply::ops::{Op, RulesChange};
use crate::netaddr::Family;
use crate::topology::RulesBackend;
use crate::traffic::iptables::{self, SavedChain};
use crate::traffic::nft;

pub fn rules(ctx: &Ctx, ops: &mut Vec<Op>) {
    for &family in &ctx.desired.rule_families {
        iptables_family(ctx, family, ops);
        nft_family(ctx, family, ops);
    }
}

fn iptables_family(ctx: &Ctx, family: Family, ops: &mut Vec<Op>) {
    // No iptables on this node: none is wanted (apply checked) and nothing can be ours.
    let Some(saved) = ctx.live.rules.iptables.get(&family) else { return };
    let wanted = ctx.desired.rules.iptables.get(&family);
    for owned in iptables::OWNED {
        let live = saved.get(owned.chain).cloned().unwrap_or_default();
        let want: Option<&SavedChain> = wanted.and_then(|w| w.get(owned.chain)).filter(|w| w.exists);
        let kept = match live.referenced_from.first() {
            Some(r) if want.is_none() => format!(" (kept empty: `{r}` refers to it)"),
            _ => String::new(),
        };
        let change = |want: Option<&SavedChain>| RulesChange {
            backend: RulesBackend::Iptables,
            family,
            target: format!("{} {}{kept}", owned.table, owned.chain),
            count: want.map_or(0, |w| w.rules.len()),
            was: live.exists.then_some(live.rules.len()),
            payload: iptables::payload(owned, want, &live),
        };
        match want {
            Some(w) if w.same_content(&live) => {}
            Some(w) => ops.push(Op::SetRules(change(Some(w)))),
            None if !live.is_removed() && ctx.prunes() => ops.push(Op::DelRules(change(None))),
            None => {}
        }
    }
    made_tables(ctx, family, ops);
}

/// A revert deletes the iptables tables the apply made, once bare again
/// (after the chains in them went: same stage, pushed later).
fn made_tables(ctx: &Ctx, family: Family, ops: &mut Vec<Op>) {
    let Some(existed) = ctx.desired.rules.iptables_tables.as_ref().and_then(|t| t.get(&family)) else { return };
    let wanted = ctx.desired.rules.iptables.get(&family);
    let fam = nft::table_of(family).0;
    for (table, bare) in ctx.live.rules.tables.get(&family).into_iter().flatten() {
        let ours_wanted = iptables::OWNED
            .iter()
            .any(|o| o.table == table && wanted.and_then(|w| w.get(o.chain)).is_some_and(|c| c.exists));
        if *bare && !existed.contains(table) && !ours_wanted && ctx.prunes() {
            ops.push(Op::DelRules(RulesChange {
                backend: RulesBackend::Nftables,
                family,
                target: format!("{fam} {table} (made by the apply reverted)"),
                count: 0,
                was: Some(0),
                payload: format!("table {fam} {table}\ndelete table {fam} {table}\n"),
            }));
        }
    }
}

fn nft_family(ctx: &Ctx, family: Family, ops: &mut Vec<Op>) {
    let want = ctx.desired.rules.nft.get(&family);
    let live = ctx.live.rules.nft.get(&family);
    let (fam, name) = nft::table_of(family);
    let change = |want: Option<&NftState>| RulesChange {
        backend: RulesBackend::Nftables,
        family,
        target: format!("{fam} {name}"),
        count: want.map_or(0, |w| w.table.rule_count()),
        was: live.map(nft::NftTable::rule_count),
        payload: nft::replace_script(family, want.map(|w| w.text.as_str())),
    };
    match (want, live) {
        (Some(w), Some(l)) if w.table == *l => {}
        (Some(w), _) => ops.push(Op::SetRules(change(Some(w)))),
        (None, Some(_)) if ctx.prunes() => ops.push(Op::DelRules(change(None))),
        (None, _) => {}
    }
}
