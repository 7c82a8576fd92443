//! The shape of the code, checked: the top-level modules of `src/` form no
//! import cycle, nor do its files (a module's own submodules aside), and no
//! function in `src/` is longer than one screen.

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
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import cycle between top-level modules: {}\nedges: {edges:#?}", cycle.join(" -> "));
    }
    assert!(edges.len() > 10, "the scan found the modules: {edges:?}");
}

/// `src/apply/reconcile/mod.rs` -> `apply::reconcile`; `src/lib.rs` -> ``.
fn module_of(rel: &str) -> String {
    let rel = rel.trim_end_matches(".rs");
    let rel = rel.strip_suffix("/mod").unwrap_or(rel);
    if rel == "lib" || rel == "main" { String::new() } else { rel.replace('/', "::") }
}

/// Every path after `crate::`, `super::` or `self::` in `code`, with `use`
/// groups (`a::{b, c::d}`) expanded: `["super::b", "super::c::d"]`.
fn paths_in(code: &str) -> Vec<String> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts =
            ["crate::", "super::", "self::"].iter().find(|p| b[i..].starts_with(&p.chars().collect::<Vec<_>>()));
        let boundary = i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_' || b[i - 1] == ':');
        match starts {
            Some(_) if boundary => i = path_tree(&b, i, String::new(), &mut out),
            _ => i += 1,
        }
    }
    out
}

/// Reads `seg::seg::…` (then a `{group}` if one follows) from `i`, pushing
/// each full path with `prefix`; returns where it stopped.
fn path_tree(b: &[char], mut i: usize, prefix: String, out: &mut Vec<String>) -> usize {
    let mut path = prefix;
    loop {
        while i < b.len() && b[i].is_whitespace() {
            i += 1;
        }
        if b.get(i) == Some(&'{') {
            i += 1;
            loop {
                i = path_tree(b, i, path.clone(), out);
                while i < b.len() && (b[i].is_whitespace() || b[i] == ',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == '}' {
                    return i + 1;
                }
            }
        }
        let seg: String = b[i..].iter().take_while(|c| c.is_alphanumeric() || **c == '_').collect();
        if seg.is_empty() {
            break;
        }
        i += seg.chars().count();
        path = if path.is_empty() { seg } else { format!("{path}::{seg}") };
        if b[i..].starts_with(&[':', ':']) {
            i += 2;
        } else {
            break;
        }
    }
    // Skip `as name` and anything else up to a separator.
    while i < b.len() && !matches!(b[i], ',' | '}' | ';') {
        i += 1;
    }
    if !path.is_empty() {
        out.push(path);
    }
    i
}

/// Module -> the modules its file imports, each resolved to a file's module.
/// Edges from a module into its own submodules are containment, not imports.
fn file_edges(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<String> = files.keys().map(|rel| module_of(rel)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, src) in files {
        let at = module_of(rel);
        let code = code_only(src);
        // An inline test module's `super` is the file itself: not an import.
        let code = code.split("#[cfg(test)]\nmod ").next().unwrap_or(&code);
        for p in paths_in(code) {
            let Some(to) = target_module(&p, &at, &known) else { continue };
            let inside = to == at || to.starts_with(&format!("{at}::")) || at.is_empty();
            if !inside && !to.is_empty() {
                edges.entry(at.clone()).or_default().insert(to);
            }
        }
    }
    edges
}

/// Absolute segments of `path` seen from module `at` (`self` is the file's
/// module, `mod.rs` or not; `super` its parent), then its longest prefix
/// that is a known module.
fn target_module(path: &str, at: &str, known: &BTreeSet<String>) -> Option<String> {
    let mut abs: Vec<String> = if at.is_empty() { Vec::new() } else { at.split("::").map(str::to_string).collect() };
    let mut segs = path.split("::").peekable();
    match segs.peek() {
        Some(&"crate") => {
            abs.clear();
            segs.next();
        }
        Some(&"self") => {
            segs.next();
        }
        _ => {}
    }
    for s in segs {
        if s == "super" {
            abs.pop()?;
        } else {
            abs.push(s.to_string());
        }
    }
    (0..=abs.len()).rev().map(|n| abs[..n].join("::")).find(|m| known.contains(m))
}

/// A cycle of `edges` (depth-first search for a back edge), if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
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
        if !done.insert(n.to_string()) {
            return None;
        }
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

fn source_files() -> BTreeMap<String, String> {
    let src = common::root().join("src");
    sources()
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&src).expect("under src").to_string_lossy().into_owned();
            (rel, fs::read_to_string(&p).expect("read"))
        })
        .collect()
}

#[test]
fn files_form_no_import_cycle() {
    let edges = file_edges(&source_files());
    assert!(edges.len() > 40, "the scan found the files' imports: {edges:#?}");
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import cycle between files: {}", cycle.join(" -> "));
    }
}

/// The circle #25 named: a constant in `reconcile/mod.rs` imported by
/// `desired.rs`, which `reconcile/` imports back.
#[test]
fn the_file_scan_sees_a_circle_through_a_parent_module() {
    let files: BTreeMap<String, String> = [
        ("apply/mod.rs", "mod desired; mod reconcile;"),
        ("apply/reconcile/mod.rs", "mod routes;\nuse super::desired::Desired;\npub const X: u8 = 4;"),
        ("apply/reconcile/routes.rs", "use super::{Ctx, X};"),
        ("apply/desired.rs", "use super::reconcile::X;\nfn f() { crate::apply::reconcile::routes::g() }"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let edges = file_edges(&files);
    assert_eq!(
        edges.get("apply::desired").map(|s| s.iter().cloned().collect::<Vec<_>>()),
        Some(vec!["apply::reconcile".to_string(), "apply::reconcile::routes".to_string()])
    );
    assert!(find_cycle(&edges).is_some_and(|c| c.contains(&"apply::desired".to_string())), "{edges:?}");
    assert_eq!(paths_in("use super::{a, b::{c, d as e}};"), ["super::a", "super::b::c", "super::b::d"]);
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
