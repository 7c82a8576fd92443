//! The rules as one nftables table per family (flanneld's
//! pkg/trafficmngr/nftables/nftables.go: table `flannel-ipv4`/`flannel-ipv6`,
//! chains `postrtg` and `forward`, its comments). Each rule is data
//! ([`Rule`]) written two ways: as nft's input language, which apply loads
//! and the boot unit's file holds (with flanneld's comments), and as nft's
//! JSON schema (libnftables-json(5)), which apply compares with `nft -j list
//! table` (see [`table`]): the text nft prints back may change between
//! versions, the schema is the documented interface. nft 1.0.6 lists no
//! table or chain comments in JSON, so those are not compared.
//!
//! Two deliberate differences from flanneld's nftables mode, to match its
//! iptables mode (and the rule list): the kube-proxy mark is tested
//! as a bit (`meta mark & 0x4000 == 0x4000`, like `--mark 0x4000/0x4000`),
//! and the fourth rule returns traffic from outside the cluster network to
//! this node's pods (flanneld's nftables code has `saddr != <pod subnet>
//! daddr <network>` there, which also exempts host-to-pod traffic that its
//! iptables mode masquerades).

mod table;

pub use table::{NftTable, parse_listing};

use ipnet::IpNet;
use serde_json::{Value, json};

use super::KUBE_PROXY_MARK;
use crate::netaddr::Family;
use crate::plan::objects::FamilyRules;

/// `(family keyword, table name)` of a family's table.
pub fn table_of(f: Family) -> (&'static str, &'static str) {
    match f {
        Family::V4 => ("ip", "flannel-ipv4"),
        Family::V6 => ("ip6", "flannel-ipv6"),
    }
}

/// One test of a rule.
enum Match {
    /// `meta mark & M == M`: kube-proxy's mark is set.
    Mark,
    /// `<fam> saddr [!=] NET`, `<fam> daddr [!=] NET`.
    Addr { field: &'static str, equal: bool, net: IpNet },
}

enum Verdict {
    Return,
    Accept,
    Masquerade { fully_random: bool },
}

struct Rule(Vec<Match>, Verdict);

/// A base chain: name, comment, `type hook priority`, and its rules.
struct Chain {
    name: &'static str,
    comment: &'static str,
    kind: &'static str,
    hook: &'static str,
    /// As nft names the priority, and the number it stands for.
    priority: (&'static str, i64),
    rules: Vec<Rule>,
}

fn is(field: &'static str, net: IpNet) -> Match {
    Match::Addr { field, equal: true, net }
}

fn not(field: &'static str, net: IpNet) -> Match {
    Match::Addr { field, equal: false, net }
}

fn chains(r: &FamilyRules) -> Vec<Chain> {
    let (net, pod) = (r.network, r.subnet);
    let mut out = Vec::new();
    if r.masquerade {
        let mcast: IpNet = if r.family == Family::V4 { IpNet::V4(multicast_v4()) } else { IpNet::V6(multicast_v6()) };
        let masq = || Verdict::Masquerade { fully_random: r.random_fully };
        out.push(Chain {
            name: "postrtg",
            comment: "chain to manage traffic masquerading by flannel",
            kind: "nat",
            hook: "postrouting",
            priority: ("srcnat", 100),
            rules: vec![
                Rule(vec![Match::Mark], Verdict::Return),
                Rule(vec![is("saddr", pod), is("daddr", net)], Verdict::Return),
                Rule(vec![is("saddr", net), is("daddr", pod)], Verdict::Return),
                Rule(vec![not("saddr", net), is("daddr", pod)], Verdict::Return),
                Rule(vec![is("saddr", net), not("daddr", mcast)], masq()),
                Rule(vec![not("saddr", net), is("daddr", net)], masq()),
            ],
        });
    }
    if r.forward {
        out.push(Chain {
            name: "forward",
            comment: "chain to accept flannel traffic",
            kind: "filter",
            hook: "forward",
            priority: ("filter", 0),
            rules: vec![Rule(vec![is("saddr", net)], Verdict::Accept), Rule(vec![is("daddr", net)], Verdict::Accept)],
        });
    }
    out
}

fn multicast_v4() -> ipnet::Ipv4Net {
    ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(224, 0, 0, 0), 4).unwrap_or_default()
}

fn multicast_v6() -> ipnet::Ipv6Net {
    ipnet::Ipv6Net::new(std::net::Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8).unwrap_or_default()
}

impl Rule {
    fn text(&self, fam: &str) -> String {
        let mut words: Vec<String> = self
            .0
            .iter()
            .map(|m| match m {
                Match::Mark => format!("meta mark & {KUBE_PROXY_MARK:#010x} == {KUBE_PROXY_MARK:#010x}"),
                Match::Addr { field, equal: true, net } => format!("{fam} {field} {net}"),
                Match::Addr { field, equal: false, net } => format!("{fam} {field} != {net}"),
            })
            .collect();
        words.push(
            match self.1 {
                Verdict::Return => "return",
                Verdict::Accept => "accept",
                Verdict::Masquerade { fully_random: true } => "masquerade fully-random",
                Verdict::Masquerade { fully_random: false } => "masquerade",
            }
            .into(),
        );
        words.join(" ")
    }

