//! The `--out` tree: compare, stage, rename into place, prune.
//!
//! Everything is rendered in memory first; changed files are staged inside
//! `--out` (same filesystem) and renamed into place only once all of them are
//! staged, so a failure before that leaves `--out` untouched. Only files listed
//! in a node's manifest are ever removed.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::{MANIFEST, RenderedFile};
use crate::textdiff::unified;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{0}: --out exists and is not a directory")]
    NotADirectory(PathBuf),
    #[error("{0}: --out is a symlink; give the directory it points to, so no write can land elsewhere")]
    OutIsSymlink(PathBuf),
    #[error("{0}: refusing to write through a symlink inside --out")]
    SymlinkInside(PathBuf),
    #[error("{path}: `{entry}` is not a safe relative path; refusing to use it")]
    UnsafePath { path: PathBuf, entry: String },
    #[error("{path}: cannot write into --out: {source}")]
    Unwritable { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io { path: path.to_path_buf(), source }
}

/// One node's desired overlay.
pub struct NodeFiles {
    pub node: String,
    pub files: Vec<RenderedFile>,
}

/// A difference between the desired tree and `--out`. Paths are relative to `--out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Write { path: PathBuf, old: Option<(Vec<u8>, u32)>, new: Vec<u8>, mode: u32 },
    Remove { path: PathBuf, old: Vec<u8> },
}

impl Change {
    pub fn path(&self) -> &Path {
        match self {
            Change::Write { path, .. } | Change::Remove { path, .. } => path,
        }
    }

    /// `+` new, `~` changed, `-` removed: one line per file.
    pub fn summary(&self) -> String {
        match self {
            Change::Write { path, old: None, .. } => format!("+ {}", path.display()),
            Change::Write { path, .. } => format!("~ {}", path.display()),
            Change::Remove { path, .. } => format!("- {}", path.display()),
        }
    }

    /// A unified diff of the change, `git diff` style.
    pub fn diff(&self) -> String {
        let p = self.path().display();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Change::Write { old: None, new, .. } => unified(&text(b""), &text(new), "/dev/null", &format!("b/{p}")),
            Change::Write { old: Some((old, old_mode)), new, mode, .. } => {
                let mut d = unified(&text(old), &text(new), &format!("a/{p}"), &format!("b/{p}"));
                if old_mode != mode {
                    d = format!("mode {p}: {old_mode:04o} -> {mode:04o}\n{d}");
                }
                d
            }
            Change::Remove { old, .. } => unified(&text(old), "", &format!("a/{p}"), "/dev/null"),
        }
    }
}

/// A relative path of plain components only: nothing can climb out of `--out`.
fn safe_rel(entry: &str) -> Option<PathBuf> {
    let p = Path::new(entry);
    let ok = !entry.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| p.to_path_buf())
}

/// Refuses when `--out` is unusable; creates it when missing.
pub fn prepare_out(out: &Path, create: bool) -> Result<(), OutputError> {
    match fs::symlink_metadata(out) {
        Ok(m) if m.file_type().is_symlink() => Err(OutputError::OutIsSymlink(out.to_path_buf())),
        Ok(m) if !m.is_dir() => Err(OutputError::NotADirectory(out.to_path_buf())),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => fs::create_dir_all(out).map_err(io(out)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(OutputError::Io { path: out.to_path_buf(), source: e }),
    }
}

/// Fails if any existing component of `out/rel` (below `out`) is a symlink.
fn no_symlinks(out: &Path, rel: &Path) -> Result<(), OutputError> {
    let mut p = out.to_path_buf();
    for c in rel.components() {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => return Err(OutputError::SymlinkInside(p)),
            Ok(_) => {}
            Err(_) => return Ok(()), // the rest does not exist yet
        }
    }
    Ok(())
}

fn read_existing(path: &Path) -> Result<Option<(Vec<u8>, u32)>, OutputError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => {
            let bytes = fs::read(path).map_err(io(path))?;
            Ok(Some((bytes, m.permissions().mode() & 0o7777)))
        }
        Ok(_) => Err(OutputError::SymlinkInside(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(OutputError::Io { path: path.to_path_buf(), source: e }),
    }
}

/// The files a node's previous render recorded as ours.
fn manifest_of(out: &Path, node: &str) -> Result<Vec<PathBuf>, OutputError> {
    let path = out.join(node).join(MANIFEST);
    let Some((bytes, _)) = read_existing(&path)? else {
        return Ok(Vec::new());
    };
    let mut owned = vec![PathBuf::from(MANIFEST)];
    for line in String::from_utf8_lossy(&bytes).lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        owned.push(
            safe_rel(line).ok_or_else(|| OutputError::UnsafePath { path: path.clone(), entry: line.to_string() })?,
        );
    }
    Ok(owned)
}

