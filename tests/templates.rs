//! `--templates DIR` is code from whoever can write DIR: it is read only as
//! regular files inside DIR (at most 1 MiB each), and a template runs on a
//! budget (minijinja fuel: instructions and bytes built), so a hostile or
//! clumsy template ends in an exit 2 that names it, with nothing written,
//! while the largest real node still renders.

mod common;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{bin, code, root, run, stderr};

const TOPO: &str = "examples/vxlan-3node.yaml";

fn render(tdir: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["render", TOPO, "--node", "node-1", "--out", out.to_str().expect("utf8")];
    args.extend_from_slice(&["--templates", tdir.to_str().expect("utf8")]);
    args.extend_from_slice(extra);
    run(&args)
}

/// Runs flannel-gen; returns its output, wall time and peak RSS in KiB
/// (wait4's rusage of that one child, which also reaps it).
#[allow(clippy::zombie_processes)]
fn measured(args: &[&str]) -> (std::process::Output, Duration, i64) {
    let started = Instant::now();
    let child =
        bin().args(args).current_dir(root()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let (mut out, mut err) = (child.stdout.expect("stdout"), child.stderr.expect("stderr"));
    let readers = std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        std::io::Read::read_to_end(&mut out, &mut o).expect("stdout");
        std::io::Read::read_to_end(&mut err, &mut e).expect("stderr");
        (o, e)
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own child; status and usage are valid for writes.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let (stdout, stderr) = readers.join().expect("readers");
    let status = std::os::unix::process::ExitStatusExt::from_raw(status);
    (std::process::Output { status, stdout, stderr }, started.elapsed(), usage.ru_maxrss)
}

#[test]
fn templates_are_regular_files_inside_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tdir = dir.path().join("tpl");
    fs::create_dir(&tdir).expect("mkdir");
    let secret = dir.path().join("secret");
    fs::write(&secret, "root:$6$not-for-the-overlay\n").expect("write");
    let out = dir.path().join("o");

    type Make<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "symlink out of the directory",
            Box::new(|p: &Path| std::os::unix::fs::symlink(&secret, p).expect("symlink")),
            "outside the templates directory",
        ),
        (
            "symlink to /etc/shadow",
            Box::new(|p: &Path| std::os::unix::fs::symlink("/etc/shadow", p).expect("symlink")),
            "outside the templates directory",
        ),
        (
            "FIFO",
            Box::new(|p: &Path| {
                let c = std::ffi::CString::new(p.to_str().expect("utf8")).expect("cstring");
                // SAFETY: a valid C path; mkfifo only creates the node.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
            }),
            "not a regular file",
        ),
        (
            "over 1 MiB",
            Box::new(|p: &Path| fs::write(p, "x".repeat((1 << 20) + 1)).expect("write")),
            "a template may have at most 1048576",
        ),
    ];
    for (what, make, says) in cases {
        let t = tdir.join("subnet.env.j2");
        let _ = fs::remove_file(&t);
        make(&t);
        let o = render(&tdir, &out, &[]);
        assert_eq!(code(&o), 2, "{what}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("subnet.env.j2: refusing to read this template") && err.contains(says), "{what}: {err}");
        assert!(!err.contains("not-for-the-overlay"), "{what}: the secret leaked into the message");
        assert!(!out.exists(), "{what}: --out was written");
    }

    // A symlink to a regular file inside the directory is a template like any other.
    let inner = tdir.join("subnet.env.j2");
    fs::remove_file(&inner).expect("rm");
    fs::write(tdir.join(".real-subnet.env"), "SUBNET={{ ipv4.subnet }}\n").expect("write");
    std::os::unix::fs::symlink(".real-subnet.env", &inner).expect("symlink");
    let o = render(&tdir, &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::read_to_string(out.join("node-1/run/flannel/subnet.env")).expect("read"), "SUBNET=10.244.1.0/24\n");
}

#[test]
fn runaway_templates_stop_on_their_budget_in_time_and_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("nested loops", "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"),
        (
            "doubling a string",
            "{% set ns = namespace(s='0123456789abcdef') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
        ),
    ];
    for (what, source) in cases {
        let tdir = dir.path().join(what.replace(' ', "-"));
        fs::create_dir(&tdir).expect("mkdir");
        fs::write(tdir.join("subnet.env.j2"), source).expect("write");
        let out = dir.path().join("o");
        let args = ["render", TOPO, "--node", "node-1", "--out", out.to_str().expect("utf8"), "--templates"];
        let mut args: Vec<&str> = args.to_vec();
        args.push(tdir.to_str().expect("utf8"));
        let (o, took, rss_kib) = measured(&args);
        assert_eq!(code(&o), 2, "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("template subnet.env.j2: stopped after spending its budget of 1500000 fuel"),
            "{what}: {}",
            stderr(&o)
        );
        assert!(took < Duration::from_secs(5), "{what}: took {took:?}");
        assert!(rss_kib < 200 * 1024, "{what}: peak RSS {rss_kib} KiB");
        assert!(!out.exists(), "{what}: --out was written");
        eprintln!("{what}: stopped after {took:?} at {} MiB", rss_kib / 1024);
    }
}

/// The largest real node: 5000 peers, every template overridden by its own
/// built-in text (so minijinja renders every per-peer file), renders within
/// a third of the default budget; a budget far too small stops it.
#[test]
fn the_largest_real_node_renders_within_a_third_of_the_default_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = dir.path().join("big.yaml");
    let g = run(&["generate", "--nodes", "5000"]);
    assert_eq!(code(&g), 0, "{}", stderr(&g));
    fs::write(&topo, &g.stdout).expect("write");
    let tdir = dir.path().join("tpl");
    fs::create_dir(&tdir).expect("mkdir");
    for e in fs::read_dir(root().join("templates")).expect("templates") {
        let e = e.expect("entry");
        fs::copy(e.path(), tdir.join(e.file_name())).expect("copy");
    }
    let out = dir.path().join("o");
    let render = |fuel: &str| {
        let args = ["render", topo.to_str().expect("utf8"), "--node", "node-1", "--out", out.to_str().expect("utf8")];
        let mut args = args.to_vec();
        args.extend_from_slice(&["--templates", tdir.to_str().expect("utf8"), "--template-fuel", fuel]);
        measured(&args)
    };
    let third = (1_500_000 / 3).to_string();
    let (o, took, rss) = render(&third);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let network = fs::read_to_string(out.join("node-1/etc/systemd/network/50-flannel.1.network")).expect("read");
    assert_eq!(network.matches("[BridgeFDB]").count(), 4999);
    eprintln!("5000 peers through minijinja at fuel {third}: {took:?}, {} MiB", rss / 1024);
    let (o, _, _) = render("100000");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("budget of 100000 fuel"), "{}", stderr(&o));
}