    /// The rule's `expr` as `nft -j list` shows it.
    fn json(&self, fam: &str) -> Value {
        let mut expr: Vec<Value> = self
            .0
            .iter()
            .map(|m| match m {
                Match::Mark => json!({"match": {
                    "op": "==",
                    "left": {"&": [{"meta": {"key": "mark"}}, KUBE_PROXY_MARK]},
                    "right": KUBE_PROXY_MARK,
                }}),
                Match::Addr { field, equal, net } => json!({"match": {
                    "op": if *equal { "==" } else { "!=" },
                    "left": {"payload": {"protocol": fam, "field": field}},
                    "right": prefix(*net),
                }}),
            })
            .collect();
        expr.push(match self.1 {
            Verdict::Return => json!({"return": null}),
            Verdict::Accept => json!({"accept": null}),
            Verdict::Masquerade { fully_random: true } => table::fully_random(),
            Verdict::Masquerade { fully_random: false } => json!({"masquerade": null}),
        });
        Value::Array(expr)
    }
}

/// A network as nft lists it: a prefix, or the bare address for a host route.
fn prefix(net: IpNet) -> Value {
    if net.prefix_len() == net.max_prefix_len() {
        json!(net.addr().to_string())
    } else {
        json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix_len()}})
    }
}

/// The table in nft's input language (and as `nft list table` prints it on
/// Debian 12's nft 1.0.6); `None` when there is nothing to keep.
pub fn table_text(r: &FamilyRules) -> Option<String> {
    let (fam, name) = table_of(r.family);
    let chains: Vec<String> = chains(r)
        .iter()
        .map(|c| {
            let rules: String = c.rules.iter().map(|rule| format!("\t\t{}\n", rule.text(fam))).collect();
            format!(
                "\tchain {} {{\n\t\tcomment \"{}\"\n\t\ttype {} hook {} priority {}; policy accept;\n{rules}\t}}\n",
                c.name, c.comment, c.kind, c.hook, c.priority.0
            )
        })
        .collect();
    if chains.is_empty() {
        return None;
    }
    Some(format!("table {fam} {name} {{\n\tcomment \"rules for {name}\"\n{}}}\n", chains.join("\n")))
}

/// The table as apply compares it with `nft -j list table`.
pub fn table(r: &FamilyRules) -> Option<NftTable> {
    let fam = table_of(r.family).0;
    let chains: Vec<table::NftChain> = chains(r)
        .iter()
        .map(|c| table::NftChain {
            name: c.name.to_string(),
            base: Some(json!({"type": c.kind, "hook": c.hook, "prio": c.priority.1, "policy": "accept"})),
            rules: c.rules.iter().map(|rule| rule.json(fam)).collect(),
        })
        .collect();
    (!chains.is_empty()).then(|| NftTable { chains, other: Vec::new() })
}

/// An `nft -f` script that replaces the table in one transaction (or only
/// removes it, with `text` `None`); loading it twice is harmless.
pub fn replace_script(f: Family, text: Option<&str>) -> String {
    let (fam, name) = table_of(f);
    format!("table {fam} {name}\ndelete table {fam} {name}\n{}", text.unwrap_or_default())
}

#[cfg(test)]
mod tests;
