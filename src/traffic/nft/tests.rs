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

fn rules(family: Family, net: &str, subnet: &str, random_fully: bool) -> FamilyRules {
    FamilyRules {
        family,
        network: net.parse().expect("net"),
        subnet: subnet.parse().expect("net"),
        masquerade: true,
        random_fully,
        forward: true,
    }
}

/// What `nft -j list table` printed (Debian 12, nft 1.0.6) after `nft -f`
/// loaded [`table_text`] of the same rules: the two forms agree.
#[test]
fn the_table_is_what_nft_lists_for_its_text() {
    let cases = [
        ("ipv4-fully-random.json", rules(Family::V4, "10.244.0.0/16", "10.244.1.0/24", true)),
        ("ipv6-plain.json", rules(Family::V6, "fd00:10:244::/56", "fd00:10:244:1::/64", false)),
    ];
    for (file, r) in cases {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nft").join(file);
        let listing = std::fs::read_to_string(&path).expect("fixture");
        let live = parse_listing(&listing).expect("parses");
        assert_eq!(Some(live.clone()), table(&r), "{file}");
        assert_eq!(live.rule_count(), 8, "{file}");
        assert_eq!(live.masquerades_fully_random(), r.random_fully, "{file}");
        // A changed rule or a chain more is a difference.
        let other = rules(r.family, &r.network.to_string(), &r.network.to_string(), r.random_fully);
        assert_ne!(Some(live.clone()), table(&other), "{file}");
        assert_ne!(Some(live), table(&FamilyRules { forward: false, ..r }), "{file}");
    }
    let fully = table(&rules(Family::V4, "10.244.0.0/16", "10.244.1.0/24", true)).expect("table");
    let plain = table(&rules(Family::V4, "10.244.0.0/16", "10.244.1.0/24", false));
    assert_eq!(Some(fully.without_fully_random()), plain);
}

#[test]
fn a_listing_with_more_than_chains_and_rules_keeps_it_apart() {
    let listing = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "ip", "name": "flannel-ipv4", "handle": 1}},
        {"chain": {"family": "ip", "table": "flannel-ipv4", "name": "extra", "handle": 2}},
        {"set": {"family": "ip", "name": "s", "table": "flannel-ipv4", "type": "ipv4_addr", "handle": 3}},
        {"rule": {"family": "ip", "table": "flannel-ipv4", "chain": "extra", "handle": 4, "expr": [{"masquerade": {"flags": ["fully-random"]}}]}}]}"#;
    let t = parse_listing(listing).expect("parses");
    assert_eq!(t.chains.len(), 1);
    assert_eq!(t.chains[0].base, None, "a regular chain");
    assert_eq!(
        t.chains[0].rules,
        [serde_json::json!([{"masquerade": {"flags": "fully-random"}}])],
        "one flag, as a string"
    );
    assert_eq!(
        t.other,
        [serde_json::json!({"set": {"family": "ip", "name": "s", "table": "flannel-ipv4", "type": "ipv4_addr"}})]
    );
    assert!(parse_listing("not json").is_err());
    assert!(parse_listing("{}").is_err());
}
