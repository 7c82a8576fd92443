//! `etc/tmpfiles.d/flannel-gen.conf`: /run is a tmpfs, so the overlay's
//! runtime files (subnet.env, docker_opts.env — what flanneld writes when it
//! starts) would be gone after the node's first reboot. systemd-tmpfiles
//! writes them again early in every boot, before docker or kubelet read them.

use super::{MODE, RenderedFile};

/// Where the tmpfiles.d drop-in goes in the overlay.
pub const PATH: &str = "etc/tmpfiles.d/flannel-gen.conf";

/// `f+` lines (write, replacing) for every overlay file under `run/`, with
/// `d` lines for their directories; `None` when there is none.
pub fn runtime_files(files: &[RenderedFile]) -> Option<RenderedFile> {
    let mut run: Vec<&RenderedFile> = files.iter().filter(|f| f.path.starts_with("run/")).collect();
    run.sort_by(|a, b| a.path.cmp(&b.path));
    if run.is_empty() {
        return None;
    }
    let mut text = String::from(
        "# flannel-gen: /run is a tmpfs; write the runtime files flanneld would have written at every boot.\n",
    );
    let mut dirs: Vec<&str> = run.iter().filter_map(|f| f.path.rsplit_once('/').map(|(d, _)| d)).collect();
    dirs.sort_unstable();
    dirs.dedup();
    for d in dirs.into_iter().filter(|d| *d != "run") {
        text.push_str(&format!("d /{d} 0755 root root -\n"));
    }
    for f in run {
        text.push_str(&format!("f+ /{} {:04o} root root - {}\n", f.path, f.mode, escape(&f.bytes)));
    }
    Some(RenderedFile { path: PATH.into(), bytes: text.into_bytes(), mode: MODE })
}

/// The argument field as systemd-tmpfiles reads it: C escapes, one line.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> RenderedFile {
        RenderedFile { path: path.into(), bytes: text.as_bytes().to_vec(), mode: 0o644 }
    }

    #[test]
    fn run_files_become_one_escaped_line_each() {
        let files = [
            file("etc/docker/daemon.json", "{}\n"),
            file("run/docker_opts.env", "A=\"--x\"\nB=\" --y\"\n"),
            file("run/flannel/subnet.env", "N=1\n"),
        ];
        let conf = String::from_utf8(runtime_files(&files).expect("a drop-in").bytes).expect("utf8");
        let lines: Vec<&str> = conf.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "d /run/flannel 0755 root root -",
                "f+ /run/docker_opts.env 0644 root root - A=\"--x\"\\nB=\" --y\"\\n",
                "f+ /run/flannel/subnet.env 0644 root root - N=1\\n",
            ]
        );
    }

    #[test]
    fn no_run_files_no_drop_in() {
        assert!(runtime_files(&[file("etc/x", "y")]).is_none());
    }

    #[test]
    fn escapes_what_would_end_or_bend_the_line() {
        assert_eq!(escape(b"a\\b\tc\r\x01"), "a\\\\b\\tc\\x0d\\x01");
    }
}
