//! Command line: the subcommands (each in [`crate::commands`]), dispatch,
//! and turning errors into reports and exit codes.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands;
use crate::error::{Error, exit};

#[derive(Parser, Debug)]
#[command(
    name = "flannel-gen",
    version,
    about = "Compile a flannel cluster topology into per-node network plans, files and kernel state",
    long_about = "flannel-gen compiles a cluster topology (YAML, kept in git) into a plan per node: \
the VXLAN device, routes, neighbours and FDB entries flanneld would have made. \
Exit codes: 0 success or no change, 1 changes or drift found, 2 bad input or usage, 3 failure against the system."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Validate(commands::validate::Args),
    Lock(commands::lock::Args),
    Plan(commands::plan::Args),
    Render(commands::render::Args),
    Diff(commands::diff::Args),
    Apply(commands::apply::Args),
    Teardown(commands::teardown::Args),
    Confirm(commands::confirm::Args),
    Rollback(commands::rollback::Args),
    Generate(commands::generate::Args),
    Import(commands::import::Args),
    ImportNetconf(commands::import_netconf::Args),
    Publish(commands::publish::Args),
    Udp(commands::udp::Args),
    Completions(commands::completions::Args),
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::BAD_INPUT } else { exit::OK });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            commands::report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

pub fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Validate(a) => commands::validate::run(a),
        Command::Lock(a) => commands::lock::run(a),
        Command::Plan(a) => commands::plan::run(a),
        Command::Render(a) => commands::render::run(a),
        Command::Diff(a) => commands::diff::run(a),
        Command::Apply(a) => commands::apply::run(a),
        Command::Teardown(a) => commands::teardown::run(a),
        Command::Confirm(a) => commands::confirm::run(a),
        Command::Rollback(a) => commands::rollback::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Import(a) => commands::import::run(a),
        Command::ImportNetconf(a) => commands::import_netconf::run(a),
        Command::Publish(a) => commands::publish::run(a),
        Command::Udp(a) => commands::udp::run(a),
        Command::Completions(a) => commands::completions::run(a, Cli::command()),
    }
}
