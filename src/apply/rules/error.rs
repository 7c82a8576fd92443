//! How running the rules tools fails: a leaf, so the netlink layer can wrap
//! it without importing the tools (which use the netlink layer).

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{program} not found (looked in PATH, /usr/sbin, /sbin); {why}")]
    Missing { program: &'static str, why: String },
    #[error("{program}: {detail}")]
    Failed { program: &'static str, detail: String },
}
