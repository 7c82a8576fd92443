//! A snapshot is read back from disk before a rollback executes it, so it
//! gets plan.json's trust rules: every object in it must be one the plan it
//! was taken around owns, with the plan's scope. An edited file cannot name
//! a foreign device, route, chain, table or sysctl.

use std::collections::BTreeSet;

use crate::apply::desired::{Desired, owns};
use crate::plan::NodePlan;
use crate::topology::validate::is_ifname;
use crate::traffic::iptables::{OWNED, SavedChain};
use crate::traffic::nft;

/// Targets flannel-gen's chains ever jump to.
const RULE_TARGETS: [&str; 3] = ["RETURN", "MASQUERADE", "ACCEPT"];

/// Why `state` is not a snapshot of `plan`'s owned objects; empty when it is.
pub fn problems(plan: &NodePlan, state: &Desired) -> Vec<String> {
    let around = Desired::from_plan(plan);
    let mut p = Vec::new();
    let scope = |d: &Desired| (d.marker.clone(), d.uplink.clone(), d.scope.clone(), d.claimed.clone());
    if scope(state) != scope(&around) {
        p.push("state: marker, uplink, cluster scope or routed destinations differ from the plan's".to_string());
    }
    if state.rule_families.iter().any(|f| !around.rule_families.contains(f)) {
        p.push("state.ruleFamilies: a family the plan does not run".to_string());
    }
    let devices = devices(state, &around, &mut p);
    entries(state, &devices, &mut p);
    routes(state, &devices, &mut p);
    rules(state, &mut p);
    sysctls(state, &around, &mut p);
    p
}

/// The state's device names, each checked: planned or marked, never the uplink.
fn devices<'a>(state: &'a Desired, around: &Desired, p: &mut Vec<String>) -> BTreeSet<&'a str> {
    let planned = around.planned_names();
    let vx = state.devices.iter().map(|d| (d.vxlan.name.as_str(), d.alias.as_deref(), Some(d.vxlan.dev.as_str())));
    let tun = state.tun.iter().map(|t| (t.tun.name.as_str(), t.alias.as_deref(), None));
    let mut names = BTreeSet::new();
    for (name, alias, dev) in vx.chain(tun) {
        let ours = alias == Some(state.marker.as_str()) || planned.contains(&name);
        if !is_ifname(name) || name == state.uplink || !ours {
            p.push(format!("state.devices: `{name}` is not a device flannel-gen owns"));
        } else if dev.is_some_and(|d| d != state.uplink) {
            p.push(format!("state.devices: `{name}` is not on the uplink {}", state.uplink));
        } else if !names.insert(name) {
            p.push(format!("state.devices: `{name}` twice"));
        }
    }
    names
}

/// Addresses, neighbours and FDB entries only on the state's own devices.
fn entries(state: &Desired, devices: &BTreeSet<&str>, p: &mut Vec<String>) {
    let on = state.addresses.iter().map(|(d, _)| ("addresses", d));
    let on = on.chain(state.neighbours.iter().map(|n| ("neighbours", &n.dev)));
    for (what, dev) in on.chain(state.fdb.iter().map(|f| ("fdb", &f.dev))) {
        if !devices.contains(dev.as_str()) {
            p.push(format!("state.{what}: device `{dev}` is not one of the snapshot's devices"));
        }
    }
}

/// Routes inside the cluster scope (or the network route on the TUN device),
/// through the uplink or an owned device.
fn routes(state: &Desired, devices: &BTreeSet<&str>, p: &mut Vec<String>) {
    let tun = state.tun.as_ref().map(|t| t.tun.name.as_str());
    for r in &state.routes {
        let dev = r.route.dev.as_str();
        let network_on_tun = tun == Some(dev) && state.scope.iter().any(|s| s.network == r.route.dst);
        if !owns(&state.scope, &r.route.dst) && !network_on_tun {
            p.push(format!("state.routes: {} is outside what flannel-gen owns", r.route.dst));
        }
        if dev != state.uplink && !devices.contains(dev) {
            p.push(format!("state.routes: {} leaves through `{dev}`, not the uplink or an owned device", r.route.dst));
        }
    }
    for dst in &state.blackholes {
        if !state.scope.iter().any(|s| s.network.contains(dst)) {
            p.push(format!("state.blackholes: {dst} is outside the cluster networks"));
        }
    }
}

