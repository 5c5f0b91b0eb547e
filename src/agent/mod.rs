//! `kovenant agent`: the kernel's own socket and process counters (and Tetragon's events for
//! who owns the host network namespace's sockets) -> attributed, windowed InfluxDB line
//! protocol.
/// Windows, keys and line protocol: public so the series-budget test (tests/it/series_budget.rs)
/// can drive a cluster's day of windows through it.
pub mod aggregate;
mod attribution;
pub mod cluster;
mod kernel;
pub use kernel::ClosesFrom;
mod output;
mod pipeline;
mod tetragon;

pub use self::cluster::index;

use std::io::{self, BufWriter};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::backend;
use crate::cli::{AgentArgs, GlobalArgs};
use crate::error::{Error, Result};
use crate::ui::Printer;

use self::attribution::socket_owners;
use self::cluster::ClusterObjects;
use self::cluster::watch as live;
use self::index::Index;
use self::pipeline::Agent;
use self::tetragon::driver::Driver;
use self::tetragon::source::{self, Source};

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
    let source_text = args
        .source
        .clone()
        .unwrap_or_else(|| if args.no_kernel { "stdin" } else { "none" }.to_string());
    let source = Source::parse(&source_text)?;
    if source == Source::None && args.no_kernel {
        return Err(Error::usage(
            "--no-kernel with --source none leaves nothing to read",
            Some("replay Tetragon's events with --source stdin or file:PATH".to_string()),
        ));
    }
    // Missing rights stop the agent at once, before it reads anything half-blind.
    if !args.no_kernel {
        kernel::check_rights(&args.proc_root)
            .and_then(|()| kernel::check_host_pid(&args.proc_root))
            .map_err(|e| {
                Error::step("agent", e).with_hint(
                    "run it as root in the node's PID namespace, or with the hostPID and the \
                     capabilities the kovenant DaemonSet grants (docs/security.md); to replay \
                     Tetragon's events alone, pass --no-kernel",
                )
            })?;
    }
    if !matches!(source, Source::File(_)) {
        for (set, flag) in [
            (args.from_start, "--from-start"),
            (args.no_follow, "--no-follow"),
        ] {
            if set {
                return Err(Error::usage(
                    format!(
                        "{flag} applies to --source file:PATH only, not to --source {}",
                        source_text
                    ),
                    Some(format!(
                        "drop {flag}, or read a file with --source file:PATH"
                    )),
                ));
            }
        }
    }
    // The kernel's readers first: loading the closes program parses the kernel's BTF (tens of
    // MB, freed at once), before the cluster's objects take their memory.
    let kernel = if args.no_kernel {
        None
    } else {
        let cfg = kernel::Config {
            proc_root: args.proc_root.clone(),
            destroy_rcvbuf: args.destroy_rcvbuf,
            closes: args.socket_closes,
        };
        Some(kernel::Kernel::open(cfg).map_err(|e| Error::step("agent", e.to_string()))?)
    };
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
        pod_activity: args.pod_activity,
    };
    if let Some(kernel) = kernel {
        let live = LiveRun {
            index,
            updates,
            window: args.window,
            window_ns,
            limits,
            node,
            stop,
        };
        let result = run_live(live, kernel, &source, &runtime, args, printer);
        if let Some((rt, _)) = runtime {
            rt.shutdown_background();
        }
        return match result {
            Ok(()) => {
                hand_over_output();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(Error::step("agent", e.to_string())),
        };
    }
    let agent = Agent::new(index, window_ns, limits, node);
    let out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut d = Driver::new(agent, out, stop, updates, args.window);
    let result = match &source {
        Source::None => Ok(()),
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
        Err(e) => Err(Error::step("agent", format!("{source_text}: {e}"))),
    }
}

/// What a live run needs besides the kernel.
struct LiveRun<'a> {
    index: Index,
    updates: Option<std::sync::mpsc::Receiver<index::Delta>>,
    window: Duration,
    window_ns: i64,
    limits: Limits,
    node: &'a str,
    stop: Arc<AtomicBool>,
}

