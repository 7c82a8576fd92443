//! flannel's traffic rules on the node, through the tools that own the
//! tables: `iptables-save` / `iptables-restore --noflush` (and ip6tables) and
//! `nft`. They run as children of apply, so inside the namespace it entered.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::netaddr::Family;
use crate::plan::NodePlan;
use crate::topology::RulesBackend;
use crate::traffic::iptables::{self, SavedChain};
use crate::traffic::nft;

pub mod error;
pub mod random_fully;

pub use error::RulesError;

/// What the node has of flannel-gen's rules, per family.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveRules {
    /// The owned chains as iptables-save shows them (absent: no iptables here).
    pub iptables: BTreeMap<Family, BTreeMap<&'static str, SavedChain>>,
    /// `nft -j list table` of the owned table, when it exists.
    pub nft: BTreeMap<Family, nft::NftTable>,
    /// The iptables tables there are, each with whether nft may delete it
    /// as bare ([`iptables::bare_tables`], and an nf_tables table).
    pub tables: BTreeMap<Family, BTreeMap<String, bool>>,
}

/// A tool on PATH, or in the sbin directories root's PATH may lack.
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The tools the plan's rules need, each missing one with why it is needed.
pub fn missing_tools(plan: &NodePlan) -> Vec<RulesError> {
    let Some(t) = plan.traffic_rules else { return Vec::new() };
    let why = "the node needs it for flannel's masquerade and forward rules (install it, or set `trafficRules: none`)";
    let mut needed = Vec::new();
    for r in plan.family_rules() {
        match t.backend {
            RulesBackend::Iptables => {
                needed.push(iptables::save_program(r.family));
                needed.push(iptables::restore_program(r.family));
            }
            RulesBackend::Nftables => needed.push("nft"),
        }
    }
    needed.dedup();
    needed
        .into_iter()
        .filter(|p| find(p).is_none())
        .map(|program| RulesError::Missing { program, why: why.into() })
        .collect()
}

/// The tools that read the rules, started: they run while apply reads the
/// kernel over netlink, so a read costs the longer of the two, not the sum.
#[derive(Default)]
pub struct PendingRules {
    /// The families the tools were started for.
    families: Vec<Family>,
    children: Vec<(Family, &'static str, std::process::Child)>,
}

fn spawn(program: &'static str, path: PathBuf, args: &[&str]) -> Result<std::process::Child, RulesError> {
    Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RulesError::Failed { program, detail: e.to_string() })
}

/// Starts reading the owned chains and tables for the families in
/// `families`, with whichever tools this node has.
pub fn start_dump(families: &[Family]) -> Result<PendingRules, RulesError> {
    let mut children = Vec::new();
    for &f in families {
        let save = iptables::save_program(f);
        if let Some(path) = find(save) {
            children.push((f, save, spawn(save, path, &[])?));
        }
        let (fam, name) = nft::table_of(f);
        if let Some(path) = find("nft") {
            children.push((f, "nft", spawn("nft", path, &["-j", "list", "table", fam, name])?));
        }
    }
    Ok(PendingRules { families: families.to_vec(), children })
}

impl PendingRules {
    /// These reads and, started now, those of the `families` they lack.
    pub fn complete(mut self, families: &[Family]) -> Result<PendingRules, RulesError> {
        let lacking: Vec<Family> = families.iter().copied().filter(|f| !self.families.contains(f)).collect();
        if !lacking.is_empty() {
            let more = start_dump(&lacking)?;
            self.families.extend(more.families);
            self.children.extend(more.children);
        }
        Ok(self)
    }

