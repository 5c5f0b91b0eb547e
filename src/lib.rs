//! The runtime: parse the command line, dispatch to one function per command, render errors once.
// No unsafe code but the agent's memory map of a replayed file, under a lease
// (src/agent/source/mapped.rs, the one `allow`), and the prctl that makes a helm child die with
// kovenant (src/backend/helm/children.rs, `die_with_parent`), and the three plain-data key and
// value types of the agent's BPF maps and the `malloc_trim` after their program is loaded
// (src/agent/kernel/closes.rs).
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

use crate::cli::{Cli, Command};
use crate::error::{Error, exit};
use crate::ui::Printer;

/// Runs kovenant with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    // kube's TLS goes through rustls; pick its provider once, before any client exists, so no
    // code path depends on which back ends the dependency graph happens to link.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match command().try_get_matches() {
        Ok(matches) => {
            <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
        }
        Err(e) => e.exit(),
    };
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

/// The global flags that mean nothing to a command, by the id clap gives them: refused when
/// given, and left out of that command's `--help` and completions.
const MEANINGLESS: &[(&str, &[&str])] = &[
    (
        "completions",
        &["kubeconfig", "context", "namespace", "assets"],
    ),
    ("agent", &["namespace", "assets"]),
];

/// The command line, with each command's meaningless global flags hidden from its help.
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // A subcommand that defines an argument of a global's id keeps its own copy when clap
    // propagates the globals: a hidden copy parses the same and stays out of help.
    let globals: Vec<clap::Arg> = cmd.get_arguments().cloned().collect();
    for (name, ids) in MEANINGLESS {
        cmd = cmd.mut_subcommand(*name, |sub| {
            globals
                .iter()
                .filter(|a| ids.contains(&a.get_id().as_str()))
                .fold(sub, |sub, a| sub.arg(a.clone().hide(true)))
        });
    }
    cmd
}

/// Refuses global flags that mean nothing to `command` (clap's global flags reach every
/// subcommand; taking one silently would let a user believe it did something).
fn refuse_globals(global: &cli::GlobalArgs, command: &str) -> error::Result<()> {
    let meaningless = MEANINGLESS
        .iter()
        .find(|(name, _)| *name == command)
        .map_or(&[][..], |(_, ids)| *ids);
    let given = [
        ("kubeconfig", global.kubeconfig.is_some()),
        ("context", global.context.is_some()),
        ("namespace", global.namespace.is_some()),
        ("assets", global.assets.is_some()),
    ];
    for (id, set) in given {
        let flag = format!("--{id}");
        if set && meaningless.contains(&id) {
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
        Command::Completions(_) => refuse_globals(&global, "completions")?,
        Command::Agent(_) => refuse_globals(&global, "agent")?,
        _ => {}
    }
    match cli.command {
        Command::Render(args) => render::run(&global, &args, printer),
        Command::Completions(args) => {
            let mut cmd = command();
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
