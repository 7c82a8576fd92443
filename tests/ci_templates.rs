//! #26: the CI templates in dist/ci/. Their shell steps run here against the
//! examples, in a scratch git repository whose base branch holds the vxlan
//! cluster and whose head holds the host-gw one. Not run: the steps that
//! download and install the package (no network here) and GitLab's note
//! POST; the flannel-gen under test stands in for the installed one.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{code, root};

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// A repository with `cluster/topology.yaml` (+ lock): `base` on main, `head` checked out.
fn repo(dir: &Path, base: &str, head: &str) {
    let put = |example: &str| {
        std::fs::create_dir_all(dir.join("cluster")).expect("mkdir");
        for ext in ["yaml", "lock"] {
            let from = root().join(format!("examples/{example}.{ext}"));
            std::fs::copy(from, dir.join(format!("cluster/topology.{ext}"))).expect("copy");
        }
    };
    git(dir, &["init", "-q", "-b", "main"]);
    put(base);
    git(dir, &["add", "."]);
    git(dir, &["commit", "-qm", "base"]);
    git(dir, &["checkout", "-qb", "feature"]);
    put(head);
    git(dir, &["commit", "-qam", "head"]);
    git(dir, &["update-ref", "refs/remotes/origin/main", "main"]);
}

/// The `run:` blocks of a GitHub workflow step named `name`.
fn github_step(name: &str) -> String {
    let text = std::fs::read_to_string(root().join("dist/ci/github-actions.yml")).expect("workflow");
    let start = text.find(&format!("- name: {name}")).unwrap_or_else(|| panic!("step `{name}`"));
    let rest = &text[start..];
    let run = rest.find("run:").expect("run") + 4;
    let body = &rest[run..];
    let block: Vec<&str> = if let Some(b) = body.strip_prefix(" |\n") {
        b.lines().take_while(|l| l.starts_with("          ")).map(|l| &l[10..]).collect()
    } else {
        vec![body.lines().next().unwrap_or_default().trim()]
    };
    block.join("\n").replace("${{ github.base_ref }}", "main")
}

fn sh(dir: &Path, script: &str, env: &[(&str, &str)]) -> Output {
    let bin = env!("CARGO_BIN_EXE_flannel-gen");
    let path =
        format!("{}:{}", Path::new(bin).parent().expect("dir").display(), std::env::var("PATH").unwrap_or_default());
    let mut c = Command::new("sh");
    c.args(["-c", script]).current_dir(dir).env("PATH", path);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("sh")
}

fn with_review_script(dir: &Path) {
    std::fs::create_dir_all(dir.join("dist/ci")).expect("mkdir");
    std::fs::copy(root().join("dist/ci/review.sh"), dir.join("dist/ci/review.sh")).expect("copy");
}

#[test]
fn the_github_workflow_steps_post_the_plan_to_the_job_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (repo_dir, tmp) = (dir.path().join("repo"), dir.path().join("runner"));
    std::fs::create_dir_all(&repo_dir).expect("mkdir");
    std::fs::create_dir_all(&tmp).expect("mkdir");
    repo(&repo_dir, "vxlan-3node", "hostgw-3node");
    with_review_script(&repo_dir);
    let summary = dir.path().join("summary.md");
    let env = [
        ("TOPOLOGY", "cluster/topology.yaml"),
        ("RUNNER_TEMP", tmp.to_str().expect("utf8")),
        ("GITHUB_STEP_SUMMARY", summary.to_str().expect("utf8")),
    ];
    for step in ["the base branch's topology", "validate, lock --check, render --check, plan"] {
        let o = sh(&repo_dir, &github_step(step), &env);
        assert_eq!(code(&o), 0, "{step}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    }
    let md = std::fs::read_to_string(&summary).expect("summary");
    assert!(md.contains("disruption: phased rollout required"), "{md}");
    assert!(md.contains("flannel-gen apply cluster/topology.yaml --node node-3 --phase 2"), "{md}");
}

#[test]
fn a_broken_topology_becomes_annotations_and_fails_the_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    repo(dir.path(), "vxlan-3node", "hostgw-3node");
    with_review_script(dir.path());
    std::fs::copy(root().join("tests/bad/connected-is-uplink.yaml"), dir.path().join("cluster/topology.yaml"))
        .expect("copy");
    let o = sh(dir.path(), "dist/ci/review.sh cluster/topology.yaml cluster/topology.yaml summary.md", &[]);
    assert_ne!(code(&o), 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("::error file=cluster/topology.yaml,line=14,"), "{out}");
}

#[test]
fn the_gitlab_job_script_writes_the_plan_note() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (origin, work) = (dir.path().join("origin"), dir.path().join("work"));
    std::fs::create_dir_all(&origin).expect("mkdir");
    repo(&origin, "vxlan-3node", "hostgw-3node");
    git(dir.path(), &["clone", "-q", "-b", "feature", origin.to_str().expect("utf8"), "work"]);
    with_review_script(&work);
    let text = std::fs::read_to_string(root().join("dist/ci/gitlab-ci.yml")).expect("job");
    // The script lines from the base branch's fetch to the review (install and note POST need the network).
    let script: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- "))
        .filter(|l| l.starts_with("mkdir") || l.starts_with("git ") || l.starts_with("dist/ci/review.sh"))
        .map(|l| l.replace("/tmp/base", dir.path().join("base").to_str().expect("utf8")))
        .collect();
    assert_eq!(script.len(), 5, "{script:?}");
    let env = [("TOPOLOGY", "cluster/topology.yaml"), ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main")];
    let o = sh(&work, &script.join(" && "), &env);
    assert_eq!(code(&o), 0, "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(work.join("plan.md")).expect("plan.md");
    assert!(md.contains("| `node-1` | changed | phased rollout required | vxlan → host-gw |"), "{md}");
}
