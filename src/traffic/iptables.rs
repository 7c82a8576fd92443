//! The rules as iptables-restore input and as iptables-save prints them
//! (flanneld's pkg/trafficmngr/iptables/iptables.go `masqRules`, `forwardRules`).

use std::collections::BTreeMap;

use super::{FORWARD_COMMENT, KUBE_PROXY_MARK, MASQ_COMMENT};
use crate::netaddr::Family;
use crate::plan::objects::FamilyRules;

/// A chain flannel-gen owns: its table, its name, and the chain it is jumped to from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owned {
    pub table: &'static str,
    pub chain: &'static str,
    pub hook: &'static str,
    pub comment: &'static str,
}

pub const MASQ: Owned = Owned { table: "nat", chain: "FLANNEL-POSTRTG", hook: "POSTROUTING", comment: MASQ_COMMENT };
pub const FORWARD: Owned = Owned { table: "filter", chain: "FLANNEL-FWD", hook: "FORWARD", comment: FORWARD_COMMENT };
pub const OWNED: [Owned; 2] = [MASQ, FORWARD];

/// One owned chain's wanted content, as `-A` lines in iptables-save's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub owned: Owned,
    pub rules: Vec<String>,
}

impl Owned {
    /// The single jump into the chain, appended to the hook chain (as flanneld does).
    pub fn jump(&self) -> String {
        format!("-A {} -m comment --comment \"{}\" -j {}", self.hook, self.comment, self.chain)
    }
}

pub fn save_program(f: Family) -> &'static str {
    if f == Family::V4 { "iptables-save" } else { "ip6tables-save" }
}

pub fn restore_program(f: Family) -> &'static str {
    if f == Family::V4 { "iptables-restore" } else { "ip6tables-restore" }
}

fn multicast(f: Family) -> &'static str {
    if f == Family::V4 { "224.0.0.0/4" } else { "ff00::/8" }
}

/// The chains a family's rules fill: masquerade (nat) and forward (filter).
pub fn chains(r: &FamilyRules) -> Vec<Chain> {
    let mut v = Vec::new();
    if r.masquerade {
        let (net, pod) = (r.network, r.subnet);
        let masq = if r.random_fully { "MASQUERADE --random-fully" } else { "MASQUERADE" };
        let c = MASQ_COMMENT;
        let line =
            |spec: String, target: &str| format!("-A {} {spec} -m comment --comment \"{c}\" -j {target}", MASQ.chain);
        v.push(Chain {
            owned: MASQ,
            rules: vec![
                line(format!("-m mark --mark {KUBE_PROXY_MARK:#x}/{KUBE_PROXY_MARK:#x}"), "RETURN"),
                line(format!("-s {pod} -d {net}"), "RETURN"),
                line(format!("-s {net} -d {pod}"), "RETURN"),
                line(format!("! -s {net} -d {pod}"), "RETURN"),
                line(format!("-s {net} ! -d {}", multicast(r.family)), masq),
                line(format!("! -s {net} -d {net}"), masq),
            ],
        });
    }
    if r.forward {
        let c = FORWARD_COMMENT;
        let n = r.network;
        v.push(Chain {
            owned: FORWARD,
            rules: vec![
                format!("-A {} -s {n} -m comment --comment \"{c}\" -j ACCEPT", FORWARD.chain),
                format!("-A {} -d {n} -m comment --comment \"{c}\" -j ACCEPT", FORWARD.chain),
            ],
        });
    }
    v
}

/// What `iptables-save` shows of one owned chain.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SavedChain {
    pub exists: bool,
    pub rules: Vec<String>,
    /// Rules in the hook chain that jump to this chain, as saved.
    pub jumps: Vec<String>,
    /// Other chains' rules that jump or go to this chain: someone else's,
    /// so the chain cannot be deleted, only emptied. Not content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referenced_from: Vec<String>,
}

impl SavedChain {
    /// The same chain, rules and jumps (who else refers to it aside).
    pub fn same_content(&self, other: &SavedChain) -> bool {
        (self.exists, &self.rules, &self.jumps) == (other.exists, &other.rules, &other.jumps)
    }

    /// Removed as far as flannel-gen may: gone, or left empty because
    /// another chain refers to it.
    pub fn is_removed(&self) -> bool {
        !self.exists && self.jumps.is_empty()
            || self.rules.is_empty() && self.jumps.is_empty() && !self.referenced_from.is_empty()
    }
}

/// The owned chains in `iptables-save` output, by chain name.
pub fn parse_save(text: &str) -> BTreeMap<&'static str, SavedChain> {
    let mut out: BTreeMap<&'static str, SavedChain> = OWNED.iter().map(|o| (o.chain, SavedChain::default())).collect();
    let mut table = "";
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = if t == "nat" {
                "nat"
            } else if t == "filter" {
                "filter"
            } else {
                ""
            };
            continue;
        }
        for o in OWNED.iter().filter(|o| o.table == table) {
            let Some(saved) = out.get_mut(o.chain) else { continue };
            if line.starts_with(&format!(":{} ", o.chain)) {
                saved.exists = true;
            } else if line.starts_with(&format!("-A {} ", o.chain)) {
                saved.rules.push(line.to_string());
            } else if line.starts_with(&format!("-A {} ", o.hook)) && line.ends_with(&format!(" -j {}", o.chain)) {
                saved.jumps.push(line.to_string());
            } else if refers_to(line, o.chain) {
                saved.referenced_from.push(line.to_string());
            }
        }
    }
    out
}

