//! Located diagnostics: every problem with an input file names the file, the
//! line and column of the offending value, and the field.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a source file, 1-based. `line == 0` means "whole file".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl Pos {
    pub const FILE: Pos = Pos { line: 0, column: 0 };

    pub fn new(line: u64, column: u64) -> Self {
        Pos { line, column }
    }
}

impl From<serde_saphyr::Location> for Pos {
    fn from(l: serde_saphyr::Location) -> Self {
        Pos::new(l.line(), l.column())
    }
}

/// One problem found in one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub pos: Pos,
    /// Dotted path of the offending field, e.g. `nodes[2].subnet`; empty for syntax errors.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.pos.line > 0 {
            write!(f, ":{}:{}", self.pos.line, self.pos.column)?;
        }
        write!(f, ": error: ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.message)
    }
}

impl Diagnostic {
    pub fn new(file: &Path, pos: Pos, field: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { file: file.to_path_buf(), pos, field: field.into(), message: message.into() }
    }
}

/// All problems of one file, in source order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// One problem with the file as a whole (unreadable, too large, empty).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Diagnostics(vec![Diagnostic::new(file, Pos::FILE, "", message)])
    }

    /// One problem at a position.
    pub fn one(file: &Path, pos: Pos, field: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostics(vec![Diagnostic::new(file, pos, field, message)])
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Sorted by position so a reader can walk the file top to bottom.
    pub fn sorted(mut self) -> Self {
        self.0.sort_by(|a, b| (&a.file, a.pos).cmp(&(&b.file, b.pos)));
        self
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one file.
pub struct Reporter<'a> {
    file: &'a Path,
    found: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub fn new(file: &'a Path) -> Self {
        Reporter { file, found: Vec::new() }
    }

    pub fn error(&mut self, pos: impl Into<Pos>, field: impl Into<String>, message: impl fmt::Display) {
        self.found.push(Diagnostic::new(self.file, pos.into(), field, message.to_string()));
    }

    /// How many problems were reported so far.
    pub fn count(&self) -> usize {
        self.found.len()
    }

    pub fn has_errors(&self) -> bool {
        !self.found.is_empty()
    }

    pub fn finish(self) -> Diagnostics {
        Diagnostics(self.found).sorted()
    }
}

/// "did you mean" for a misspelt key: the closest candidate, if it is close enough.
pub fn suggest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&given.to_ascii_lowercase(), &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_key() {
        let keys = ["version", "subnetLen", "subnetMin", "network"];
        assert_eq!(suggest("subnetlen", keys), Some("subnetLen"));
        assert_eq!(suggest("netwrok", keys), Some("network"));
        assert_eq!(suggest("zzzz", keys), None);
    }

    #[test]
    fn display_is_file_line_col() {
        let d = Diagnostic {
            file: "t.yaml".into(),
            pos: Pos::new(3, 7),
            field: "nodes[0].ip".into(),
            message: "bad".into(),
        };
        assert_eq!(d.to_string(), "t.yaml:3:7: error: nodes[0].ip: bad");
    }
}
