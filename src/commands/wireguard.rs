//! `flannel-gen wireguard keygen`: the node's WireGuard private key, made on
//! the node and never anywhere else.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::out;
use crate::diag::{Diagnostics, Pos};
use crate::error::{Error, exit};
use crate::wireguard::key::Key;

/// Where `keygen` keeps the key unless told otherwise.
pub const DEFAULT_KEY_FILE: &str = "/etc/flannel-gen/wireguard.key";
/// A key file is 44 characters and a newline; anything much larger is not one.
const MAX_KEY_FILE: u64 = 1024;

/// WireGuard keys of this node.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: WireguardCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum WireguardCommand {
    Keygen(KeygenArgs),
}

/// Make the node's private key if FILE does not exist (mode 0600, written
/// atomically), and print its public key: what the node's peers need, and
/// all that may leave the node. An existing key is read, never replaced.
///
/// Example:
///   ssh node-1 flannel-gen wireguard keygen
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct KeygenArgs {
    /// The private key file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_KEY_FILE)]
    pub key_file: PathBuf,
}

pub fn run(a: Args) -> Result<u8, Error> {
    match a.command {
        WireguardCommand::Keygen(k) => keygen(&k.key_file),
    }
}

fn keygen(path: &Path) -> Result<u8, Error> {
    let key = match read_key(path)? {
        Some(k) => k,
        None => create(path)?,
    };
    out(&format!("{}\n", key.public()))?;
    Ok(exit::OK)
}

/// The key in `path`, `None` when there is no file.
fn read_key(path: &Path) -> Result<Option<Key>, Error> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path)(e)),
    };
    let meta = file.metadata().map_err(Error::io(path))?;
    let bad = |m: String| Error::Invalid(Diagnostics::one(path, Pos::new(1, 1), "", m));
    if !meta.is_file() || meta.len() > MAX_KEY_FILE {
        return Err(bad("not a WireGuard key file (a regular file of one base64 line)".into()));
    }
    if meta.mode() & 0o077 != 0 {
        crate::commands::warn(&format!(
            "{}: mode {:o} lets others read the private key; chmod 600 it",
            path.display(),
            meta.mode() & 0o777
        ));
    }
    let mut text = String::new();
    file.take(MAX_KEY_FILE).read_to_string(&mut text).map_err(|_| bad("not text".into()))?;
    let key = text.parse::<Key>().map_err(|e| bad(format!("not a WireGuard private key: {e}")))?;
    Ok(Some(key))
}

/// A new key in `path`: written to a private temporary file beside it, then
/// linked into place, which fails rather than replace a key made meanwhile.
fn create(path: &Path) -> Result<Key, Error> {
    let key = Key::generate().map_err(Error::io("getrandom"))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let tmp = crate::fsutil::staging_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(format!("{key}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    };
    let made = write();
    let _ = std::fs::remove_file(&tmp);
    match made {
        Ok(()) => Ok(key),
        // Another keygen won the race: its key is the node's.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path)?.ok_or_else(|| Error::io(path)(e)),
        Err(e) => Err(Error::io(path)(e)),
    }
}