/// The tables in `iptables-save` output, each with whether it holds nothing
/// but flannel-gen's chains and empty built-in chains with policy ACCEPT:
/// what `iptables-restore` leaves behind when it made the table for us.
pub fn bare_tables(text: &str) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    let mut table = String::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_string();
            out.insert(table.clone(), true);
            continue;
        }
        if line.starts_with('#') || line == "COMMIT" || table.is_empty() {
            continue;
        }
        let ours = OWNED.iter().filter(|o| o.table == table).any(|o| {
            line.starts_with(&format!(":{} ", o.chain))
                || line.starts_with(&format!("-A {} ", o.chain))
                || line.starts_with(&format!("-A {} ", o.hook)) && line.ends_with(&format!(" -j {}", o.chain))
        });
        let empty_builtin = line.starts_with(':') && line.split_whitespace().nth(1) == Some("ACCEPT");
        if !ours && !empty_builtin {
            out.insert(table.clone(), false);
        }
    }
    out
}

/// Whether a rule of another chain jumps or goes to `chain`.
fn refers_to(line: &str, chain: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.first() == Some(&"-A")
        && words.windows(2).any(|w| matches!(w[0], "-j" | "--jump" | "-g" | "--goto") && w[1] == chain)
}

/// iptables-restore --noflush input that makes an owned chain exactly
/// `want` (its rules, and the jumps into it) — or removes it with its jumps
/// when `want` is `None` or does not exist — in one commit of its table.
/// Declaring the chain flushes it; jumps that differ are deleted as saved,
/// then the wanted ones appended.
pub fn payload(owned: Owned, want: Option<&SavedChain>, live: &SavedChain) -> String {
    let want = want.filter(|w| w.exists);
    let mut p = format!("*{}\n:{} - [0:0]\n", owned.table, owned.chain);
    let wanted_jumps = want.map_or(&[][..], |w| w.jumps.as_slice());
    let keep = live.jumps == wanted_jumps;
    if !keep {
        for j in &live.jumps {
            p.push_str(&j.replacen("-A ", "-D ", 1));
            p.push('\n');
        }
    }
    match want {
        Some(w) => {
            let jumps = if keep { &[][..] } else { wanted_jumps };
            for line in jumps.iter().chain(&w.rules) {
                p.push_str(line);
                p.push('\n');
            }
        }
        // A chain someone else jumps to stays, emptied (its declaration flushed it).
        None if !live.referenced_from.is_empty() => {}
        None => p.push_str(&format!("-X {}\n", owned.chain)),
    }
    p.push_str("COMMIT\n");
    p
}

impl Chain {
    /// The chain as iptables-save shows it once in place: its rules and one jump.
    pub fn saved(&self) -> SavedChain {
        SavedChain {
            exists: true,
            rules: self.rules.clone(),
            jumps: vec![self.owned.jump()],
            referenced_from: Vec::new(),
        }
    }
}

/// The rules file loaded once at boot (`iptables-restore --noflush FILE`).
pub fn boot_file(r: &FamilyRules) -> String {
    let mut out = String::new();
    for c in chains(r) {
        out.push_str(&payload(c.owned, Some(&c.saved()), &SavedChain::default()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(masquerade: bool, forward: bool) -> FamilyRules {
        FamilyRules {
            family: Family::V4,
            network: "10.244.0.0/16".parse().expect("net"),
            subnet: "10.244.1.0/24".parse().expect("net"),
            masquerade,
            random_fully: true,
            forward,
        }
    }

    /// The lines flanneld's masqRules and forwardRules produce for this lease,
    /// as iptables-save prints them (checked against iptables 1.8.9).
    #[test]
    fn boot_file_is_flanneld_rules_in_restore_form() {
        assert_eq!(
            boot_file(&rules(true, true)),
            "*nat
:FLANNEL-POSTRTG - [0:0]
-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment \"flanneld masq\" -j RETURN
-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment \"flanneld masq\" -j RETURN
-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment \"flanneld masq\" -j RETURN
-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment \"flanneld masq\" -j RETURN
-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully
COMMIT
*filter
:FLANNEL-FWD - [0:0]
-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD
-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT
-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT
COMMIT
"
        );
        assert!(!boot_file(&rules(false, true)).contains("*nat"));
    }

    #[test]
    fn saved_state_is_read_back_and_a_stray_jump_replaced() {
        let want = chains(&rules(true, false)).remove(0);
        let mut save = String::from(
            "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j DOCKER-USER\nCOMMIT\n*nat\n:POSTROUTING ACCEPT [0:0]\n:FLANNEL-POSTRTG - [0:0]\n",
        );
        save.push_str("-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n");
        save.push_str("-A POSTROUTING -j FLANNEL-POSTRTG\n");
        for r in &want.rules {
            save.push_str(&format!("{r}\n"));
        }
        save.push_str("COMMIT\n");
        let saved = parse_save(&save);
        let masq = &saved["FLANNEL-POSTRTG"];
        assert!(masq.exists);
        assert_eq!(masq.rules, want.rules);
        assert_eq!(masq.jumps, ["-A POSTROUTING -j FLANNEL-POSTRTG"], "docker's own rule is not ours");
        assert!(!saved["FLANNEL-FWD"].exists);
        let p = payload(MASQ, Some(&want.saved()), masq);
        assert!(
            p.starts_with(
                "*nat\n:FLANNEL-POSTRTG - [0:0]\n-D POSTROUTING -j FLANNEL-POSTRTG\n-A POSTROUTING -m comment"
            ),
            "{p}"
        );
        assert_eq!(
            payload(MASQ, None, masq),
            "*nat\n:FLANNEL-POSTRTG - [0:0]\n-D POSTROUTING -j FLANNEL-POSTRTG\n-X FLANNEL-POSTRTG\nCOMMIT\n"
        );
    }
}