/// Node directories in `out` that hold a manifest (rendered by us before).
fn rendered_nodes(out: &Path) -> Result<BTreeSet<String>, OutputError> {
    let mut nodes = BTreeSet::new();
    let Ok(entries) = fs::read_dir(out) else {
        return Ok(nodes);
    };
    for e in entries {
        let e = e.map_err(io(out))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && e.path().join(MANIFEST).is_file() && e.file_type().map_err(io(out))?.is_dir() {
            nodes.insert(name);
        }
    }
    Ok(nodes)
}

/// What would change in `out` for one node: its files, and files its previous
/// render wrote that it no longer produces.
pub fn node_changes(out: &Path, node: NodeFiles) -> Result<Vec<Change>, OutputError> {
    let node_rel = safe_rel(&node.node)
        .ok_or_else(|| OutputError::UnsafePath { path: out.to_path_buf(), entry: node.node.clone() })?;
    let mut desired = BTreeSet::new();
    let mut result = Vec::new();
    for f in node.files {
        let rel = safe_rel(&f.path).map(|p| node_rel.join(p)).ok_or_else(|| OutputError::UnsafePath {
            path: out.to_path_buf(),
            entry: format!("{}/{}", node.node, f.path),
        })?;
        no_symlinks(out, &rel)?;
        let old = read_existing(&out.join(&rel))?;
        desired.insert(rel.clone());
        if old.as_ref().is_some_and(|(b, m)| *b == f.bytes && *m == f.mode) {
            continue;
        }
        result.push(Change::Write { path: rel, old, new: f.bytes, mode: f.mode });
    }
    result.extend(removals(out, &node_rel, &desired)?);
    result.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(result)
}

/// Removals for overlays in `out` of nodes not in `keep` (they left the topology).
pub fn orphan_changes(out: &Path, keep: &BTreeSet<String>) -> Result<Vec<Change>, OutputError> {
    let mut result = Vec::new();
    for node in rendered_nodes(out)?.difference(keep) {
        let node_rel =
            safe_rel(node).ok_or_else(|| OutputError::UnsafePath { path: out.to_path_buf(), entry: node.clone() })?;
        result.extend(removals(out, &node_rel, &BTreeSet::new())?);
    }
    Ok(result)
}

fn removals(out: &Path, node_rel: &Path, desired: &BTreeSet<PathBuf>) -> Result<Vec<Change>, OutputError> {
    let mut result = Vec::new();
    let node = node_rel.to_string_lossy();
    for owned in manifest_of(out, &node)? {
        let rel = node_rel.join(owned);
        if desired.contains(&rel) {
            continue;
        }
        no_symlinks(out, &rel)?;
        if let Some((old, _)) = read_existing(&out.join(&rel))? {
            result.push(Change::Remove { path: rel, old });
        }
    }
    Ok(result)
}

/// Changed files written into a staging directory inside `--out`, not yet in
/// place. Holds `--out`'s render lock while it lives.
pub struct Stage {
    dir: PathBuf,
    out: PathBuf,
    next: std::sync::atomic::AtomicUsize,
    /// `--out` did not exist: a render that fails removes it again (if empty).
    created_out: bool,
    committed: bool,
    _lock: fs::File,
}

/// Prefix of the staging directories inside `--out`.
const STAGE_PREFIX: &str = ".flannel-gen-stage-";

/// Takes `--out`'s render lock (an flock on the directory itself, waiting
/// for another render to finish), then removes the staging directories that
/// renders killed mid-way left: with the lock held, no render is using one.
fn lock_out(out: &Path) -> Result<fs::File, OutputError> {
    let lock = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(out)
        .map_err(|source| OutputError::Unwritable { path: out.to_path_buf(), source })?;
    // SAFETY: flock only reads the descriptor, which `lock` keeps open.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        return Err(OutputError::Io { path: out.to_path_buf(), source: std::io::Error::last_os_error() });
    }
    for e in fs::read_dir(out).map_err(io(out))? {
        let e = e.map_err(io(out))?;
        let stale = e.file_name().to_string_lossy().starts_with(STAGE_PREFIX);
        if stale && e.file_type().map_err(io(out))?.is_dir() {
            fs::remove_dir_all(e.path()).map_err(io(&e.path()))?;
        }
    }
    Ok(lock)
}

/// A staged change: content already on disk (for writes), ready to rename.
#[derive(Debug)]
pub struct Staged {
    tmp: Option<PathBuf>,
    pub path: PathBuf,
}

