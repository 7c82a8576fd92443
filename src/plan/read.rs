//! The one validating reader of plan.json: every consumer (`apply --plan`,
//! `diff` of plan files, the fuzz target) gets its [`NodePlan`] here. Type
//! errors and broken invariants are located diagnostics naming the JSON path
//! of the offending value, reported before anything touches the kernel.

use std::path::Path;

use serde::Deserialize;

use super::{FORMAT_VERSION, NodePlan, PlanData};
use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::json_path::locate;

/// Reads and checks a plan.json (`-` for standard input).
pub fn read_plan(path: &Path) -> Result<NodePlan, Diagnostics> {
    let text = crate::input::read_text(path)?;
    parse_plan(&crate::input::display_name(path), &text)
}

/// Parses and checks plan JSON; `file` names it in diagnostics.
pub fn parse_plan(file: &Path, text: &str) -> Result<NodePlan, Diagnostics> {
    let data = deserialize(file, text)?;
    NodePlan::new(data).map_err(|problems| {
        Diagnostics(
            problems
                .into_iter()
                .map(|p| Diagnostic::new(file, locate(text, &p.path).unwrap_or(Pos::FILE), p.path, p.message))
                .collect(),
        )
    })
}

#[derive(Deserialize)]
struct VersionOnly {
    #[serde(rename = "formatVersion")]
    format_version: Option<serde_json::Value>,
}

fn deserialize(file: &Path, text: &str) -> Result<PlanData, Diagnostics> {
    // Path tracking is only for the error: a plan that parses pays nothing for it.
    let mut de = serde_json::Deserializer::from_str(text);
    let inner = match PlanData::deserialize(&mut de) {
        Ok(d) => {
            return de.end().map(|()| d).map_err(|e| {
                let pos = Pos::new(e.line() as u64, e.column() as u64);
                Diagnostics::one(file, pos, "", "not a flannel-gen plan: trailing characters after the JSON object")
            });
        }
        Err(e) => e,
    };
    // An older or newer plan fails on its first unknown key; say why instead.
    if let Ok(VersionOnly { format_version: Some(v) }) = serde_json::from_str::<VersionOnly>(text)
        && v != serde_json::json!(FORMAT_VERSION)
    {
        let pos = locate(text, "formatVersion").unwrap_or(Pos::FILE);
        return Err(Diagnostics::one(
            file,
            pos,
            "formatVersion",
            format!("formatVersion {v} is not {FORMAT_VERSION}; render the plan again with this flannel-gen"),
        ));
    }
    let tracked = serde_path_to_error::deserialize::<_, PlanData>(&mut serde_json::Deserializer::from_str(text));
    let path = tracked.err().map(|e| e.path().to_string()).unwrap_or_default();
    let pos = Pos::new(inner.line() as u64, inner.column() as u64);
    let msg = inner.to_string();
    let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_string();
    let field = if path == "." { String::new() } else { path };
    Err(Diagnostics::one(file, pos, field, format!("not a flannel-gen plan: {msg}")))
}
