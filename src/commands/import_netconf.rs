//! `flannel-gen import-netconf net-conf.json --cluster NAME --ip-masq BOOL`

use std::path::PathBuf;

use super::out;
use crate::error::{Error, exit};

/// Print a topology skeleton from flannel's net-conf.json (kube-flannel ConfigMap).
///
/// Keys are matched case-insensitively and read the way flanneld reads them;
/// a key flanneld does not read, or a value of the wrong type, is a located
/// error. List the nodes in the output, then `flannel-gen lock` it.
///
/// Example:
///   flannel-gen import-netconf net-conf.json --cluster prod --ip-masq true > cluster.yaml
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// flannel's net-conf.json (`-` reads standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Name of the cluster ([a-z0-9-]); seeds the derived VTEP MACs.
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
    /// What flanneld ran with as --ip-masq (kube-flannel.yml passes --ip-masq,
    /// i.e. true); it is a flag of flanneld, not a key of net-conf.json.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, required = true)]
    pub ip_masq: bool,
}

pub fn run(a: Args) -> Result<u8, Error> {
    let text = crate::input::read_text(&a.file)?;
    let name = crate::input::display_name(&a.file);
    let imported = crate::topology::netconf::import(&name, &text, &a.cluster, a.ip_masq)?;
    for w in &imported.warnings {
        super::report::warn_about(&name, w);
    }
    out(&imported.yaml)?;
    Ok(exit::OK)
}
