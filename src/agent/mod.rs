//! `kovenant agent`: Tetragon JSON events -> attributed, windowed InfluxDB line protocol.
mod aggregate;
mod attribute;
pub mod cluster;
mod driver;
mod event;
pub mod index;
mod line_protocol;
mod lines;
mod owners;
mod pipeline;
#[cfg(test)]
mod props;
mod scalars;
pub mod source;
mod tags;
mod time;

use std::io::{self, BufWriter};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::cli::AgentArgs;
use crate::error::{Error, Result};
use crate::ui::Printer;

use self::cluster::ClusterObjects;
use self::driver::Driver;
use self::index::Index;
use self::pipeline::Agent;
use self::source::Source;

pub use self::pipeline::Agent as Pipeline;

pub fn run(args: &AgentArgs, printer: &Printer) -> Result<()> {
    let source = Source::parse(&args.source)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Error::step("agent", format!("cannot handle signals: {e}")))?;
    }
    let index = match &args.cluster_snapshot {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
            let objects = ClusterObjects::from_list_reader(io::BufReader::new(file))
                .map_err(|e| Error::step("agent", format!("{}: {e}", path.display())))?;
            Index::build(&objects)
        }
        None => {
            return Err(Error::usage(
                "watching the cluster is not available in this build",
                Some("pass --cluster-snapshot FILE".to_string()),
            ));
        }
    };
    let window_ns = i64::try_from(args.window.as_nanos())
        .unwrap_or(i64::MAX)
        .max(1_000_000);
    let node = args.node_name.as_deref().unwrap_or("");
    let agent = Agent::new(Arc::new(index), window_ns, args.max_keys, node);
    let out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut d = Driver::new(agent, out, stop, None, args.window);
    let result = match &source {
        Source::Stdin => source::stdin::run(io::stdin(), &mut d),
        Source::File(path) => {
            let follow = source::file::Follow {
                from_start: args.from_start,
                stop_at_end: args.no_follow,
            };
            source::file::run(path, follow, &mut d)
        }
        Source::KubeLogs => {
            return Err(Error::usage(
                "--source kube-logs is not available in this build",
                None,
            ));
        }
    };
    let finished = result.and_then(|()| d.finish());
    let totals = d.agent.totals();
    printer.debug(format!(
        "agent: {} lines, {} events, {} bad, {} ignored",
        totals.lines, totals.events, totals.bad_lines, totals.ignored
    ));
    match finished {
        Ok(()) => Ok(()),
        // The reader of our output went away (telegraf stopping): nothing left to tell.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::step("agent", format!("{}: {e}", args.source))),
    }
}
