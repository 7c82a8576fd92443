//! The shape of the code, checked: the top-level modules of `src/` form no
//! import cycle, and no function in `src/` is longer than one screen.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Longest function allowed, in lines from `fn` to its closing brace.
const MAX_FN_LINES: usize = 80;

fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).expect("read_dir").map(|e| e.expect("entry")) {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&common::root().join("src"), &mut v);
    v.sort();
    v
}

/// `src/apply/netlink/dump.rs` -> `apply`; `src/diff.rs` -> `diff`.
fn top_module(path: &Path) -> String {
    let rel = path.strip_prefix(common::root().join("src")).expect("under src");
    let first = rel.components().next().expect("component").as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// Source text with comments, strings and char literals blanked out (kept
/// the same length, newlines kept), so braces and paths can be counted.
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out: Vec<char> = b.clone();
    let mut i = 0;
    while i < b.len() {
        let end = match (b[i], b.get(i + 1).copied()) {
            ('/', Some('/')) => b[i..].iter().position(|c| *c == '\n').map_or(b.len(), |k| i + k),
            ('/', Some('*')) => block_comment_end(&b, i),
            ('r', Some('"' | '#')) if i == 0 || !b[i - 1].is_alphanumeric() => raw_string_end(&b, i),
            ('"', _) => string_end(&b, i),
            ('\'', _) => char_literal_end(&b, i),
            _ => i,
        };
        for c in out.iter_mut().take(end).skip(i) {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = end.max(i + 1);
    }
    out.into_iter().collect()
}

fn block_comment_end(b: &[char], start: usize) -> usize {
    let (mut depth, mut i) = (0, start);
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            ('/', '*') => depth += 1,
            ('*', '/') => {
                depth -= 1;
                if depth == 0 {
                    return i + 2;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// `r"..."` or `r#"..."#`; anything else starting with `r` is code.
fn raw_string_end(b: &[char], start: usize) -> usize {
    let hashes = b[start + 1..].iter().take_while(|c| **c == '#').count();
    let open = start + 1 + hashes;
    if b.get(open) != Some(&'"') {
        return start;
    }
    let closing: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
    (open + 1..b.len()).find(|k| b[*k..].starts_with(&closing)).map_or(b.len(), |k| k + closing.len())
}

fn string_end(b: &[char], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() && b[i] != '"' {
        i += if b[i] == '\\' { 2 } else { 1 };
    }
    (i + 1).min(b.len())
}

/// A char literal (`'{'`, `'\n'`, `'\u{7f}'`); a lifetime (`'a`) is code.
fn char_literal_end(b: &[char], start: usize) -> usize {
    if b.get(start + 2) == Some(&'\'') {
        return start + 3;
    }
    if b.get(start + 1) == Some(&'\\')
        && let Some(k) = b[start + 2..].iter().take(10).position(|c| *c == '\'')
    {
        return start + 2 + k + 1;
    }
    start
}

#[test]
fn top_level_modules_form_no_cycle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in sources() {
        let from = top_module(&path);
        let code = code_only(&fs::read_to_string(&path).expect("read"));
        for (i, _) in code.match_indices("crate::") {
            let to: String = code[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !to.is_empty() && to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        if let Some(cycle) = visit(n, &edges, &mut Vec::new(), &mut done) {
            panic!("import cycle between top-level modules: {}\nedges: {edges:#?}", cycle.join(" -> "));
        }
    }
    assert!(edges.len() > 10, "the scan found the modules: {edges:?}");
}

#[test]
fn no_function_is_longer_than_a_screen() {
    let mut long = Vec::new();
    let mut seen = 0;
    for path in sources() {
        let code = code_only(&fs::read_to_string(&path).expect("read"));
        let lines: Vec<&str> = code.lines().collect();
        for (start, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let is_fn = t.starts_with("fn ")
                || t.contains(" fn ")
                    && (t.starts_with("pub")
                        || t.starts_with("async")
                        || t.starts_with("const")
                        || t.starts_with("unsafe"));
            if !is_fn {
                continue;
            }
            // Find the body: the first `{` before a `;` ends the signature.
            let mut depth = 0i32;
            let mut opened = false;
            let mut end = None;
            'scan: for (k, l) in lines.iter().enumerate().skip(start) {
                for ch in l.chars() {
                    match ch {
                        ';' if !opened => break 'scan,
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => {
                            depth -= 1;
                            if opened && depth == 0 {
                                end = Some(k);
                                break 'scan;
                            }
                        }
                        _ => {}
                    }
                }
            }
            if let Some(end) = end {
                seen += 1;
                let n = end - start + 1;
                if n > MAX_FN_LINES {
                    let rel = path.strip_prefix(common::root()).expect("rel").display().to_string();
                    long.push(format!("{rel}:{}: {n} lines: {}", start + 1, t.split('(').next().unwrap_or(t)));
                }
            }
        }
    }
    assert!(seen > 100, "the scan found the functions ({seen})");
    assert!(long.is_empty(), "functions over {MAX_FN_LINES} lines:\n{}", long.join("\n"));
}

#[test]
fn the_scanner_blanks_strings_and_comments() {
    let src = "fn a() { let s = \"}{\"; let c = '{'; let r = r#\"}\"#; // }\n let l: &'static str = x; /* { */ }\n";
    let code = code_only(src);
    assert_eq!(code.matches('{').count(), 1, "{code}");
    assert_eq!(code.matches('}').count(), 1, "{code}");
    assert_eq!(code.len(), src.len());
}
