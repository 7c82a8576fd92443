//! `flannel-gen units --out DIR`

use std::path::PathBuf;

use super::{out, plural};
use crate::error::{Error, exit};
use crate::render::{self, DEFAULT_BINARY};

/// Write the systemd units that are the same on every node, for a package or
/// an OS image: flannel-gen.service (apply at boot), flannel-gen-watch.service
/// (repair drift) and flannel-gen-udp.service (the udp forwarder). Each reads
/// /etc/flannel-gen/plan.json; `render` writes the same bytes to a node's
/// overlay.
///
/// Examples:
///   flannel-gen units --out /usr/lib/systemd/system
///   flannel-gen units --out image/etc/systemd/system --binary /opt/bin/flannel-gen
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Directory to write the units into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Where flannel-gen is installed, for the units' ExecStart.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_BINARY)]
    pub binary: String,
    #[command(flatten)]
    pub templates: super::templates::TemplateArgs,
}

pub fn run(a: Args) -> Result<u8, Error> {
    let t = a.templates.load()?;
    let files = render::units(&t, &a.binary)?;
    std::fs::create_dir_all(&a.out).map_err(Error::io(&a.out))?;
    for f in &files {
        let path = a.out.join(&f.path);
        std::fs::write(&path, &f.bytes).map_err(Error::io(&path))?;
    }
    out(&format!("{}: wrote {}\n", a.out.display(), plural(files.len(), "unit")))?;
    Ok(exit::OK)
}
