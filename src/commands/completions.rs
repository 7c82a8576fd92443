//! `flannel-gen completions SHELL`

use super::out;
use crate::error::{Error, exit};

/// Print a shell completion script.
///
/// Examples:
///   flannel-gen completions bash > /etc/bash_completion.d/flannel-gen
///   flannel-gen completions zsh > /usr/local/share/zsh/site-functions/_flannel-gen
///   flannel-gen completions fish > ~/.config/fish/completions/flannel-gen.fish
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}

const BIN: &str = "flannel-gen";

/// `cli` is the whole command line (passed in: commands do not depend on `cli`).
pub fn run(a: Args, cli: clap::Command) -> Result<u8, Error> {
    out(&script(a.shell, cli))?;
    Ok(exit::OK)
}

/// The completion script for `shell`, with the bash generator's bug worked around.
pub fn script(shell: clap_complete::Shell, mut cli: clap::Command) -> String {
    // Generate into memory: clap_complete panics when the pipe closes early.
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cli, BIN, &mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    if shell == clap_complete::Shell::Bash { fix_bash_case_labels(&text, BIN) } else { text }
}

/// clap_complete's bash generator (clap issue #6421) mangles a hyphenated
/// binary name two ways: `cmd` is set to `flannel__gen__subcmd__apply`, but
/// the `case` that lists each command's options is labelled
/// `flannel__subcmd__gen__subcmd__apply)`, so no subcommand option ever
/// completes. Relabel the case arms the way `cmd` is set.
fn fix_bash_case_labels(script: &str, bin: &str) -> String {
    let wrong = format!("{}__", bin.replace('-', "__subcmd__"));
    let right = format!("{}__", bin.replace('-', "__"));
    let mut fixed = String::with_capacity(script.len());
    for line in script.split_inclusive('\n') {
        let body = line.trim_start();
        if body.starts_with(&wrong) && body.trim_end().ends_with(')') {
            fixed.push_str(&line[..line.len() - body.len()]);
            fixed.push_str(&body.replacen(&wrong, &right, 1));
        } else {
            fixed.push_str(line);
        }
    }
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relabels_only_case_arms() {
        let s = "        flannel__subcmd__gen__subcmd__apply)\n    x=flannel__subcmd__gen__y\n";
        assert_eq!(
            fix_bash_case_labels(s, "flannel-gen"),
            "        flannel__gen__subcmd__apply)\n    x=flannel__subcmd__gen__y\n"
        );
    }
}
