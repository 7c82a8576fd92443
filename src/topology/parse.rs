//! Parsing a topology: YAML syntax with a resource budget, and serde's
//! structural errors turned into located diagnostics. (Reading the file,
//! with its size limit, is [`crate::input`].)

use std::path::Path;

use super::schema::{KEY_LEVELS, TopologyDoc};
use crate::diag::Diagnostics;

/// Parses topology text. `path` is only used to name the file in diagnostics.
pub fn parse_topology(path: &Path, text: &str) -> Result<TopologyDoc, Diagnostics> {
    if text.trim().is_empty() {
        return Err(Diagnostics::whole_file(
            path,
            "empty file: expected a topology document (version: 1, cluster, network, backend, nodes)",
        ));
    }
    crate::yaml::parse_document(path, text, KEY_LEVELS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Diagnostic, Pos};

    fn err(text: &str) -> Diagnostic {
        match parse_topology(Path::new("t.yaml"), text) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(d) => d.0.into_iter().next().expect("one diagnostic"),
        }
    }

    const HEAD: &str = "version: 1\ncluster: c\nnetwork: 10.244.0.0/16\nbackend:\n  type: vxlan\n";

    #[test]
    fn unknown_top_key_suggests() {
        let d = err(&format!("{HEAD}subnetlen: 24\nnodes: []\n"));
        assert_eq!(d.pos, Pos::new(6, 1));
        assert!(d.message.contains("did you mean `subnetLen`?"), "{}", d.message);
    }

    #[test]
    fn unknown_node_key_suggests() {
        let d = err(&format!("{HEAD}nodes:\n  - name: a\n    ip: 1.2.3.4/24\n    vtepMac: x\n"));
        assert_eq!(d.pos, Pos::new(9, 5));
        assert!(d.message.contains("did you mean `vtepMAC`?"), "{}", d.message);
        assert!(d.message.contains("allowed here: name, ip"), "{}", d.message);
    }

    #[test]
    fn wrong_type_names_the_key() {
        let d = err(&format!("{HEAD}nodes: []\ndefaults:\n  mtu: lots\n"));
        assert_eq!(d.field, "defaults.mtu");
        assert_eq!(d.pos.line, 8);
    }

    #[test]
    fn type_errors_name_the_full_path_and_no_library_hints() {
        let d = err(&format!("{HEAD}nodes:\n  - name: a\n    ip: 10.1.1.1/24\n  - name:\n    ip: 10.1.1.2/24\n"));
        assert_eq!((d.field.as_str(), d.pos.line), ("nodes[1].name", 9));
        assert_eq!(d.message, "expected a value, found nothing (null)");
        let d = err(&format!("{HEAD}nodes: []\n---\nnodes: []\n"));
        assert!(!d.message.contains("from_str_multiple") && d.message.contains("one"), "{}", d.message);
        let d = err(&format!("{HEAD}nodes:\n  - name: a\n    ip: 10.1.1.1/24\n    vtepmac: x\n"));
        assert_eq!(d.field, "nodes[0].vtepmac");
    }

    #[test]
    fn missing_key_is_named() {
        let d = err("version: 1\ncluster: c\nnetwork: 10.0.0.0/16\nnodes: []\n");
        assert!(d.message.contains("`backend`"), "{}", d.message);
    }

    #[test]
    fn empty_file_is_refused() {
        let d = err("  \n");
        assert!(d.message.contains("empty file"));
    }

    #[test]
    fn duplicate_key_is_located() {
        let d = err(&format!("{HEAD}nodes: []\nnetwork: 10.0.0.0/8\n"));
        assert_eq!(d.pos.line, 7);
        assert!(d.message.contains("duplicate"), "{}", d.message);
    }

    /// A document that is valid up to the budget: every alias sits where the
    /// schema expects a node, so only the parser's budget can refuse it.
    fn behind_valid_keys(body: &str) -> String {
        format!("{HEAD}nodes:\n  - &l0 {{name: a, ip: 192.168.0.2/24}}\n{body}")
    }

    #[test]
    fn alias_bomb_behind_valid_keys_is_refused_by_the_budget() {
        // Each node merges the previous one ten times: 10^12 replayed events.
        let body: String = (1..=12)
            .map(|i| {
                let p = format!("*l{}", i - 1);
                format!("  - &l{i} {{<<: [{}], name: n{i}}}\n", [p.as_str(); 10].join(","))
            })
            .collect();
        // Expanding 10^12 events would not end at all, on any machine: the
        // refusal arriving is the proof; no wall-clock bound (a debug build is slow).
        let d = err(&behind_valid_keys(&body));
        assert!(d.message.contains("resource budget") && d.message.contains("nodes"), "{}", d.message);
        assert!(d.pos.line > 6, "located at the node that breaks the budget: {:?}", d.pos);
    }

    #[test]
    fn deep_nesting_behind_valid_keys_is_refused_by_the_budget() {
        // A chain of merges, each one level deeper than the last.
        let body: String = (1..=100).map(|i| format!("  - &l{i} {{<<: *l{}, name: n{i}}}\n", i - 1)).collect();
        let d = err(&behind_valid_keys(&body));
        assert!(d.message.contains("resource budget") && d.message.contains("depth"), "{}", d.message);
    }
}
