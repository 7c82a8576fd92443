//! Key files on the node: the private key `keygen` writes (and apply and
//! networkd read), and an optional pre-shared key. One base64 line each, as
//! `wg genkey` writes them.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::key::Key;

/// A key file is 44 characters and a newline; anything much larger is not one.
const MAX_KEY_FILE: u64 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// Not a key; reported at `path`:1:1.
    #[error("{path}: {why}")]
    Invalid { path: PathBuf, why: String },
}

/// A key read from its file, and whether others may read that file.
#[derive(Debug)]
pub struct KeyFile {
    pub key: Key,
    /// The file's permission bits, when group or others have any.
    pub loose_mode: Option<u32>,
}

/// The key in `path`; `None` when there is no such file.
pub fn read(path: &Path) -> Result<Option<KeyFile>, KeyFileError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(KeyFileError::Io { path: path.into(), source }),
    };
    let meta = file.metadata().map_err(|source| KeyFileError::Io { path: path.into(), source })?;
    let bad = |why: String| KeyFileError::Invalid { path: path.into(), why };
    if !meta.is_file() || meta.len() > MAX_KEY_FILE {
        return Err(bad("not a WireGuard key file (a regular file of one base64 line)".into()));
    }
    let mut text = String::new();
    file.take(MAX_KEY_FILE).read_to_string(&mut text).map_err(|_| bad("not text".into()))?;
    let key = text.parse::<Key>().map_err(|e| bad(format!("not a WireGuard key: {e}")))?;
    let loose_mode = Some(meta.mode() & 0o777).filter(|m| m & 0o077 != 0);
    Ok(Some(KeyFile { key, loose_mode }))
}

/// The key in `path`, which must exist.
pub fn require(path: &Path) -> Result<KeyFile, KeyFileError> {
    read(path)?.ok_or_else(|| KeyFileError::Io {
        path: path.into(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
    })
}
