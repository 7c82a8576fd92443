//! Where a JSON path (`peers[3].subnet`) stands in a JSON text, so problems
//! found after parsing are reported at `FILE:LINE:COL` like parse errors.
//! Only runs on text serde_json already accepted; it walks the target path
//! and skips everything else without recursion.

use serde_json::{Map, Value};

use crate::diag::Pos;

/// An object's member the way Go's encoding/json finds it for a struct
/// field: the exact spelling first, then any case. Returns the key as written.
pub fn go_field<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<(&'v str, &'v Value)> {
    obj.get_key_value(key)
        .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
        .map(|(k, v)| (k.as_str(), v))
}

#[derive(Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `a.b[3]["c.d/e"]`: names, indexes, and quoted names (which may hold dots).
fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[\"") {
            let Some((key, after)) = r.split_once("\"]") else { break };
            out.push(Seg::Key(key.to_string()));
            rest = after;
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some((idx, after)) = r.split_once(']') else { break };
            if let Ok(n) = idx.parse() {
                out.push(Seg::Index(n));
            }
            rest = after;
        } else if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(Seg::Key(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    out
}

/// The line and column of the value at `path`, if the text has it.
pub fn locate(text: &str, path: &str) -> Option<Pos> {
    let target = parse_path(path);
    let b = text.as_bytes();
    let mut i = 0;
    let mut depth = 0;
    loop {
        skip_ws(b, &mut i);
        if depth == target.len() {
            return Some(pos_of(text, i));
        }
        match (b.get(i)?, &target[depth]) {
            (b'{', Seg::Key(want)) => enter_member(b, &mut i, want)?,
            (b'[', Seg::Index(n)) => enter_element(b, &mut i, *n)?,
            _ => return None,
        }
        depth += 1;
    }
}

/// Moves `i` from `{` to the value of member `want`.
fn enter_member(b: &[u8], i: &mut usize, want: &str) -> Option<()> {
    *i += 1;
    loop {
        skip_ws(b, i);
        if *b.get(*i)? == b'}' {
            return None;
        }
        let start = *i + 1;
        skip_string(b, i)?;
        let key = std::str::from_utf8(b.get(start..*i - 1)?).ok()?;
        skip_ws(b, i);
        (*b.get(*i)? == b':').then_some(())?;
        *i += 1;
        skip_ws(b, i);
        if key == want {
            return Some(());
        }
        skip_value(b, i)?;
        skip_ws(b, i);
        if *b.get(*i)? == b',' {
            *i += 1;
        }
    }
}

/// Moves `i` from `[` to element `n`.
fn enter_element(b: &[u8], i: &mut usize, n: usize) -> Option<()> {
    *i += 1;
    for _ in 0..n {
        skip_ws(b, i);
        if *b.get(*i)? == b']' {
            return None;
        }
        skip_value(b, i)?;
        skip_ws(b, i);
        (*b.get(*i)? == b',').then_some(())?;
        *i += 1;
    }
    skip_ws(b, i);
    (*b.get(*i)? != b']').then_some(())
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while b.get(*i).is_some_and(|c| c.is_ascii_whitespace()) {
        *i += 1;
    }
}

/// From an opening quote to just past the closing one.
fn skip_string(b: &[u8], i: &mut usize) -> Option<()> {
    (*b.get(*i)? == b'"').then_some(())?;
    *i += 1;
    loop {
        match *b.get(*i)? {
            b'\\' => *i += 2,
            b'"' => {
                *i += 1;
                return Some(());
            }
            _ => *i += 1,
        }
    }
}

/// Past one value of any kind, nested containers included.
fn skip_value(b: &[u8], i: &mut usize) -> Option<()> {
    let mut depth = 0usize;
    loop {
        match *b.get(*i)? {
            b'"' => skip_string(b, i)?,
            b'{' | b'[' => {
                depth += 1;
                *i += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                *i += 1;
            }
            b',' | b':' if depth > 0 => *i += 1,
            c if c.is_ascii_whitespace() && depth > 0 => *i += 1,
            b',' | b':' => return Some(()),
            c if c.is_ascii_whitespace() => return Some(()),
            _ => *i += 1,
        }
        if depth == 0 && matches!(b.get(*i), None | Some(b',' | b'}' | b']')) {
            return Some(());
        }
    }
}

fn pos_of(text: &str, offset: usize) -> Pos {
    let before = &text[..offset.min(text.len())];
    let line = before.bytes().filter(|c| *c == b'\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    Pos::new(line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "{\n  \"a\": {\"x\": [1, {\"y\": \"q,}\"}]},\n  \"peers\": [\n    {\"subnet\": \"10.0.1.0/24\"},\n    {\"node\": \"b\", \"subnet\": \"10.0.2.0/24\"}\n  ]\n}\n";

    #[test]
    fn finds_values_by_path() {
        assert_eq!(locate(DOC, "peers[1].subnet"), Some(Pos::new(5, 29)));
        assert_eq!(locate(DOC, "peers[0]"), Some(Pos::new(4, 5)));
        assert_eq!(locate(DOC, "a.x[1].y"), Some(Pos::new(2, 24)));
        assert_eq!(locate(DOC, "peers"), Some(Pos::new(3, 12)));
        assert_eq!(locate(DOC, ""), Some(Pos::new(1, 1)));
    }

    #[test]
    fn quoted_names_may_hold_dots_and_slashes() {
        let doc = "{\"m\": {\"ann\": {\"a.b/c\": \"1\", \"a.b/d\": \"2\"}}}";
        assert_eq!(locate(doc, r#"m.ann["a.b/d"]"#), Some(Pos::new(1, 39)));
        assert_eq!(locate(doc, r#"m.ann["a.b/x"]"#), None);
    }

    #[test]
    fn missing_paths_are_none() {
        assert_eq!(locate(DOC, "peers[2].subnet"), None);
        assert_eq!(locate(DOC, "nope"), None);
        assert_eq!(locate(DOC, "a.x[0].y"), None);
        assert_eq!(locate("{\"a\": ", "a.b"), None);
    }
}
