//! `flannel-gen man --out DIR`

use std::path::PathBuf;

use super::{out, plural};
use crate::error::{Error, exit};

/// Write the manual pages: flannel-gen(1) and one page per command, such as
/// flannel-gen-apply(1), as roff.
///
/// Examples:
///   flannel-gen man --out /usr/local/share/man/man1
///   flannel-gen man --out /tmp/man && man -l /tmp/man/flannel-gen-apply.1
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Directory to write the pages into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `cli` is the whole command line (passed in: commands do not depend on `cli`).
pub fn run(a: Args, cli: clap::Command) -> Result<u8, Error> {
    std::fs::create_dir_all(&a.out).map_err(Error::io(&a.out))?;
    let mut cli = cli.disable_help_subcommand(true);
    cli.build();
    let mut written = 0;
    write_pages(&cli, &a.out, &mut written)?;
    out(&format!("{}: wrote {}\n", a.out.display(), plural(written, "man page")))?;
    Ok(exit::OK)
}

/// The page of `cmd`, then of each of its commands (flannel-gen-publish-etcd.1 …).
fn write_pages(cmd: &clap::Command, dir: &std::path::Path, written: &mut usize) -> Result<(), Error> {
    let man = clap_mangen::Man::new(cmd.clone()).manual("flannel-gen manual");
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page).map_err(Error::io(&path))?;
    std::fs::write(&path, page).map_err(Error::io(&path))?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}
