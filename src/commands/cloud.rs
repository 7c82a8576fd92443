//! `flannel-gen cloud render|apply`: the cluster side of the aws-vpc and gce
//! backends (the routes in the cloud), beside the per-node files `render` writes.

use std::path::PathBuf;

use super::{compile_warned, out};
use crate::cloud::{self, CloudPlan};
use crate::error::{Error, exit};

/// The routes in the cloud for an aws-vpc or gce cluster: one per node
/// subnet, to the node's instance.
///
/// Examples:
///   flannel-gen cloud render examples/aws-vpc-3node.yaml --out infra/flannel
///   flannel-gen cloud apply examples/aws-vpc-3node.yaml --dry-run
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    pub command: CloudCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum CloudCommand {
    Render(RenderArgs),
    #[cfg(feature = "cloud")]
    Apply(ApplyArgs),
}

/// Write the routes as Terraform JSON (flannel-routes.tf.json) and as a
/// script of cloud CLI calls (aws-vpc-routes.sh or gce-routes.sh) into DIR.
#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// The topology (aws-vpc or gce backend).
    pub topology: PathBuf,
    /// Where the two files go (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Fail (exit 2) when a lock file is missing or stale.
    #[arg(long)]
    pub locked: bool,
}

/// Reconcile the VPC route table(s) through the EC2 API (aws-vpc): create or
/// replace each node's route, delete routes inside the pod network that no
/// node has, turn each node's source/dest check off. Other routes are never
/// touched. Credentials and region come from the AWS SDK's standard chain.
///
/// Exit codes: 0 converged (or changed), 1 changes pending (--dry-run), 2 bad
/// input, 3 the API refused or could not be reached (what was done is said).
#[cfg(feature = "cloud")]
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ApplyArgs {
    /// The topology (aws-vpc backend).
    pub topology: PathBuf,
    /// The EC2 endpoint (a local EC2 such as moto's server); default: AWS's.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The AWS region; default: the SDK's chain (AWS_REGION, the profile).
    #[arg(long, value_name = "R")]
    pub region: Option<String>,
    /// Say what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Text for people, or JSON (`routeTables`, `changes`, `done`, `error`).
    #[arg(long, value_enum, default_value_t = super::Format::Text)]
    pub format: super::Format,
    /// Fail (exit 2) when a lock file is missing or stale.
    #[arg(long)]
    pub locked: bool,
}

pub fn run(a: Args) -> Result<u8, Error> {
    match a.command {
        CloudCommand::Render(r) => render(r),
        #[cfg(feature = "cloud")]
        CloudCommand::Apply(a) => apply(a),
    }
}

fn plan_of(topology: &std::path::Path, locked: bool) -> Result<CloudPlan, Error> {
    let c = compile_warned(topology, locked)?;
    cloud::plan(&c.cluster, &c.leases).map_err(|e| Error::Usage(format!("{}: {e}", topology.display())))
}

fn render(a: RenderArgs) -> Result<u8, Error> {
    let plan = plan_of(&a.topology, a.locked)?;
    let (script_name, script) = cloud::script::render(&plan);
    let files = [("flannel-routes.tf.json", cloud::terraform::render(&plan), 0o644), (script_name, script, 0o755)];
    std::fs::create_dir_all(&a.out).map_err(Error::io(&a.out))?;
    for (name, text, mode) in &files {
        let path = a.out.join(name);
        crate::fsutil::write_atomic(&path, text.as_bytes(), *mode).map_err(Error::io(&path))?;
    }
    let names: Vec<&str> = files.iter().map(|f| f.0).collect();
    out(&format!("{}: wrote {}\n", a.out.display(), names.join(", ")))?;
    Ok(exit::OK)
}

#[cfg(feature = "cloud")]
fn apply(a: ApplyArgs) -> Result<u8, Error> {
    let CloudPlan::Aws(plan) = plan_of(&a.topology, a.locked)? else {
        return Err(Error::Usage(format!(
            "{}: `cloud apply` reconciles aws-vpc route tables; for gce use `cloud render` (gce-routes.sh or Terraform)",
            a.topology.display()
        )));
    };
    let opts = cloud::aws::Options { endpoint: a.endpoint, region: a.region, dry_run: a.dry_run };
    let outcome = cloud::aws::reconcile(&plan, &opts).map_err(Error::Usage)?;
    let text = match a.format {
        super::Format::Text => outcome.to_text(),
        super::Format::Json => outcome.to_json(),
    };
    out(&text)?;
    Ok(outcome.exit_code(a.dry_run))
}
