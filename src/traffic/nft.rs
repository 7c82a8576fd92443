//! The rules as one nftables table per family, written exactly as `nft list
//! table` prints it (flanneld's pkg/trafficmngr/nftables/nftables.go: table
//! `flannel-ipv4`/`flannel-ipv6`, chains `postrtg` and `forward`, its
//! comments), so the listing of a converged node equals this text.
//!
//! Two deliberate differences from flanneld's nftables mode, to match its
//! iptables mode (and the rule list): the kube-proxy mark is tested
//! as a bit (`meta mark & 0x4000 == 0x4000`, like `--mark 0x4000/0x4000`),
//! and the fourth rule returns traffic from outside the cluster network to
//! this node's pods (flanneld's nftables code has `saddr != <pod subnet>
//! daddr <network>` there, which also exempts host-to-pod traffic that its
//! iptables mode masquerades).

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

/// The table as `nft list table` prints it; `None` when there is nothing to keep.
pub fn table_text(r: &FamilyRules) -> Option<String> {
    let (fam, name) = table_of(r.family);
    let mut chains = Vec::new();
    if r.masquerade {
        let (net, pod) = (r.network, r.subnet);
        let mcast = if r.family == Family::V4 { "224.0.0.0/4" } else { "ff00::/8" };
        let masq = if r.random_fully { "masquerade fully-random" } else { "masquerade" };
        chains.push(format!(
            "\tchain postrtg {{\n\t\tcomment \"chain to manage traffic masquerading by flannel\"\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tmeta mark & {KUBE_PROXY_MARK:#010x} == {KUBE_PROXY_MARK:#010x} return\n\t\t{fam} saddr {pod} {fam} daddr {net} return\n\t\t{fam} saddr {net} {fam} daddr {pod} return\n\t\t{fam} saddr != {net} {fam} daddr {pod} return\n\t\t{fam} saddr {net} {fam} daddr != {mcast} {masq}\n\t\t{fam} saddr != {net} {fam} daddr {net} {masq}\n\t}}\n"
        ));
    }
    if r.forward {
        let net = r.network;
        chains.push(format!(
            "\tchain forward {{\n\t\tcomment \"chain to accept flannel traffic\"\n\t\ttype filter hook forward priority filter; policy accept;\n\t\t{fam} saddr {net} accept\n\t\t{fam} daddr {net} accept\n\t}}\n"
        ));
    }
    if chains.is_empty() {
        return None;
    }
    Some(format!("table {fam} {name} {{\n\tcomment \"rules for {name}\"\n{}}}\n", chains.join("\n")))
}

/// An `nft -f` script that replaces the table in one transaction (or only
/// removes it, with `text` `None`); loading it twice is harmless.
pub fn replace_script(f: Family, text: Option<&str>) -> String {
    let (fam, name) = table_of(f);
    format!("table {fam} {name}\ndelete table {fam} {name}\n{}", text.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_nft_list_output() {
        let r = FamilyRules {
            family: Family::V4,
            network: "10.244.0.0/16".parse().expect("net"),
            subnet: "10.244.1.0/24".parse().expect("net"),
            masquerade: true,
            random_fully: true,
            forward: true,
        };
        assert_eq!(
            table_text(&r).expect("rules"),
            "table ip flannel-ipv4 {
\tcomment \"rules for flannel-ipv4\"
\tchain postrtg {
\t\tcomment \"chain to manage traffic masquerading by flannel\"
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tmeta mark & 0x00004000 == 0x00004000 return
\t\tip saddr 10.244.1.0/24 ip daddr 10.244.0.0/16 return
\t\tip saddr 10.244.0.0/16 ip daddr 10.244.1.0/24 return
\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.1.0/24 return
\t\tip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random
\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random
\t}

\tchain forward {
\t\tcomment \"chain to accept flannel traffic\"
\t\ttype filter hook forward priority filter; policy accept;
\t\tip saddr 10.244.0.0/16 accept
\t\tip daddr 10.244.0.0/16 accept
\t}
}
"
        );
        assert_eq!(table_text(&FamilyRules { masquerade: false, forward: false, ..r }), None);
    }
}
