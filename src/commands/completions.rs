//! `flannel-gen completions SHELL`

use super::out;
use crate::error::{Error, exit};

/// Print a shell completion script.
///
/// Example:
///   flannel-gen completions bash > /etc/bash_completion.d/flannel-gen
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}

/// `cli` is the whole command line (passed in: commands do not depend on `cli`).
pub fn run(a: Args, mut cli: clap::Command) -> Result<u8, Error> {
    // Generate into memory: clap_complete panics when the pipe closes early.
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cli, "flannel-gen", &mut buf);
    out(&String::from_utf8_lossy(&buf))?;
    Ok(exit::OK)
}
