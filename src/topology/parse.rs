//! Reading a topology file: size limit, YAML syntax with a resource budget,
//! and serde's structural errors turned into located diagnostics.

use std::path::Path;

use super::schema::{BACKEND_KEYS, DEFAULTS_KEYS, NODE_KEYS, TOP_KEYS, TopologyDoc};
use crate::diag::{Diagnostic, Diagnostics, Pos, suggest};

/// Inputs larger than this are refused before parsing: a real topology of
/// 5000 nodes is under 1 MiB.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Reads and parses `path`; all failures are diagnostics located in that file.
pub fn read_topology(path: &Path) -> Result<TopologyDoc, Diagnostics> {
    let text = read_text(path)?;
    parse_topology(path, &text)
}

/// Reads a text file with the input size limit, as a located diagnostic on failure.
pub fn read_text(path: &Path) -> Result<String, Diagnostics> {
    let whole_file = |message: String| {
        Diagnostics(vec![Diagnostic { file: path.to_path_buf(), pos: Pos::FILE, field: String::new(), message }])
    };
    let meta = std::fs::metadata(path).map_err(|e| whole_file(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(whole_file("not a regular file".into()));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(whole_file(format!(
            "file is {} bytes; inputs over {} bytes are refused",
            meta.len(),
            MAX_INPUT_BYTES
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| whole_file(format!("cannot read: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|e| whole_file(format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to())))
}

/// Parses topology text. `path` is only used to name the file in diagnostics.
pub fn parse_topology(path: &Path, text: &str) -> Result<TopologyDoc, Diagnostics> {
    if text.trim().is_empty() {
        return Err(Diagnostics(vec![Diagnostic {
            file: path.to_path_buf(),
            pos: Pos::FILE,
            field: String::new(),
            message: "empty file: expected a topology document (version: 1, cluster, network, backend, nodes)".into(),
        }]));
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
    Diagnostic { file: path.to_path_buf(), pos, field, message: humanize(&msg) }
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
        let candidates: &[&str] = [TOP_KEYS, BACKEND_KEYS, DEFAULTS_KEYS, NODE_KEYS]
            .into_iter()
            .find(|keys| {
                let expected = rest.split_once("expected").map(|x| x.1).unwrap_or_default();
                keys.iter().all(|k| expected.contains(k))
            })
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
        let d = err("version: 1\ncluster: c\nbackend: {type: vxlan}\nnodes: []\n");
        assert!(d.message.contains("`network`"), "{}", d.message);
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

    #[test]
    fn alias_bomb_is_refused() {
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        let mut prev = 'a';
        for c in 'b'..='k' {
            bomb.push_str(&format!(
                "{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
            prev = c;
        }
        let started = std::time::Instant::now();
        let d = err(&bomb);
        // Refused at the first key the schema does not know, before any alias
        // is expanded; the parser's alias budget is the second line of defence.
        assert!(started.elapsed().as_secs() < 5, "refused without expanding it");
        assert!(d.pos.line > 0);
    }
}
