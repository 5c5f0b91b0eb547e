//! `kovenant agent`: Tetragon JSON events -> attributed, windowed InfluxDB line protocol.
mod aggregate;
mod attribute;
pub mod cluster;
mod driver;
mod event;
pub mod index;
#[cfg(test)]
mod index_tests;
mod line_protocol;
mod lines;
mod live;
mod objects;
mod owners;
mod pipeline;
#[cfg(test)]
mod props;
mod scalars;
mod scan;
mod scan_cache;
mod scan_event;
pub mod source;
mod tags;
mod time;

use std::io::{self, BufWriter};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::backend;
use crate::cli::{AgentArgs, GlobalArgs};
use crate::error::{Error, Result};
use crate::ui::Printer;

use self::cluster::ClusterObjects;
use self::driver::Driver;
use self::index::Index;
use self::pipeline::Agent;
use self::source::Source;

pub use self::pipeline::{Agent as Pipeline, Limits};

/// How long the agent's first request may take before it says the API server is not there.
const REACH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const REACH_HINT: &str = "check the address and that the API server is up (kubectl cluster-info); \
                          offline, pass --cluster-snapshot FILE";

/// A client loaded as every other command loads it (`--kubeconfig`, `--context`, else
/// `$KUBECONFIG` or `~/.kube/config` and its current context), with kube's own timeouts, which
/// suit long watches and log streams. With neither flag and no kubeconfig, the pod's service
/// account (the agent runs in the cluster).
async fn client(global: &GlobalArgs) -> Result<kube::Client> {
    let step = "agent: connect to the cluster";
    let explicit = global.kubeconfig.is_some() || global.context.is_some();
    let config =
        match backend::kube::load(global.kubeconfig.as_deref(), global.context.as_deref()).await {
            Ok(loaded) => loaded.config,
            Err(e) if !explicit => kube::Config::incluster().map_err(|in_cluster| {
                Error::step(
                    step,
                    format!(
                        "{e}; and not in a cluster: {}",
                        backend::kube::chain(&in_cluster)
                    ),
                )
                .with_hint(
                    "run in the cluster (service account), or pass --kubeconfig PATH / --context \
                 NAME; offline, pass --cluster-snapshot",
                )
            })?,
            Err(e) => {
                let hint = backend::kube::load_hint(&e);
                return Err(Error::step(step, e).with_hint(hint));
            }
        };
    let url = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let client = backend::kube::client(config)
        .map_err(|e| Error::step(step, backend::kube::describe(&e)))?;
    // One request first, with a short limit: an API server that is not there is one clear error
    // now, not a minute of silent watch retries ending in "not listed".
    match tokio::time::timeout(REACH_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(
            Error::step(step, format!("{url}: {}", backend::kube::describe(&e)))
                .with_hint(REACH_HINT),
        ),
        Err(_) => Err(Error::step(
            step,
            format!("{url}: no answer within {}s", REACH_TIMEOUT.as_secs()),
        )
        .with_hint(REACH_HINT)),
    }
}

/// Whether `fd` is a pipe (or a socket): what a parent that feeds or reads us gives, never a
/// terminal, a file or /dev/null.
fn is_pipe(fd: BorrowedFd<'_>) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fd.try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_socket())
}

fn stdin_is_pipe() -> bool {
    is_pipe(io::stdin().as_fd())
}

