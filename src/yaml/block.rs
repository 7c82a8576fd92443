//! A reader for the plain block subset of YAML that topologies and lock files
//! are written in: `key: value` mappings, `- ` sequences, plain and simply
//! quoted scalars, comments. It is the fast path in front of serde-saphyr
//! (a 5000-node topology in ~1 ms instead of ~15): it answers `None` for
//! anything outside the subset (anchors, flow style, escapes, tabs, multi-line
//! scalars, nulls...), and the full parser reads the document instead, so the
//! subset never has to report an error itself.

use crate::diag::Pos;

/// A node of the document, with the position serde-saphyr gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<'a> {
    pub pos: Pos,
    pub kind: Kind<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// The scalar's text; `plain` when it was written unquoted (its type is
    /// then resolved by what the schema asks for).
    Scalar {
        text: &'a str,
        plain: bool,
    },
    Map(Vec<(&'a str, Node<'a>)>),
    Seq(Vec<Node<'a>>),
}

/// One content line: neither blank nor a comment.
#[derive(Clone, Copy)]
struct Line<'a> {
    /// 1-based, as in diagnostics.
    number: u64,
    indent: usize,
    /// The line after its indentation.
    rest: &'a str,
}

/// The document as one node, or `None` when it is not in the subset.
pub fn read(text: &str) -> Option<Node<'_>> {
    // Printable ASCII and newlines only: no tabs, CRs, controls or Unicode.
    if !text.bytes().all(|b| b == b'\n' || (b' '..=b'~').contains(&b)) {
        return None;
    }
    let lines: Vec<Line> = text
        .split('\n')
        .zip(1..)
        .filter_map(|(l, number)| {
            let rest = l.trim_start_matches(' ');
            (!rest.is_empty() && !rest.starts_with('#')).then(|| Line { number, indent: l.len() - rest.len(), rest })
        })
        .collect();
    let first = lines.first()?;
    if first.indent != 0 || first.rest.starts_with("---") || first.rest.starts_with('%') {
        return None;
    }
    let mut r = Reader { lines: &lines, at: 0, depth: 0 };
    let node = r.block(0)?;
    (r.at == lines.len()).then_some(node)
}

/// Deeper documents go to serde-saphyr, whose budget refuses deep nesting
/// with a located error; a topology is four levels deep.
const MAX_DEPTH: usize = 16;

struct Reader<'l, 'a> {
    lines: &'l [Line<'a>],
    at: usize,
    /// Collections open around the current line.
    depth: usize,
}

impl<'a> Reader<'_, 'a> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.at).copied()
    }

    /// The collection that starts on the current line, at its indentation.
    fn block(&mut self, indent: usize) -> Option<Node<'a>> {
        let line = self.peek()?;
        if line.indent != indent {
            return None;
        }
        if is_item(line.rest) { self.seq(indent, false) } else { self.map_from(line) }
    }

    /// `indentless`: the items line up with the key the sequence belongs to.
    fn seq(&mut self, indent: usize, indentless: bool) -> Option<Node<'a>> {
        let first = self.peek()?;
        let mut items = Vec::new();
        while let Some(line) = self.peek().filter(|l| l.indent == indent && is_item(l.rest)) {
            let after = line.rest[1..].trim_start_matches(' ');
            let col = indent + line.rest.len() - after.len();
            if after.is_empty() || after.starts_with('#') || after.starts_with('-') {
                return None;
            }
            if split_key(after).is_some() {
                // `- key: value`: a mapping whose keys line up under this one.
                let sub = Line { indent: col, rest: after, ..line };
                items.push(self.map_from(sub)?);
            } else {
                items.push(scalar(after, Pos::new(line.number, col as u64 + 1))?);
                self.at += 1;
            }
        }
        // Where serde-saphyr places it: at the first `-`, or at the first
        // item's content when there is no indentation to open the sequence.
        let pos = if indentless { items.first()?.pos } else { Pos::new(first.number, indent as u64 + 1) };
        Some(Node { pos, kind: Kind::Seq(items) })
    }

    /// Reads `key: value` entries at `first`'s indentation; `first` is the
    /// current line, possibly re-based past a `- `.
    fn map_from(&mut self, first: Line<'a>) -> Option<Node<'a>> {
        let indent = first.indent;
        let mut entries = Vec::new();
        let mut line = first;
        loop {
            let (key, value) = split_key(line.rest)?;
            self.at += 1;
            let col = line.indent + line.rest.len() - value.len();
            let at = Pos::new(line.number, col as u64 + 1);
            let node =
                if value.is_empty() || value.starts_with('#') { self.nested(indent, at)? } else { scalar(value, at)? };
            entries.push((key, node));
            match self.peek() {
                Some(next) if next.indent == indent && !is_item(next.rest) => line = next,
                Some(next) if next.indent > indent => return None,
                _ => break,
            }
        }
        // serde-saphyr refuses a repeated key; a map type would keep the last.
        if has_duplicate(&entries) {
            return None;
        }
        Some(Node { pos: Pos::new(first.number, indent as u64 + 1), kind: Kind::Map(entries) })
    }

    /// The value of a key written alone on its line: a deeper block, a
    /// sequence at the key's own indentation (`nodes:` / `- name: a`), or
    /// else null (an empty plain scalar `at` the end of the line).
    fn nested(&mut self, indent: usize, at: Pos) -> Option<Node<'a>> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let node = match self.peek() {
            Some(next) if next.indent > indent => self.block(next.indent),
            Some(next) if next.indent == indent && is_item(next.rest) => self.seq(indent, true),
            _ => Some(Node { pos: at, kind: Kind::Scalar { text: "", plain: true } }),
        };
        self.depth -= 1;
        node
    }
}

fn has_duplicate(entries: &[(&str, Node)]) -> bool {
    let mut keys: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

fn is_item(rest: &str) -> bool {
    rest == "-" || rest.starts_with("- ")
}

/// `key: value` -> (key, value with leading spaces removed); plain keys only.
fn split_key(rest: &str) -> Option<(&str, &str)> {
    let end = rest.bytes().position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))?;
    let (key, tail) = rest.split_at(end);
    let value = tail.strip_prefix(':')?;
    // A key YAML reads as null is not a string key.
    if key.is_empty() || matches!(key, "null" | "Null" | "NULL") || !(value.is_empty() || value.starts_with(' ')) {
        return None;
    }
    Some((key, value.trim_start_matches(' ')))
}

/// A scalar written after `key: ` or `- `, up to a comment.
fn scalar(text: &str, pos: Pos) -> Option<Node<'_>> {
    let (value, tail, plain) = match text.as_bytes()[0] {
        q @ (b'"' | b'\'') => {
            let close = text[1..].find(q as char)? + 1;
            let inner = &text[1..close];
            if (q == b'"' && inner.contains('\\')) || text[close + 1..].starts_with(q as char) {
                return None;
            }
            (inner, &text[close + 1..], false)
        }
        b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`' | b',' | b'?' | b':'
        | b'-' | b'#' => return None,
        _ => {
            let end = text.find(" #").unwrap_or(text.len());
            let value = text[..end].trim_end_matches(' ');
            if value.contains(": ") || value.ends_with(':') {
                return None;
            }
            (value, &text[end..], true)
        }
    };
    // A comment needs a space before its `#`.
    let rest = tail.trim_start_matches(' ');
    let ends = rest.is_empty() || (rest.starts_with('#') && rest.len() < tail.len());
    ends.then_some(Node { pos, kind: Kind::Scalar { text: value, plain } })
}
