//! `flannel-gen wireguard keygen`: the node's WireGuard private key, made on
//! the node and never anywhere else.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::out;
use crate::diag::{Diagnostics, Pos};
use crate::error::{Error, exit};
use crate::wireguard::key::Key;
use crate::wireguard::keyfile::{self, KeyFileError};

use crate::wireguard::DEFAULT_KEY_FILE;

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
    let Some(f) = keyfile::read(path).map_err(key_file_error)? else { return Ok(None) };
    if let Some(mode) = f.loose_mode {
        crate::commands::warn(&format!(
            "{}: mode {mode:o} lets others read the private key; chmod 600 it",
            path.display()
        ));
    }
    Ok(Some(f.key))
}

/// A key file problem as a report: a bad file is bad input, located at its start.
pub fn key_file_error(e: KeyFileError) -> Error {
    match e {
        KeyFileError::Io { path, source } => Error::Io { path, source },
        KeyFileError::Invalid { path, why } => Error::Invalid(Diagnostics::one(&path, Pos::new(1, 1), "", why)),
    }
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

/// `plan` with its key file replaced by `key_file` (if given), after
/// checking the key file holds the private key of the plan's public key and
/// the pre-shared key file is a key: before anything touches the kernel.
pub fn with_key_file(plan: crate::plan::NodePlan, key_file: Option<&Path>) -> Result<crate::plan::NodePlan, Error> {
    use crate::plan::BackendPlan;
    let BackendPlan::Wireguard { public_key, key_file: planned, psk_file, .. } = &plan.backend else {
        return match key_file {
            Some(_) => Err(Error::Usage("--wireguard-key-file: the plan's backend is not wireguard".into())),
            None => Ok(plan),
        };
    };
    let path = key_file.map_or_else(|| PathBuf::from(planned), Path::to_path_buf);
    let Some(private) = keyfile::read(&path).map_err(key_file_error)? else {
        return Err(Error::Usage(format!(
            "{}: no WireGuard key on this node; run `flannel-gen wireguard keygen --key-file {}` and record its public key in the lock",
            path.display(),
            path.display()
        )));
    };
    if private.key.public() != *public_key {
        let m = format!(
            "holds the key of public key {}, but the plan of node {} names {public_key}; record this node's key with `flannel-gen lock TOPO --wireguard-key {}={}`",
            private.key.public(),
            plan.node,
            plan.node,
            private.key.public()
        );
        return Err(Error::Invalid(Diagnostics::one(&path, Pos::new(1, 1), "", m)));
    }
    if let Some(psk) = psk_file {
        keyfile::require(Path::new(psk)).map_err(key_file_error)?;
    }
    if crate::apply::wireguard::find_implementation().is_none() {
        return Err(Error::Usage(format!(
            "{} not found: this kernel's WireGuard devices are made by a userspace implementation (install wireguard-go, or name one in {})",
            crate::apply::wireguard::implementation(),
            crate::apply::wireguard::IMPLEMENTATION_ENV
        )));
    }
    let Some(path) = key_file else { return Ok(plan) };
    let mut data = plan.data().clone();
    if let BackendPlan::Wireguard { key_file, .. } = &mut data.backend {
        *key_file = path.display().to_string();
    }
    crate::plan::NodePlan::new(data).map_err(|p| {
        Error::Usage(format!(
            "--wireguard-key-file: {}",
            p.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        ))
    })
}
