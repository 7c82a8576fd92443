//! `--templates DIR` and `--template-fuel N`: the arguments of every command
//! that renders (render, diff, units).

use std::path::PathBuf;

use crate::render::{DEFAULT_FUEL, Templates};

#[derive(clap::Args, Debug, Clone)]
pub struct TemplateArgs {
    /// Directory of templates overriding the built-in ones by file name
    /// (regular files inside DIR only, each at most 1 MiB).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// What one template may spend on one file (minijinja fuel: about one
    /// unit per instruction and per 64 bytes it builds); the default renders
    /// a 5000-peer node with room to spare.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_FUEL, value_parser = clap::value_parser!(u64).range(1..))]
    pub template_fuel: u64,
}

impl TemplateArgs {
    pub fn load(&self) -> Result<Templates, crate::render::RenderError> {
        Templates::load(self.templates.as_deref(), self.template_fuel)
    }
}
