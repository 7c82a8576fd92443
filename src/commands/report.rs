//! Where errors and warnings go, and in which form: text for people (the
//! default, on stderr), a JSON array or GitHub Actions annotations for CI.
//! Chosen once per run (`--diagnostics`, or `validate --format`), so every
//! command reports the same way without threading a context through.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

use crate::diag::Diagnostic;
use crate::error::Error;

/// How diagnostics are written.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum, PartialEq, Eq)]
pub enum DiagFormat {
    /// `FILE:LINE:COL: error: FIELD: MESSAGE`, for people.
    #[default]
    Text,
    /// One JSON array of `{file, line, column, field, severity, message}` at exit.
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…::…`), one per line.
    Github,
}

/// Where the report goes: stderr, or stdout when the report is the command's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    Stderr,
    Stdout,
}

/// One reported problem, as JSON readers see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entry {
    pub file: Option<String>,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub field: Option<String>,
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

static MODE: OnceLock<(DiagFormat, Sink)> = OnceLock::new();
static PENDING: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// Sets the form for this run; the first call wins.
pub fn configure(format: DiagFormat, sink: Sink) {
    let _ = MODE.set((format, sink));
}

fn mode() -> (DiagFormat, Sink) {
    MODE.get().copied().unwrap_or((DiagFormat::Text, Sink::Stderr))
}

/// True when people read the output (ok lines and counts are for them only).
pub fn is_text() -> bool {
    mode().0 == DiagFormat::Text
}

impl Entry {
    fn located(d: &Diagnostic, severity: Severity) -> Entry {
        let line = (d.pos.line > 0).then_some(d.pos.line);
        Entry {
            file: Some(d.file.display().to_string()),
            line,
            column: line.and(Some(d.pos.column)),
            field: (!d.field.is_empty()).then(|| d.field.clone()),
            severity,
            message: d.message.clone(),
        }
    }

    fn unlocated(file: Option<&Path>, severity: Severity, message: String) -> Entry {
        Entry { file: file.map(|f| f.display().to_string()), line: None, column: None, field: None, severity, message }
    }
}

/// An error: located diagnostics one per entry, anything else as one entry.
pub fn report(e: &Error) {
    report_about(e, None);
}

/// As [`report`], naming `file` when the error itself does not.
pub fn report_about(e: &Error, file: Option<&Path>) {
    match e {
        Error::Invalid(d) => {
            let entries: Vec<Entry> = d.0.iter().map(|d| Entry::located(d, Severity::Error)).collect();
            emit(&entries, Some(d.len()));
        }
        other => emit(&[Entry::unlocated(file, Severity::Error, other.to_string())], None),
    }
}

/// A warning about the run as a whole.
pub fn warn(msg: &str) {
    emit(&[Entry::unlocated(None, Severity::Warning, msg.to_string())], None);
}

/// A warning about one input file.
pub fn warn_about(file: &Path, msg: &str) {
    emit(&[Entry::unlocated(Some(file), Severity::Warning, msg.to_string())], None);
}

fn emit(entries: &[Entry], count: Option<usize>) {
    let (format, sink) = mode();
    let text = match format {
        DiagFormat::Json => {
            PENDING.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(entries);
            return;
        }
        DiagFormat::Github => entries.iter().map(github_line).collect::<String>(),
        DiagFormat::Text => {
            let mut t: String = entries.iter().map(text_line).collect();
            if let Some(n) = count {
                t.push_str(&format!("{}\n", super::plural(n, "error")));
            }
            t
        }
    };
    write_to(sink, &text);
}

/// Writes what was held back (the JSON array; `[]` when all is well). Called once, at exit.
pub fn finish() {
    let (format, sink) = mode();
    if format != DiagFormat::Json {
        return;
    }
    let entries = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|p| p.into_inner()));
    let json = serde_json::to_string_pretty(&entries).unwrap_or_else(|_| "[]".into());
    write_to(sink, &format!("{json}\n"));
}

fn write_to(sink: Sink, text: &str) {
    // A closed pipe on either stream is the reader's choice, not ours to report.
    let _ = match sink {
        Sink::Stderr => anstream::stderr().write_all(text.as_bytes()),
        Sink::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
    };
}

fn text_line(e: &Entry) -> String {
    let mut s = String::new();
    if let Some(f) = &e.file {
        s.push_str(f);
        if let (Some(l), Some(c)) = (e.line, e.column) {
            s.push_str(&format!(":{l}:{c}"));
        }
        s.push_str(": ");
    }
    s.push_str(match e.severity {
        Severity::Error => "error: ",
        Severity::Warning => "warning: ",
    });
    if let Some(f) = &e.field {
        s.push_str(&format!("{f}: "));
    }
    s.push_str(&e.message);
    s.push('\n');
    s
}

/// `::error file=F,line=L,col=C,title=T::MESSAGE` with GitHub's escaping.
fn github_line(e: &Entry) -> String {
    let mut props = Vec::new();
    if let Some(f) = &e.file {
        props.push(format!("file={}", gh_prop(f)));
    }
    if let Some(l) = e.line {
        props.push(format!("line={l}"));
    }
    if let Some(c) = e.column {
        props.push(format!("col={c}"));
    }
    props.push(format!("title={}", gh_prop(e.field.as_deref().unwrap_or("flannel-gen"))));
    let kind = match e.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!("::{kind} {}::{}\n", props.join(","), gh_data(&e.message))
}

fn gh_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Pos;

    fn entry() -> Entry {
        let d = Diagnostic::new(Path::new("a,b.yaml"), Pos::new(3, 7), "nodes[0].ip", "bad: 50% of\nit");
        Entry::located(&d, Severity::Error)
    }

    #[test]
    fn github_escapes_data_and_properties() {
        assert_eq!(
            github_line(&entry()),
            "::error file=a%2Cb.yaml,line=3,col=7,title=nodes[0].ip::bad: 50%25 of%0Ait\n"
        );
    }

    #[test]
    fn text_matches_the_diagnostic_display() {
        let d = Diagnostic::new(Path::new("t.yaml"), Pos::new(3, 7), "nodes[0].ip", "bad");
        assert_eq!(text_line(&Entry::located(&d, Severity::Error)), format!("{d}\n"));
    }

    #[test]
    fn whole_file_problems_have_no_line_in_json() {
        let d = Diagnostic::new(Path::new("t.yaml"), Pos::FILE, "", "empty file");
        let v = serde_json::to_value(Entry::located(&d, Severity::Error)).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"file": "t.yaml", "line": null, "column": null, "field": null,
                "severity": "error", "message": "empty file"})
        );
    }
}