fn rules(state: &Desired, p: &mut Vec<String>) {
    for (family, chains) in &state.rules.iptables {
        if !state.rule_families.contains(family) {
            p.push(format!("state.rules.iptables: family {family} is not in scope"));
        }
        for (name, saved) in chains {
            match OWNED.iter().find(|o| o.chain == name) {
                Some(o) => chain_problems(o.chain, o.hook, saved, p),
                None => p.push(format!("state.rules.iptables: `{name}` is not a chain flannel-gen owns")),
            }
        }
    }
    for (family, s) in &state.rules.nft {
        if !state.rule_families.contains(family) || !one_owned_table(nft::table_of(*family), &s.text) {
            p.push(format!("state.rules.nft: the {family} text is not exactly flannel-gen's table"));
        }
        let chains_ok = s.table.chains.iter().all(|c| ["postrtg", "forward"].contains(&c.name.as_str()));
        if !chains_ok || !s.table.other.is_empty() {
            p.push(format!("state.rules.nft: the {family} table holds more than flannel's chains"));
        }
    }
}

/// Each line one `-A` of the chain (or a jump into it from its hook), with a
/// target flannel-gen writes: nothing iptables-restore would read as more.
fn chain_problems(chain: &str, hook: &str, saved: &SavedChain, p: &mut Vec<String>) {
    let line_ok = |l: &String, prefix: String, targets: &[&str]| {
        !l.chars().any(char::is_control)
            && l.starts_with(&prefix)
            && targets
                .iter()
                .any(|t| l.ends_with(&format!(" -j {t}")) || l.ends_with(&format!(" -j {t} --random-fully")))
    };
    for l in &saved.rules {
        if !line_ok(l, format!("-A {chain} "), &RULE_TARGETS) {
            p.push(format!("state.rules.iptables.{chain}: `{}` is not a rule flannel-gen writes", l.escape_debug()));
        }
    }
    for l in &saved.jumps {
        if !line_ok(l, format!("-A {hook} "), &[chain]) {
            p.push(format!("state.rules.iptables.{chain}: `{}` is not a jump into it", l.escape_debug()));
        }
    }
}

/// `text` is one `table FAMILY NAME { … }` block and nothing after it.
fn one_owned_table((fam, name): (&str, &str), text: &str) -> bool {
    let Some(body) = text.strip_prefix(&format!("table {fam} {name} {{\n")) else { return false };
    let mut depth = 1u32;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '\r' | '\0' => return false,
            _ => {}
        }
        if depth == 0 {
            return body[i + 1..].trim().is_empty();
        }
    }
    false
}

/// Only the plan's sysctl keys and the rp_filter of the snapshot's devices,
/// with numeric values: nothing else under /proc/sys is written.
fn sysctls(state: &Desired, around: &Desired, p: &mut Vec<String>) {
    let devices: Vec<String> =
        state.devices.iter().map(|d| format!("net/ipv4/conf/{}/rp_filter", d.vxlan.name)).collect();
    for s in &state.sysctls {
        let allowed = around.sysctls.iter().any(|a| a.key == s.key) || devices.contains(&s.key);
        let numeric = !s.value.is_empty()
            && s.value.len() <= 32
            && s.value.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b' ' || b == b'\t');
        if !allowed || !numeric {
            p.push(format!(
                "state.sysctls: `{}` = `{}` is not a setting flannel-gen makes",
                s.key,
                s.value.escape_debug()
            ));
        }
    }
}
