//! Machine-readable diagnostics: `validate --format json|github` and the
//! global `--diagnostics json`, checked against the reviewed text
//! diagnostics of every file in tests/bad/ (their `.expect` sidecars), and
//! topologies from standard input.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{bin, code, root, run, stderr, stdout};
use serde_json::Value;

fn bad_cases() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("tests/bad"))
        .expect("tests/bad")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.strip_prefix(root()).expect("under root").to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn json_array(text: &str) -> Vec<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(a)) => a,
        other => panic!("not a JSON array: {other:?}\n{text}"),
    }
}

/// An entry in the `.expect` form: `LINE:COL: error: FIELD: message`
/// (` error: message` for a problem with the whole file).
fn as_text(e: &Value) -> String {
    let mut s = String::new();
    if let (Some(l), Some(c)) = (e["line"].as_u64(), e["column"].as_u64()) {
        s.push_str(&format!("{l}:{c}:"));
    }
    s.push_str(&format!(" {}: ", e["severity"].as_str().expect("severity")));
    if let Some(f) = e["field"].as_str() {
        s.push_str(&format!("{f}: "));
    }
    s.push_str(e["message"].as_str().expect("message"));
    s
}

#[test]
fn json_diagnostics_say_what_the_text_says_for_every_bad_file() {
    let cases = bad_cases();
    assert!(cases.len() >= 50);
    for case in &cases {
        let out = run(&["validate", "--format", "json", case]);
        assert_eq!(code(&out), 2, "{case}: exit code as in text mode");
        assert!(stderr(&out).is_empty(), "{case}: the report is on stdout only: {}", stderr(&out));
        let entries = json_array(&stdout(&out));
        let keys = ["file", "line", "column", "field", "severity", "message"];
        for e in &entries {
            let obj = e.as_object().expect("object");
            assert_eq!(obj.keys().map(String::as_str).collect::<Vec<_>>().len(), keys.len(), "{case}: {e}");
            assert!(keys.iter().all(|k| obj.contains_key(*k)), "{case}: {e}");
            assert_eq!(e["file"], *case);
        }
        let expect = std::fs::read_to_string(root().join(case).with_extension("expect")).expect("expect file");
        let got: Vec<String> = entries.iter().map(as_text).collect();
        assert_eq!(got, expect.lines().collect::<Vec<_>>(), "{case}");
    }
}

#[test]
fn valid_files_give_an_empty_array_and_exit_0() {
    let out = run(&["validate", "--format", "json", "examples/vxlan-3node.yaml", "examples/udp-3node.yaml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_array(&stdout(&out)), Vec::<Value>::new());
}

#[test]
fn github_annotations_one_per_problem() {
    let out = run(&["validate", "--format", "github", "tests/bad/many-errors.yaml", "examples/hostgw-3node.yaml"]);
    assert_eq!(code(&out), 2);
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for l in &lines {
        assert!(l.starts_with("::error file=tests/bad/many-errors.yaml,line="), "{l}");
        assert!(l.contains(",col=") && l.contains(",title="), "{l}");
    }
}

#[test]
fn every_command_reports_json_on_stderr_with_the_same_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("out");
    let o = out_dir.to_str().expect("utf-8");
    for args in [
        vec!["render", "tests/bad/many-errors.yaml", "--out", o],
        vec!["plan", "tests/bad/many-errors.yaml", "--node", "node-1"],
        vec!["diff", "tests/bad/many-errors.yaml", "examples/vxlan-3node.yaml"],
    ] {
        let text = run(&args);
        let mut json_args = args.clone();
        json_args.extend(["--diagnostics", "json"]);
        let json = run(&json_args);
        assert_eq!(code(&json), code(&text), "{args:?}");
        assert_eq!(code(&json), 2, "{args:?}");
        let entries = json_array(&stderr(&json));
        assert_eq!(entries.len(), 3, "{args:?}: {}", stderr(&json));
        assert!(entries.iter().all(|e| e["severity"] == "error" && e["line"].is_u64()));
    }
    assert!(!out_dir.exists(), "nothing written for a bad topology");
    // Not an input problem: unlocated, still one entry, exit code unchanged.
    let missing = run(&["plan", "no/such.yaml", "--node", "n", "--diagnostics", "json"]);
    assert_eq!(code(&missing), 2);
    let entries = json_array(&stderr(&missing));
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["file"], "no/such.yaml");
    assert!(entries[0]["line"].is_null());
}

fn with_stdin(args: &[&str], input: &str) -> std::process::Output {
    let mut child = bin()
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[test]
fn a_topology_from_stdin_is_named_stdin_in_diagnostics() {
    let bad = std::fs::read_to_string(root().join("tests/bad/wrong-type-mtu.yaml")).expect("read");
    let out = with_stdin(&["validate", "-"], &bad);
    assert_eq!(code(&out), 2);
    let expect = std::fs::read_to_string(root().join("tests/bad/wrong-type-mtu.expect")).expect("read");
    assert_eq!(stderr(&out).lines().next(), Some(format!("<stdin>:{}", expect.trim_end()).as_str()));
    let json = with_stdin(&["validate", "--format", "json", "-"], &bad);
    assert_eq!(json_array(&stdout(&json))[0]["file"], "<stdin>");

    let good = std::fs::read_to_string(root().join("examples/vxlan-3node.yaml")).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    let o = dir.path().join("out");
    let rendered = with_stdin(&["render", "-", "--out", o.to_str().expect("utf-8"), "--node", "node-2"], &good);
    assert_eq!(code(&rendered), 0, "{}", stderr(&rendered));
    let env = std::fs::read_to_string(o.join("node-2/run/flannel/subnet.env")).expect("subnet.env");
    let from_file = run(&["plan", "examples/vxlan-3node.yaml", "--node", "node-2", "--format", "json"]);
    let from_stdin = with_stdin(&["plan", "-", "--node", "node-2", "--format", "json"], &good);
    assert_eq!(stdout(&from_stdin), stdout(&from_file), "the lock next to a file does not apply to stdin");
    assert!(env.contains("FLANNEL_SUBNET="), "{env}");
}
