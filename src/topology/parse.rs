//! Parsing a topology: YAML syntax with a resource budget, and serde's
//! structural errors turned into located diagnostics. (Reading the file,
//! with its size limit, is [`crate::input`].)

use std::path::Path;

use super::schema::{KEY_LEVELS, TopologyDoc};
use crate::diag::{Diagnostic, Diagnostics, Pos, suggest};

/// Parses topology text. `path` is only used to name the file in diagnostics.
pub fn parse_topology(path: &Path, text: &str) -> Result<TopologyDoc, Diagnostics> {
    if text.trim().is_empty() {
        return Err(Diagnostics::whole_file(
            path,
            "empty file: expected a topology document (version: 1, cluster, network, backend, nodes)",
        ));
    }
    let options = serde_saphyr::options! {};
    serde_saphyr::from_str_with_options::<TopologyDoc>(text, options)
        .map_err(|e| Diagnostics(vec![yaml_diagnostic(path, text, &e)]))
}

fn yaml_diagnostic(path: &Path, text: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let pos = e.location().map(Pos::from).unwrap_or(Pos::FILE);
    let raw = e.without_snippet().to_string();
    // The crate appends the position in words; we print it as FILE:LINE:COL instead.
    let msg = match raw.rfind(" at line ") {
        Some(i) => raw[..i].to_string(),
        None => raw,
    };
    // A missing key is named by the message; elsewhere the key on the error's line.
    let field = match msg.strip_prefix("missing field `") {
        Some(rest) => rest.split('`').next().unwrap_or_default().to_string(),
        None => key_at(text, pos).unwrap_or_default(),
    };
    Diagnostic::new(path, pos, field, humanize(&msg))
}

/// The mapping key written on the line of `pos`, if the value there belongs to one.
fn key_at(text: &str, pos: Pos) -> Option<String> {
    let line = text.lines().nth(usize::try_from(pos.line).ok()?.checked_sub(1)?)?;
    let trimmed = line.trim_start().trim_start_matches("- ").trim_start();
    let (key, _) = trimmed.split_once(':')?;
    let key = key.trim();
    (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')).then(|| key.to_string())
}

/// Rewrites serde's wording into ours, adding "did you mean" for unknown keys.
fn humanize(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let given = rest.split('`').next().unwrap_or_default();
        let expected = rest.split_once("expected").map(|x| x.1).unwrap_or_default();
        let listed: Vec<&str> =
            expected.trim().trim_start_matches("one of").split(',').map(|k| k.trim().trim_matches('`')).collect();
        let candidates: &[&str] = KEY_LEVELS
            .iter()
            .map(|(_, keys)| *keys)
            .find(|keys| keys.len() == listed.len() && keys.iter().all(|k| listed.contains(k)))
            .unwrap_or(&[]);
        let mut out = format!("unknown key `{given}`");
        if let Some(s) = suggest(given, candidates.iter().copied()) {
            out.push_str(&format!(" (did you mean `{s}`?)"));
        }
        if !candidates.is_empty() {
            out.push_str(&format!("; allowed here: {}", candidates.join(", ")));
        }
        return out;
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        return format!("required key `{name}` is missing");
    }
    if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or_default();
        return format!("duplicate key `{key}`");
    }
    if let Some(rest) = msg.strip_prefix("budget breached: ") {
        return format!("refused: the document exceeds the YAML parser's resource budget ({})", budget_detail(rest));
    }
    match msg {
        "unexpected end of input" => {
            "empty document: expected a topology (version: 1, cluster, network, backend, nodes)".into()
        }
        "expected sequence start" => "expected a list".into(),
        "expected mapping start" => "expected a mapping of `key: value` pairs".into(),
        "expected string scalar" => "expected a plain value (a string, not a list or mapping)".into(),
        m if m.starts_with("invalid u") => "expected a non-negative whole number in range".into(),
        m => m.to_string(),
    }
}

/// `Nodes { nodes: 250001 } (defined at ...)` -> `nodes: 250001` (no library type names).
fn budget_detail(raw: &str) -> String {
    let inner = raw.split_once('{').and_then(|(_, r)| r.split_once('}')).map_or(raw, |(i, _)| i.trim());
    inner.replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(d.field, "mtu");
        assert_eq!(d.pos.line, 8);
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
        let started = std::time::Instant::now();
        let d = err(&behind_valid_keys(&body));
        assert!(d.message.contains("resource budget") && d.message.contains("nodes"), "{}", d.message);
        assert!(started.elapsed().as_secs() < 5, "refused without expanding it");
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
