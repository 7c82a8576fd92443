//! Command line: the subcommands (each in [`crate::commands`]), dispatch,
//! and turning errors into reports and exit codes.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands;
use crate::commands::report::{self, Sink};
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
    /// How errors and warnings are reported on stderr: text for people, json
    /// (one array of {file, line, column, field, severity, message}) or
    /// github (Actions annotations) for CI. Exit codes are the same in every form.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value = "text",
        env = "FLANNEL_GEN_DIAGNOSTICS"
    )]
    diagnostics: report::DiagFormat,
}

#[derive(Subcommand, Debug)]
enum Command {
    Validate(commands::validate::Args),
    Lock(commands::lock::Args),
    Plan(commands::plan::Args),
    Render(commands::render::Args),
    Diff(commands::diff::Args),
    Graph(commands::graph::Args),
    Cloud(commands::cloud::Args),
    Apply(commands::apply::Args),
    Teardown(commands::teardown::Args),
    Confirm(commands::confirm::Args),
    Rollback(commands::rollback::Args),
    Doctor(commands::doctor::Args),
    Generate(commands::generate::Args),
    Import(commands::import::Args),
    ImportNetconf(commands::import_netconf::Args),
    Publish(commands::publish::Args),
    #[cfg(feature = "udp")]
    Udp(commands::udp::Args),
    Wireguard(commands::wireguard::Args),
    Completions(commands::completions::Args),
    Units(commands::units::Args),
    Man(commands::man::Args),
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
    // `validate --format` makes the report the command's output, on stdout.
    match &cli.command {
        Command::Validate(v) if v.format != report::DiagFormat::Text => report::configure(v.format, Sink::Stdout),
        _ => report::configure(cli.diagnostics, Sink::Stderr),
    }
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            commands::report(&e);
            e.exit_code()
        }
    };
    report::finish();
    ExitCode::from(code)
}

pub fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Validate(a) => commands::validate::run(a),
        Command::Lock(a) => commands::lock::run(a),
        Command::Plan(a) => commands::plan::run(a),
        Command::Render(a) => commands::render::run(a),
        Command::Diff(a) => commands::diff::run(a),
        Command::Graph(a) => commands::graph::run(a),
        Command::Cloud(a) => commands::cloud::run(a),
        Command::Apply(a) => commands::apply::run(a),
        Command::Teardown(a) => commands::teardown::run(a),
        Command::Confirm(a) => commands::confirm::run(a),
        Command::Rollback(a) => commands::rollback::run(a),
        Command::Doctor(a) => commands::doctor::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Import(a) => commands::import::run(a),
        Command::ImportNetconf(a) => commands::import_netconf::run(a),
        Command::Publish(a) => commands::publish::run(a),
        #[cfg(feature = "udp")]
        Command::Udp(a) => commands::udp::run(a),
        Command::Wireguard(a) => commands::wireguard::run(a),
        Command::Completions(a) => commands::completions::run(a, Cli::command()),
        Command::Units(a) => commands::units::run(a),
        Command::Man(a) => commands::man::run(a, Cli::command()),
    }
}
