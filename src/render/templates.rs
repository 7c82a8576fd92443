//! The template environment: every artefact template is embedded in the
//! binary; `--templates DIR` replaces any of them by file name.

use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::RenderError;

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

/// (file name, source) of every built-in template.
pub const EMBEDDED: &[(&str, &str)] = embedded![
    "subnet.env.j2",
    "docker_opts.env.j2",
    "daemon.json.j2",
    "flannel.netdev.j2",
    "flannel.network.j2",
    "flannel.link.j2",
    "uplink.conf.j2",
    "connected.conf.j2",
    "link.batch.j2",
    "neigh.batch.j2",
    "fdb.batch.j2",
    "route.batch.j2",
    "flannel.conflist.j2",
    "flannel-gen.service.j2",
    "sysctl.conf.j2",
    "iptables.rules.j2",
    "ip6tables.rules.j2",
    "flannel-gen.nft.j2",
    "flannel-gen-rules.service.j2",
    "flannel-gen-watch.service.j2",
    "flannel0.netdev.j2",
    "flannel0.network.j2",
    "flannel-gen-udp.service.j2",
    "wireguard.netdev.j2",
    "wireguard.network.j2",
    "wireguard.conf.j2",
];

/// Fuel (minijinja's budget: an instruction costs 1, 64 bytes of output
/// cost 1, and no single value may be built larger than 64 bytes times the
/// fuel left) one template may spend on one file. The largest real node, 5000
/// peers with every template overridden, renders on a third of it
/// (tests/templates.rs), while a runaway template stops within about 1 s and
/// 150 MB: the bound on a value's size is what caps memory.
pub const DEFAULT_FUEL: u64 = 1_500_000;
/// A template file larger than this is no template.
pub const MAX_TEMPLATE_BYTES: u64 = 1 << 20;

/// A compiled, reusable template environment.
pub struct Templates {
    env: Environment<'static>,
    /// Names of the templates `--templates DIR` replaced.
    overridden: Vec<String>,
}

impl Templates {
    /// The embedded templates, with any file of the same name in `dir` taking
    /// over; each render of a template may spend `fuel`.
    pub fn load(dir: Option<&Path>, fuel: u64) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_fuel(Some(fuel));
        // Fixed per template when it is added: set before adding any.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_debug(true);
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| RenderError::Template { name: "<syntax>".into(), source: Box::new(e) })?;
        env.set_syntax(syntax);
        // minijinja prints booleans Python-style (True); every consumer here wants Go/JSON's `true`.
        env.add_filter("bool", |v: bool| if v { "true" } else { "false" });

        let mut sources: Vec<(String, String, PathBuf)> = EMBEDDED
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string(), PathBuf::from(format!("templates/{n}"))))
            .collect();
        let mut overridden = Vec::new();
        if let Some(dir) = dir {
            let entries =
                std::fs::read_dir(dir).map_err(|e| RenderError::TemplateDir { dir: dir.to_path_buf(), source: e })?;
            for entry in entries {
                let entry = entry.map_err(|e| RenderError::TemplateDir { dir: dir.to_path_buf(), source: e })?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let Some(slot) = sources.iter_mut().find(|(n, _, _)| *n == name) else {
                    return Err(RenderError::UnknownTemplate {
                        path: entry.path(),
                        known: EMBEDDED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                    });
                };
                slot.1 = read_template(dir, &entry.path())?;
                slot.2 = entry.path();
                overridden.push(name);
            }
        }
        for (name, source, origin) in sources {
            env.add_template_owned(name, source)
                .map_err(|e| RenderError::Template { name: origin.display().to_string(), source: Box::new(e) })?;
        }
        Ok(Templates { env, overridden })
    }

    /// Whether `--templates` replaced any template.
    pub fn overridden(&self) -> bool {
        !self.overridden.is_empty()
    }

    /// Whether `name` is written by [`super::native`]: one of its templates,
    /// and not replaced.
    pub fn is_native(&self, name: &str) -> bool {
        super::native::has(name) && !self.overridden.iter().any(|n| n == name)
    }

    pub fn render(&self, name: &str, ctx: &Value) -> Result<String, RenderError> {
        let wrap = |e: minijinja::Error| match e.kind() {
            minijinja::ErrorKind::OutOfFuel => {
                RenderError::OutOfFuel { name: name.to_string(), fuel: self.env.fuel().unwrap_or_default() }
            }
            _ => RenderError::Template { name: name.to_string(), source: Box::new(e) },
        };
        self.env.get_template(name).map_err(wrap)?.render(ctx).map_err(wrap)
    }
}

/// A template from `--templates DIR`, read as what it must be: a regular
/// file inside DIR (a symlink only to one), no device or FIFO, at most
/// [`MAX_TEMPLATE_BYTES`]. Whoever can write DIR can make flannel-gen write
/// any text into the overlay, but never read a file from elsewhere into it.
fn read_template(dir: &Path, path: &Path) -> Result<String, RenderError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let refuse = |why: String| RenderError::TemplateFile { path: path.to_path_buf(), why };
    let io = |e: std::io::Error| refuse(e.to_string());
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    let target = if meta.file_type().is_symlink() {
        let real = std::fs::canonicalize(path).map_err(io)?;
        let inside = std::fs::canonicalize(dir).map_err(io)?;
        if !real.starts_with(&inside) {
            return Err(refuse(format!("a symlink to {}, outside the templates directory", real.display())));
        }
        real
    } else {
        path.to_path_buf()
    };
    // O_NOFOLLOW: the file checked is the file read, even if the link is swapped now.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&target)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    if meta.len() > MAX_TEMPLATE_BYTES {
        return Err(refuse(format!("{} bytes; a template may have at most {MAX_TEMPLATE_BYTES}", meta.len())));
    }
    let mut text = String::new();
    file.take(MAX_TEMPLATE_BYTES + 1).read_to_string(&mut text).map_err(io)?;
    if text.len() as u64 > MAX_TEMPLATE_BYTES {
        return Err(refuse(format!("more than {MAX_TEMPLATE_BYTES} bytes")));
    }
    Ok(text)
}