/// telegraf's execd reads the agent's stdout and stderr while it waits for the agent to exit, and
/// closes both pipes as soon as the agent has exited (Go's exec.Cmd.Wait): what the agent wrote
/// last and telegraf had not read yet would be lost, and telegraf logs "read |0: file already
/// closed" as an error. So, when stdout is a pipe, the agent waits (at most 2 s) until its reader
/// has taken everything from it, then ends both streams (replaced by /dev/null) and gives the
/// readers a moment to see their end before it exits.
fn hand_over_output() {
    use std::io::Write;
    let stdout = io::stdout();
    let _ = stdout.lock().flush();
    if !is_pipe(stdout.as_fd()) {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while rustix::io::ioctl_fionread(stdout.as_fd()).is_ok_and(|unread| unread > 0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = io::stderr().flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// telegraf's execd input stops its child by closing the child's stdin, and sends SIGTERM only
/// 5 s later: with a source other than stdin, the end of a piped stdin stops the agent as
/// SIGTERM does (the open window is flushed), so telegraf stops at once.
fn stop_at_end_of_stdin(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        // telegraf sends nothing with signal = "none"; whatever comes is not ours to read.
        let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

pub fn run(global: &GlobalArgs, args: &AgentArgs, printer: &Printer) -> Result<()> {
    let source = Source::parse(&args.source)?;
    if !matches!(source, Source::File(_)) {
        for (set, flag) in [
            (args.from_start, "--from-start"),
            (args.no_follow, "--no-follow"),
        ] {
            if set {
                return Err(Error::usage(
                    format!(
                        "{flag} applies to --source file:PATH only, not to --source {}",
                        args.source
                    ),
                    Some(format!(
                        "drop {flag}, or read a file with --source file:PATH"
                    )),
                ));
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Error::step("agent", format!("cannot handle signals: {e}")))?;
    }
    if source != Source::Stdin && stdin_is_pipe() {
        stop_at_end_of_stdin(Arc::clone(&stop));
    }
    // Only live knowledge or the kube-logs source need a runtime and a client.
    let needs_api = args.cluster_snapshot.is_none() || source == Source::KubeLogs;
    let runtime = if needs_api {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Error::step("agent", format!("cannot start the runtime: {e}")))?;
        // With no cluster to learn from (none configured, not in one) and no snapshot, events
        // are still attributed from their own pod fields: offline analysis of an export file.
        let explicit = global.kubeconfig.is_some() || global.context.is_some();
        match rt.block_on(client(global)) {
            Ok(client) => Some((rt, client)),
            Err(e) if !explicit && source != Source::KubeLogs => {
                printer.warn(format!(
                    "{e}; attributing from the events' own pod fields (namespace, pod, \
                     workload): peers are not resolved to pods, services or nodes. Pass \
                     --cluster-snapshot FILE or --kubeconfig PATH for full attribution"
                ));
                None
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let (index, updates) = match (&args.cluster_snapshot, &runtime) {
        (Some(path), _) => {
            let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
            let objects = ClusterObjects::from_list_reader(io::BufReader::new(file))
                .map_err(|e| Error::step("agent", format!("{}: {e}", path.display())))?;
            (Index::build(objects), None)
        }
        (None, Some((rt, client))) => {
            printer.debug("agent: listing the cluster's objects");
            let (first, rx) = rt
                .block_on(live::start(client.clone()))
                .map_err(|e| Error::step("agent: watch the cluster", e))?;
            (first, Some(rx))
        }
        (None, None) => (Index::default(), None),
    };
    let window_ns = i64::try_from(args.window.as_nanos())
        .unwrap_or(i64::MAX)
        .max(1_000_000);
    let node = args.node_name.as_deref().unwrap_or("");
    let limits = Limits {
        max_keys: args.max_keys,
        top_peers: args.top_peers,
    };
    let agent = Agent::new(index, window_ns, limits, node);
    let out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut d = Driver::new(agent, out, stop, updates, args.window);
    let result = match &source {
        Source::Stdin => {
            // A regular file on stdin (`agent < tetragon.log`) is replayed through a map
            // where it can be; the rest (or all of it) is read.
            let mapped = match io::stdin().as_fd().try_clone_to_owned() {
                Ok(fd) => source::mapped::feed(&mut std::fs::File::from(fd), &mut d),
                Err(_) => Ok(false),
            };
            mapped.and_then(|_| source::stdin::run(io::stdin(), &mut d))
        }
        Source::File(path) => {
            let follow = source::file::Follow {
                // Stopping at the end of a file read from its end would read nothing.
                from_start: args.from_start || args.no_follow,
                stop_at_end: args.no_follow,
            };
            source::file::run(path, follow, &mut d)
        }
        Source::KubeLogs => match &runtime {
            Some((rt, client)) => {
                let target = source::kube::Target {
                    namespace: args.tetragon_namespace.clone(),
                    selector: args.tetragon_selector.clone(),
                    container: args.tetragon_container.clone(),
                    node: args.tetragon_node.clone().filter(|n| !n.is_empty()),
                };
                let (tx, mut rx) = tokio::sync::mpsc::channel(64);
                rt.spawn(source::kube::run(client.clone(), target, tx));
                let mut next = |t| {
                    Ok(
                        match rt.block_on(async { tokio::time::timeout(t, rx.recv()).await }) {
                            Ok(Some(buf)) => source::stdin::Next::Data(buf),
                            Ok(None) => source::stdin::Next::End,
                            Err(_) => source::stdin::Next::Idle,
                        },
                    )
                };
                source::stdin::drive(&mut next, &mut drop, &mut d)
            }
            None => Err(io::Error::other("kube-logs needs the Kubernetes API")),
        },
    };
    let finished = result.and_then(|()| d.finish());
    let totals = d.agent.totals();
    printer.debug(format!(
        "agent: {} lines, {} events, {} bad, {} ignored",
        totals.lines, totals.events, totals.bad_lines, totals.ignored
    ));
    if let Some((rt, _)) = runtime {
        rt.shutdown_background();
    }
    drop(d);
    match finished {
        Ok(()) => {
            hand_over_output();
            Ok(())
        }
        // The reader of our output went away (telegraf stopping): nothing left to tell.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::step("agent", format!("{}: {e}", args.source))),
    }
}