    /// Waits for every tool and keeps what it read of `families` (a read
    /// started ahead covers every family); `nft -j list table` failing means
    /// no such table.
    pub fn finish(self, families: &[Family]) -> Result<LiveRules, RulesError> {
        let mut live = LiveRules::default();
        for (f, program, child) in self.children {
            let out = child.wait_with_output().map_err(|e| RulesError::Failed { program, detail: e.to_string() })?;
            if !families.contains(&f) {
                continue;
            }
            let text = String::from_utf8_lossy(&out.stdout);
            match (program, out.status.success()) {
                ("nft", true) => {
                    let table = nft::parse_listing(&text).map_err(|detail| RulesError::Failed { program, detail })?;
                    live.nft.insert(f, table);
                }
                ("nft", false) => {}
                (_, true) => {
                    live.iptables.insert(f, iptables::parse_save(&text));
                    live.tables.insert(f, removable_tables(f, &text));
                }
                (_, false) => {
                    let detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
                    return Err(RulesError::Failed { program, detail });
                }
            }
        }
        Ok(live)
    }
}

/// `nft list table` of each family's owned table, for those in `families`
/// that have one: a snapshot keeps the text to load it back exactly.
pub fn nft_texts(families: impl IntoIterator<Item = Family>) -> Result<BTreeMap<Family, String>, RulesError> {
    let Some(path) = find("nft") else { return Ok(BTreeMap::new()) };
    let mut texts = BTreeMap::new();
    for f in families {
        let (fam, name) = nft::table_of(f);
        let out = spawn("nft", path.clone(), &["list", "table", fam, name])?
            .wait_with_output()
            .map_err(|e| RulesError::Failed { program: "nft", detail: e.to_string() })?;
        if out.status.success() {
            texts.insert(f, String::from_utf8_lossy(&out.stdout).into_owned());
        }
    }
    Ok(texts)
}

/// [`iptables::bare_tables`], bare only where iptables is nft's (a legacy
/// table cannot be deleted).
fn removable_tables(f: Family, save: &str) -> BTreeMap<String, bool> {
    let fam = nft::table_of(f).0;
    let mut tables = iptables::bare_tables(save);
    for (name, bare) in tables.iter_mut() {
        *bare = *bare && crate::apply::netlink::nftables::table_exists(fam, name) == Some(true);
    }
    tables
}

/// Feeds `payload` to `iptables-restore --noflush --wait` or `nft -f -`:
/// one commit per table. An iptables-restore older than 1.6.2 knows no
/// `--wait`: refused for that, it is run again without.
pub fn load(backend: RulesBackend, family: Family, payload: &str) -> Result<(), RulesError> {
    let (program, args): (&'static str, &[&str]) = match backend {
        RulesBackend::Iptables => (iptables::restore_program(family), &["--noflush", "--wait"]),
        RulesBackend::Nftables => ("nft", &["-f", "-"]),
    };
    match feed(program, args, payload) {
        Err(RulesError::Failed { detail, .. }) if backend == RulesBackend::Iptables && detail.contains("'--wait'") => {
            feed(program, &["--noflush"], payload)
        }
        other => other,
    }
}

fn feed(program: &'static str, args: &[&str], payload: &str) -> Result<(), RulesError> {
    let path = find(program).ok_or(RulesError::Missing { program, why: "needed to load the rules".into() })?;
    let failed = |detail: String| RulesError::Failed { program, detail };
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    // A program that refuses its arguments (an old iptables-restore and
    // `--wait`) exits before reading: the broken pipe is then only a symptom,
    // and its exit status and stderr are the error worth reporting.
    let written = child.stdin.take().map_or(Ok(()), |mut stdin| stdin.write_all(payload.as_bytes()));
    let out = child.wait_with_output().map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())));
    }
    written.map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program that refuses its arguments exits before reading: with more
    /// input than a pipe holds, the write breaks every time, and the error must
    /// still be the program's own (load's `--wait` retry reads it).
    #[test]
    fn a_program_that_exits_unread_reports_its_own_error() {
        let refuse = "echo \"v1.6.1: unrecognized option '--wait'\" >&2; exit 2";
        let payload = "*filter\n".repeat(64 * 1024);
        match feed("sh", &["-c", refuse], &payload) {
            Err(RulesError::Failed { detail, .. }) => {
                assert!(detail.contains("unrecognized option '--wait'"), "{detail}")
            }
            other => panic!("expected the program's failure, got {other:?}"),
        }
        assert!(feed("sh", &["-c", "cat >/dev/null"], &payload).is_ok());
    }
}