impl Stage {
    pub fn new(out: &Path) -> Result<Stage, OutputError> {
        let created_out = fs::symlink_metadata(out).is_err();
        prepare_out(out, true)?;
        let lock = match lock_out(out) {
            Ok(l) => l,
            Err(e) => {
                if created_out {
                    let _ = fs::remove_dir(out);
                }
                return Err(e);
            }
        };
        let dir = out.join(format!("{STAGE_PREFIX}{}", std::process::id()));
        // Built first, so that its drop undoes a new --out if the mkdir fails.
        let stage = Stage { dir, out: out.to_path_buf(), next: 0.into(), created_out, committed: false, _lock: lock };
        fs::create_dir(&stage.dir).map_err(|source| OutputError::Unwritable { path: out.to_path_buf(), source })?;
        Ok(stage)
    }

    /// Writes a change's new content into the stage; removals need nothing.
    /// (Durable at [`Stage::commit`], by one syncfs for all of them.)
    pub fn add(&self, c: &Change) -> Result<Staged, OutputError> {
        let tmp = match c {
            Change::Write { new, mode, .. } => {
                let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let tmp = self.dir.join(i.to_string());
                let mut f =
                    fs::OpenOptions::new().write(true).create_new(true).mode(*mode).open(&tmp).map_err(io(&tmp))?;
                f.write_all(new).map_err(io(&tmp))?;
                // The umask applied at creation; the promised mode is set explicitly.
                f.set_permissions(fs::Permissions::from_mode(*mode)).map_err(io(&tmp))?;
                Some(tmp)
            }
            Change::Remove { .. } => None,
        };
        Ok(Staged { tmp, path: c.path().to_path_buf() })
    }

    /// Renames every staged file into place and prunes removed ones, all or
    /// nothing: each file replaced or removed is kept in the stage first (a
    /// hard link, or moved there), and a failure puts every one back.
    pub fn commit(mut self, staged: &[Staged]) -> Result<(), OutputError> {
        // From the first rename on, --out holds our files: never remove it.
        self.committed = true;
        // One syncfs for every staged file instead of an fsync each: all new
        // contents are durable before the first rename makes any of them visible.
        let d = fs::File::open(&self.dir).map_err(io(&self.dir))?;
        // SAFETY: syncfs only reads the descriptor, which `d` keeps open.
        if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d)) } != 0 {
            return Err(OutputError::Io { path: self.dir.clone(), source: std::io::Error::last_os_error() });
        }
        let mut done = Vec::new();
        if let Err(e) = self.swap(staged, &mut done) {
            self.undo(done);
            return Err(e);
        }
        for s in staged.iter().filter(|s| s.tmp.is_none()) {
            remove_empty_parents(&self.out, &s.path);
        }
        let dirs: BTreeSet<PathBuf> =
            staged.iter().filter_map(|s| self.out.join(&s.path).parent().map(Path::to_path_buf)).collect();
        for d in dirs.iter().filter(|d| d.is_dir()) {
            fs::File::open(d).and_then(|f| f.sync_all()).map_err(io(d))?;
        }
        Ok(())
    }

    /// Every rename and removal, each recorded in `done` with where the old
    /// file went (None: there was none).
    fn swap(&self, staged: &[Staged], done: &mut Vec<(PathBuf, Option<PathBuf>)>) -> Result<(), OutputError> {
        for (i, s) in staged.iter().enumerate() {
            let target = self.out.join(&s.path);
            let old = self.dir.join(format!("old-{i}"));
            match &s.tmp {
                Some(tmp) => {
                    if let Some(parent) = target.parent() {
                        fs::create_dir_all(parent).map_err(io(parent))?;
                    }
                    no_symlinks(&self.out, &s.path)?;
                    let kept = match fs::hard_link(&target, &old) {
                        Ok(()) => Some(old),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                        Err(e) => return Err(io(&target)(e)),
                    };
                    let renamed = fs::rename(tmp, &target).map_err(io(&target));
                    done.push((target, kept));
                    renamed?;
                }
                None => {
                    fs::rename(&target, &old).map_err(io(&target))?;
                    done.push((target, Some(old)));
                }
            }
        }
        Ok(())
    }

    /// Puts back what [`Stage::swap`] replaced or removed, newest first.
    fn undo(&self, done: Vec<(PathBuf, Option<PathBuf>)>) {
        for (target, old) in done.into_iter().rev() {
            let _ = match old {
                Some(old) => fs::rename(old, &target),
                None => fs::remove_file(&target),
            };
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        if self.created_out && !self.committed {
            // A render that failed into a new --out leaves nothing behind.
            let _ = fs::remove_dir(&self.out);
        }
    }
}

/// Removes directories left empty by pruning, up to and including the node directory.
fn remove_empty_parents(out: &Path, rel: &Path) {
    let mut p = rel.parent();
    while let Some(dir) = p.filter(|d| !d.as_os_str().is_empty()) {
        if fs::remove_dir(out.join(dir)).is_err() {
            break; // not empty: someone else's files live there
        }
        p = dir.parent();
    }
}
