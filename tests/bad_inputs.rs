//! Every file in tests/bad/ is a topology that breaks one rule (or several,
//! for many-errors.yaml). Its `.expect` sidecar holds the exact diagnostics,
//! one per line, as `LINE:COL: error: FIELD: message` after the file name.

mod common;

use std::path::PathBuf;

use common::{code, golden, root, run, stderr};

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/bad"))
        .expect("tests/bad")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_bad_topology_exits_2_with_its_located_messages() {
    let cases = cases();
    assert!(cases.len() >= 50, "corpus shrank to {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let rel = case.strip_prefix(root()).expect("under root").to_string_lossy().into_owned();
        let out = run(&["validate", &rel]);
        let err = stderr(&out);
        // Drop the "N errors" summary; keep the diagnostics themselves.
        let diags: String = err
            .lines()
            .filter(|l| !l.ends_with(" error") && !l.ends_with(" errors"))
            .map(|l| {
                let l = l
                    .strip_prefix(&rel)
                    .unwrap_or_else(|| panic!("{rel}: diagnostic does not start with the file name: {l}"));
                format!("{}\n", l.trim_start_matches(':'))
            })
            .collect();
        if code(&out) != 2 {
            failures.push(format!("{rel}: exit {} (want 2): {err}", code(&out)));
        }
        golden(&case.with_extension("expect"), &diags);
        for line in diags.lines() {
            // Whole-file problems (size, encoding, emptiness) have no line:col.
            let located = line.split(':').take(2).all(|n| n.parse::<u64>().is_ok());
            if !located && !line.starts_with(" error:") {
                failures.push(format!("{rel}: not located: {line}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_errors_of_a_file_are_reported() {
    let out = run(&["validate", "tests/bad/many-errors.yaml"]);
    let err = stderr(&out);
    assert_eq!(err.lines().filter(|l| l.contains(": error: ")).count(), 3, "{err}");
    assert!(err.ends_with("3 errors\n"), "{err}");
}