/// The live agent: a kernel pass at the end of every wall-clock window, counted into that
/// window and written; Tetragon's events (if any) read on a thread of their own for the
/// socket owners they name. SIGTERM or SIGINT: a last pass and window, then the end.
fn run_live(
    live: LiveRun<'_>,
    mut kernel: kernel::Kernel,
    source: &Source,
    runtime: &Option<(tokio::runtime::Runtime, kube::Client)>,
    args: &AgentArgs,
    printer: &Printer,
) -> io::Result<()> {
    use std::sync::atomic::Ordering;
    let shared = Arc::new(socket_owners::Shared::default());
    let mut agent = Agent::new(live.index, live.window_ns, live.limits, live.node);
    if *source != Source::None {
        agent = agent.with_owners(Arc::clone(&shared));
        spawn_tetragon_reader(
            source,
            runtime,
            args,
            &shared,
            &live.stop,
            live.window,
            printer,
        )?;
    }
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    // The baseline: counters from before the agent started are not counted.
    let first = kernel.pass()?;
    for n in kernel.take_notices() {
        printer.warn(n);
    }
    agent.count_pass(&first, &kernel, &mut out)?;
    let window = live.window;
    let mut next = next_boundary(window);
    let mut looked = Instant::now();
    loop {
        while !live.stop.load(Ordering::Relaxed) {
            let now = std::time::SystemTime::now();
            let Ok(left) = next.duration_since(now) else {
                break;
            };
            kernel.wait_destroys(left.min(Duration::from_millis(200)))?;
            // A pod made since the last pass: its namespace is followed within a second.
            if looked.elapsed() >= Duration::from_secs(1) {
                kernel.follow_new_namespaces()?;
                looked = Instant::now();
            }
        }
        if let Some(rx) = &live.updates {
            while let Ok(delta) = rx.try_recv() {
                agent.apply(delta);
            }
        }
        let pass = kernel.pass()?;
        agent.count_pass(&pass, &kernel, &mut out)?;
        agent.flush(&mut out)?;
        if live.stop.load(Ordering::Relaxed) {
            break;
        }
        agent.open_window(&mut out)?;
        next = next_boundary(window);
    }
    io::Write::flush(&mut out)
}

/// The next multiple of `window` of the wall clock.
fn next_boundary(window: Duration) -> std::time::SystemTime {
    let w = window.as_nanos().max(1);
    let now = std::time::SystemTime::now();
    let since = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let at = (since / w + 1) * w;
    std::time::UNIX_EPOCH + Duration::from_nanos(u64::try_from(at).unwrap_or(u64::MAX))
}

/// Reads Tetragon's export on a thread of its own: the owners it names go to `shared`.
fn spawn_tetragon_reader(
    source: &Source,
    runtime: &Option<(tokio::runtime::Runtime, kube::Client)>,
    args: &AgentArgs,
    shared: &Arc<socket_owners::Shared>,
    stop: &Arc<AtomicBool>,
    window: Duration,
    printer: &Printer,
) -> io::Result<()> {
    let window_ns = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
    let limits = Limits {
        max_keys: args.max_keys,
        top_peers: 0,
        pod_activity: false,
    };
    let agent = Agent::owners_only(Index::default(), window_ns, limits, Arc::clone(shared));
    let stop = Arc::clone(stop);
    let source = source.clone();
    let follow = source::file::Follow {
        from_start: args.from_start,
        stop_at_end: false,
    };
    let logs = match (&source, runtime) {
        (Source::KubeLogs, Some((rt, client))) => {
            let target = source::kube::Target {
                namespace: args.tetragon_namespace.clone(),
                selector: args.tetragon_selector.clone(),
                container: args.tetragon_container.clone(),
                node: args.tetragon_node.clone().filter(|n| !n.is_empty()),
            };
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            rt.spawn(source::kube::run(client.clone(), target, tx));
            Some((rt.handle().clone(), rx))
        }
        (Source::KubeLogs, None) => {
            return Err(io::Error::other("kube-logs needs the Kubernetes API"));
        }
        _ => None,
    };
    let warn = printer.clone();
    std::thread::Builder::new()
        .name("tetragon".into())
        .spawn(move || {
            let mut d = Driver::new(agent, io::sink(), stop, None, window);
            let result = match source {
                Source::Stdin => source::stdin::run(io::stdin(), &mut d),
                Source::File(path) => source::file::run(&path, follow, &mut d),
                Source::KubeLogs => match logs {
                    Some((handle, mut rx)) => {
                        let mut next = |t| {
                            Ok(
                                match handle
                                    .block_on(async { tokio::time::timeout(t, rx.recv()).await })
                                {
                                    Ok(Some(buf)) => source::stdin::Next::Data(buf),
                                    Ok(None) => source::stdin::Next::End,
                                    Err(_) => source::stdin::Next::Idle,
                                },
                            )
                        };
                        source::stdin::drive(&mut next, &mut drop, &mut d)
                    }
                    None => Ok(()),
                },
                Source::None => Ok(()),
            };
            d.agent.publish();
            if let Err(e) = result {
                warn.warn(format!("agent: reading Tetragon's events stopped: {e}"));
            }
        })?;
    Ok(())
}
