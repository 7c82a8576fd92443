//! YAML documents into typed values, with serde's and the parser's errors
//! turned into located diagnostics in our words: the full field path
//! (`defaults.mtu`), no library hints, "did you mean" for unknown keys.

mod block;
mod located;
mod tree;

use std::path::Path;

use serde::de::DeserializeOwned;

pub use located::Located;

use crate::diag::{Diagnostic, Diagnostics, Pos, suggest};

/// Keys accepted at each level of a schema (dotted path, keys), for suggestions.
pub type KeyLevels = [(&'static str, &'static [&'static str])];

/// serde-saphyr as flannel-gen reads its inputs: a tag it does not know
/// (`!custom`) is an error, and `!!binary` changes nothing: what a reviewer
/// reads in git is the value, never a base64 text decoded behind it.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! { reject_unsupported_tags: true, ignore_binary_tag_for_string: true }
}

/// Parses one YAML document. `path` only names the file in diagnostics.
pub fn parse_document<T: DeserializeOwned>(path: &Path, text: &str, levels: &KeyLevels) -> Result<T, Diagnostics> {
    if let Some(v) = read_subset(text) {
        return Ok(v);
    }
    // Path tracking costs a fifth of the parse, and only errors need it: parse
    // plainly, and once more with serde_path_to_error when the first one fails.
    let first = match serde_saphyr::from_str_with_options::<T>(text, yaml_options()) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let mut at = String::new();
    let tracked = serde_saphyr::with_deserializer_from_str_with_options(text, yaml_options(), |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            at = dotted(e.path());
            e.into_inner()
        })
    });
    let e = tracked.err().unwrap_or(first);
    Err(Diagnostics(vec![yaml_diagnostic(path, text, &e, &at, levels)]))
}

/// The document through the subset reader, if it is written in the subset
/// and reads as a `T` there; `None` leaves it to serde-saphyr.
pub fn read_subset<T: DeserializeOwned>(text: &str) -> Option<T> {
    T::deserialize(block::read(text)?).ok()
}

/// serde-saphyr alone, to show the subset reader agrees with it (tests, fuzzing).
#[cfg_attr(flannel_gen_audit, allow(dead_code))]
pub fn read_full<T: DeserializeOwned>(text: &str) -> Option<T> {
    serde_saphyr::from_str_with_options::<T>(text, yaml_options()).ok()
}

fn yaml_diagnostic(path: &Path, text: &str, e: &serde_saphyr::Error, at: &str, levels: &KeyLevels) -> Diagnostic {
    let pos = e.location().map(Pos::from).unwrap_or(Pos::FILE);
    let raw = e.without_snippet().to_string();
    // The crate appends the position in words; we print it as FILE:LINE:COL instead.
    let msg = match raw.rfind(" at line ") {
        Some(i) => raw[..i].to_string(),
        None => raw,
    };
    Diagnostic::new(path, pos, field_of(&msg, at, text, pos), humanize(&msg, levels))
}

/// `nodes[2].mtu`: serde's path without the `value` level every
/// [`serde_saphyr::Spanned`] adds; empty where serde cannot say (`?`).
fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if key == "value" => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => return String::new(),
        }
    }
    out
}

/// The full path of the offending field: the path serde reached, plus the
/// missing or unknown key the message names; for syntax errors (no path),
/// the key written on the error's line.
fn field_of(msg: &str, at: &str, text: &str, pos: Pos) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| msg.strip_prefix(p))
        .map(|rest| rest.split('`').next().unwrap_or_default());
    match (named, at) {
        (Some(key), "") => key.to_string(),
        (Some(key), at) if !at.ends_with(key) => format!("{at}.{key}"),
        (_, "") if msg.starts_with("multiple YAML documents") => String::new(),
        (_, "") => key_at(text, pos).unwrap_or_default(),
        (_, at) => at.to_string(),
    }
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
fn humanize(msg: &str, levels: &KeyLevels) -> String {
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let given = rest.split('`').next().unwrap_or_default();
        let expected = rest.split_once("expected").map(|x| x.1).unwrap_or_default();
        let listed: Vec<&str> =
            expected.trim().trim_start_matches("one of").split(',').map(|k| k.trim().trim_matches('`')).collect();
        let candidates: &[&str] = levels
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
        "invalid boolean" => "expected `true` or `false`".into(),
        m if m.starts_with("invalid u") => "expected a non-negative whole number in range".into(),
        m if m.starts_with("cannot deserialize null") => "expected a value, found nothing (null)".into(),
        m if m.starts_with("multiple YAML documents") => {
            "a second YAML document: a topology file holds exactly one (remove the `---` or split the file)".into()
        }
        m => m.to_string(),
    }
}

/// `Nodes { nodes: 250001 } (defined at ...)` -> `nodes: 250001` (no library type names).
fn budget_detail(raw: &str) -> String {
    let inner = raw.split_once('{').and_then(|(_, r)| r.split_once('}')).map_or(raw, |(i, _)| i.trim());
    inner.replace('_', " ")
}
