//! The crate's error type and its exit codes (README "Commands"). Modules have
//! their own typed errors; this wraps them at the command edge.

use std::path::PathBuf;

use crate::diag::Diagnostics;

/// Exit codes: 0 success / no change, 1 changes or drift, 2 bad input, 3 system failure.
pub mod exit {
    pub const OK: u8 = 0;
    pub const CHANGES: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const SYSTEM: u8 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Located problems with an input file.
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    #[error(transparent)]
    Apply(#[from] crate::apply::ApplyError),
    #[error(transparent)]
    Etcd(#[from] crate::registry::etcd::EtcdError),
    #[error(transparent)]
    #[cfg(feature = "udp")]
    Udp(#[from] crate::udp::UdpError),
    /// A check of flannel-gen's own output failed: a bug, reported as such.
    #[error("{0}")]
    Internal(String),
    /// The store holds something publishing must not overwrite; nothing was written.
    #[error("{0}")]
    Conflict(String),
    /// Arguments that parse but make no sense together.
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        use crate::apply::{ApplyError, snapshot::SnapshotError};
        use crate::registry::etcd::EtcdError;
        use crate::render::{OutputError, RenderError};
        match self {
            Error::Invalid(_) | Error::Plan(_) | Error::Usage(_) => exit::BAD_INPUT,
            Error::Render(RenderError::Output(OutputError::Io { .. } | OutputError::Unwritable { .. })) => exit::SYSTEM,
            Error::Render(_) => exit::BAD_INPUT,
            Error::Etcd(EtcdError::TlsFile { .. }) => exit::BAD_INPUT,
            Error::Apply(ApplyError::Snapshot(SnapshotError::Corrupt { .. } | SnapshotError::Invalid { .. })) => {
                exit::BAD_INPUT
            }
            Error::Io { .. } | Error::Apply(_) | Error::Etcd(_) | Error::Internal(_) | Error::Conflict(_) => {
                exit::SYSTEM
            }
            #[cfg(feature = "udp")]
            Error::Udp(_) => exit::SYSTEM,
        }
    }

    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

impl From<Diagnostics> for Error {
    fn from(d: Diagnostics) -> Self {
        Error::Invalid(d)
    }
}

impl From<crate::registry::import::ImportError> for Error {
    fn from(e: crate::registry::import::ImportError) -> Self {
        use crate::registry::import::ImportError;
        match e {
            ImportError::Invalid(d) => Error::Invalid(d),
            m @ ImportError::Mismatch(_) => Error::Internal(m.to_string()),
        }
    }
}
