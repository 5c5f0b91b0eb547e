//! The runtime: parse the command line, dispatch to one function per command, render errors once.
// No unsafe code but the agent's memory map of a replayed file, under a lease
// (src/agent/source/mapped.rs, the one `allow`), and the prctl that makes a helm child die with
// kovenant (src/backend/helm/children.rs, `die_with_parent`).
#![deny(unsafe_code)]

pub mod agent;
pub mod apply;
pub mod assets;
pub mod backend;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod plan;
pub mod render;
pub mod status;
pub mod top;
pub mod ui;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::{Error, exit};
use crate::ui::Printer;

/// Runs kovenant with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    // kube's TLS goes through rustls; pick its provider once, before any client exists, so no
    // code path depends on which back ends the dependency graph happens to link.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let printer = Printer::new(&cli.global);
    match run(cli, &printer) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(err) => {
            if !matches!(err, Error::Unhealthy) {
                printer.error(&err);
            }
            ExitCode::from(err.exit_code())
        }
    }
}

/// Refuses global flags that mean nothing to `command` (clap's global flags reach every
/// subcommand; taking one silently would let a user believe it did something).
fn refuse_globals(
    global: &cli::GlobalArgs,
    command: &str,
    meaningless: &[&str],
) -> error::Result<()> {
    let given = [
        ("--kubeconfig", global.kubeconfig.is_some()),
        ("--context", global.context.is_some()),
        ("--namespace", global.namespace.is_some()),
        ("--assets", global.assets.is_some()),
    ];
    for (flag, set) in given {
        if set && meaningless.contains(&flag) {
            return Err(Error::usage(
                format!("{flag} means nothing to `kovenant {command}`"),
                Some(format!("drop {flag}")),
            ));
        }
    }
    Ok(())
}

fn run(cli: Cli, printer: &Printer) -> error::Result<()> {
    let global = cli.global;
    match &cli.command {
        Command::Completions(_) => refuse_globals(
            &global,
            "completions",
            &["--kubeconfig", "--context", "--namespace", "--assets"],
        )?,
        Command::Agent(_) => refuse_globals(&global, "agent", &["--namespace", "--assets"])?,
        _ => {}
    }
    match cli.command {
        Command::Render(args) => render::run(&global, &args, printer),
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "kovenant", &mut std::io::stdout());
            Ok(())
        }
        Command::Agent(args) => agent::run(&global, &args, printer),
        Command::Install(args) => apply::install(&global, &args, printer),
        Command::Uninstall(args) => apply::uninstall(&global, &args, printer),
        Command::Status(args) => status::run(&global, &args, printer),
        Command::Image(args) => backend::docker::run_image_command(&global, &args, printer),
        Command::Dashboard(args) => dashboard::run(&global, &args, printer),
        Command::Top(args) => top::run(&global, &args, printer),
    }
}
