//! What the package ships, as a user gets it: shell completion (the bash
//! script sourced into a real bash and its completion function driven the
//! way bash calls it), manual pages, and the node-independent systemd units.

mod common;

use common::{code, run, stderr, stdout};

/// Completes `words` (the last one is being typed) and returns the candidates.
fn complete_bash(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let array: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let driver = format!(
        "source '{}' || exit 9\n\
         spec=$(complete -p flannel-gen) || exit 8\n\
         fn=$(sed -E 's/.*-F ([^ ]+).*/\\1/' <<<\"$spec\")\n\
         COMP_WORDS=({})\nCOMP_CWORD={cword}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
         \"$fn\" flannel-gen '{}' '{prev}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        array.join(" "),
        words[cword]
    );
    let out = std::process::Command::new("bash").arg("-c").arg(driver).output().expect("bash runs");
    assert!(out.status.success(), "bash: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_string).collect()
}

#[test]
fn bash_completes_commands_their_options_and_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("flannel-gen.bash");
    let out = run(&["completions", "bash"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::write(&script, stdout(&out)).expect("write script");

    assert_eq!(complete_bash(&script, &["flannel-gen", "ren"]), ["render"]);
    assert_eq!(complete_bash(&script, &["flannel-gen", "apply", "--dr"]), ["--dry-run"]);
    let opts = complete_bash(&script, &["flannel-gen", "render", "--"]);
    for o in ["--out", "--node", "--check", "--binary", "--diagnostics"] {
        assert!(opts.iter().any(|x| x == o), "render options lack {o}: {opts:?}");
    }
    assert!(!opts.iter().any(|x| x == "--dry-run"), "apply's options are not render's: {opts:?}");
    assert_eq!(complete_bash(&script, &["flannel-gen", "apply", "--format", ""]), ["text", "json"]);
    let nested = complete_bash(&script, &["flannel-gen", "publish", "etcd", "--en"]);
    assert_eq!(nested, ["--endpoints"]);
    assert_eq!(complete_bash(&script, &["flannel-gen", "validate", "--format", "g"]), ["github"]);
}

#[test]
fn zsh_and_fish_scripts_name_every_command() {
    for shell in ["zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert_eq!(code(&out), 0);
        for cmd in ["validate", "render", "apply", "import-netconf", "man"] {
            assert!(stdout(&out).contains(cmd), "{shell} lacks {cmd}");
        }
    }
}

#[test]
fn man_writes_a_page_per_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(&["man", "--out", dir.path().to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let top = std::fs::read_to_string(dir.path().join("flannel-gen.1")).expect("flannel-gen.1");
    assert!(top.starts_with(".ie") || top.contains(".TH flannel-gen 1"), "roff with a title: {}", &top[..200]);
    for page in ["flannel-gen-apply.1", "flannel-gen-render.1", "flannel-gen-publish-etcd.1", "flannel-gen-man.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".SH OPTIONS") || text.contains(".SH NAME"), "{page}");
    }
    let apply = std::fs::read_to_string(dir.path().join("flannel-gen-apply.1")).expect("apply page");
    assert!(apply.contains("\\-\\-dry\\-run"), "the apply page documents --dry-run");
    // man(1) itself reads the page; only its absence is a skip (CI installs
    // man-db and requires it), a failing man is a failure.
    match std::process::Command::new("man").arg("-l").arg(dir.path().join("flannel-gen-apply.1")).output() {
        Ok(o) => {
            assert!(o.status.success(), "man -l flannel-gen-apply.1: {}", String::from_utf8_lossy(&o.stderr));
            assert!(String::from_utf8_lossy(&o.stdout).contains("dry-run"), "man shows the page");
        }
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && std::env::var("FLANNEL_GEN_E2E").as_deref() != Ok("require") =>
        {
            eprintln!("SKIPPED man -l flannel-gen-apply.1: man(1) is not installed; the roff is checked above")
        }
        Err(e) => panic!("man -l: {e} (Debian package man-db)"),
    }
}

/// `units` writes exactly the bytes every node's render puts in its overlay,
/// so the package's units and a rendered node never disagree.
#[test]
fn packaged_units_are_the_rendered_units_of_every_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let units = dir.path().join("units");
    let out = run(&["units", "--out", units.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut compared = 0;
    for example in ["examples/vxlan-3node.yaml", "examples/udp-3node.yaml", "examples/vxlan-dualstack.yaml"] {
        let o = dir.path().join("render");
        let r = run(&["render", example, "--out", o.to_str().expect("utf-8")]);
        assert_eq!(code(&r), 0, "{}", stderr(&r));
        for node in std::fs::read_dir(&o).expect("rendered") {
            let sys = node.expect("node").path().join("etc/systemd/system");
            for unit in std::fs::read_dir(&sys).expect("units dir") {
                let unit = unit.expect("unit").path();
                let name = unit.file_name().expect("name");
                if name == "flannel-gen-rules.service" {
                    continue; // per node: iptables or nft, v4 and/or v6
                }
                let packaged = std::fs::read(units.join(name)).unwrap_or_else(|e| panic!("{name:?}: {e}"));
                assert_eq!(std::fs::read(&unit).expect("read"), packaged, "{}", unit.display());
                compared += 1;
            }
        }
    }
    assert!(compared >= 9, "compared {compared} units");
    let unit = std::fs::read_to_string(units.join("flannel-gen.service")).expect("unit");
    assert!(unit.contains("\nExecStart=/usr/bin/flannel-gen apply --plan /etc/flannel-gen/plan.json\n"), "{unit}");
    let other = dir.path().join("other");
    let o = run(&["units", "--out", other.to_str().expect("utf-8"), "--binary", "/opt/fg/bin/flannel-gen"]);
    assert_eq!(code(&o), 0);
    let unit = std::fs::read_to_string(other.join("flannel-gen-udp.service")).expect("unit");
    assert!(unit.contains("\nExecStart=/opt/fg/bin/flannel-gen udp --plan"), "{unit}");
}
