//! What apply and teardown share: which plan, on which namespace, whether
//! only to show the changes, and how to print them.

use super::Format;
use super::source::PlanSource;
use super::target::TargetArgs;
use crate::apply::Op;
use crate::error::{Error, exit};

#[derive(clap::Args, Debug)]
pub struct NodeChangeArgs {
    #[command(flatten)]
    pub source: PlanSource,
    /// Print the changes without making them; exit 1 when any are pending.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    /// How to print the changes.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl NodeChangeArgs {
    /// Prints the changes made (or, dry, pending) on `node`: exit 1 when
    /// a dry run found any, else 0.
    pub fn report(&self, node: &str, changes: &[Op]) -> Result<u8, Error> {
        super::out(&report_text(node, changes, self.dry_run, self.format))?;
        Ok(if self.dry_run && !changes.is_empty() { exit::CHANGES } else { exit::OK })
    }
}

/// One line per change and a count, or the same as JSON.
pub fn report_text(node: &str, changes: &[Op], dry_run: bool, format: Format) -> String {
    let n = changes.len();
    match format {
        Format::Json => {
            let list: Vec<serde_json::Value> = changes
                .iter()
                .map(|c| serde_json::json!({"op": c.sign().to_string(), "kind": c.kind(), "object": c.object()}))
                .collect();
            format!("{}\n", serde_json::json!({"node": node, "dryRun": dry_run, "count": n, "changes": list}))
        }
        Format::Text => {
            let mut s: String = changes.iter().map(|c| format!("{c}\n")).collect();
            let count = crate::words::plural(n, "change");
            if dry_run && n > 0 {
                s.push_str(&format!("{count} pending (dry run; nothing was changed)\n"));
            } else {
                s.push_str(&format!("{count}\n"));
            }
            s
        }
    }
}
