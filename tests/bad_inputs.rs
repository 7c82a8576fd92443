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

/// Every file under `dir` with its contents, to show a directory did not change.
fn snapshot(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").map(|e| e.expect("entry")) {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), std::fs::read(e.path()).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_bad_topology_leaves_the_render_output_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    // A previous good render, plus a file of the user's.
    let o = run(&["render", "examples/vxlan-3node.yaml", "--out", out.to_str().expect("utf8")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    std::fs::write(out.join("README"), "mine").expect("write");
    let before = snapshot(&out);
    for case in cases() {
        let rel = case.strip_prefix(root()).expect("under root").to_string_lossy().into_owned();
        let o = run(&["render", &rel, "--out", out.to_str().expect("utf8")]);
        assert_eq!(code(&o), 2, "{rel}: {}", stderr(&o));
        assert_eq!(snapshot(&out), before, "{rel}: --out changed");
    }
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.yaml");
    let f = std::fs::File::create(&big).expect("create");
    f.set_len(17 * 1024 * 1024).expect("set_len");
    let started = std::time::Instant::now();
    let o = run(&["validate", big.to_str().expect("utf8")]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("inputs over 16777216 bytes are refused"), "{}", stderr(&o));
    assert!(started.elapsed().as_secs() < 2, "refused without reading it");
}
