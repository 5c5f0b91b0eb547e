//! The command line, as clap types only: doc comments are the help text, no logic lives here.
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Install, inspect and remove a Kubernetes monitoring stack: Tetragon, Prometheus, Grafana and
/// kovenant's own traffic and I/O pipeline.
#[derive(Debug, Parser)]
#[command(
    name = "kovenant",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace for Prometheus, Grafana and the pipeline (overrides KOVENANT_NAMESPACE).
    #[arg(short = 'n', long, global = true, value_name = "NS")]
    pub namespace: Option<String>,
    /// Show more detail: commands run, API calls, timings. Secrets are never shown.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Only print errors and machine output.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Disable colours (also disabled by NO_COLOR or when stderr is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Use templates/, policies/ and dashboards/ from DIR instead of the embedded ones.
    #[arg(long, global = true, value_name = "DIR")]
    pub assets: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct EnvFileArg {
    /// Configuration file to read (dotenv format). Default: ./.env when it exists.
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check prerequisites, preview the changes, then install or upgrade the whole stack.
    Install(InstallArgs),
    /// Remove everything install created, in reverse order.
    Uninstall(UninstallArgs),
    /// Report the health of every component; exit 3 when something is unhealthy.
    Status(StatusArgs),
    /// Write everything install would apply to a folder, with no cluster and no Docker.
    Render(RenderArgs),
    /// Build (and push) the telegraf-tetragon image alone, with no cluster. With --context naming a
    /// kind, k3d or minikube cluster, load it there.
    Image(ImageArgs),
    /// Turn Tetragon's JSON events into InfluxDB line protocol (runs inside the pipeline).
    Agent(AgentArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Open Grafana through a port-forward (no kubectl needed) and stay until Ctrl-C.
    Dashboard(DashboardArgs),
    /// The busiest flows and pods of the last minutes, from InfluxDB, as a table or JSON: bytes
    /// sent and received, retransmitted bytes, connections, mean round-trip time; pods' bytes read
    /// and written and what reached storage.
    Top(TopArgs),
}

/// What `top` groups traffic by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopBy {
    /// Namespace and workload (Deployment, StatefulSet, DaemonSet, ...).
    Workload,
    /// Pod, within the pod-level retention (KOVENANT_POD_RETENTION); host processes are not a
    /// pod's and are left out.
    Pod,
    /// The Helm release behind the workload.
    Release,
    /// Flows to addresses outside the cluster only.
    External,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub env: EnvFileArg,
    /// How far back to look.
    #[arg(long, default_value = "15m", value_parser = parse_interval, value_name = "DURATION")]
    pub since: Duration,
    /// What to group by.
    #[arg(long, value_enum, default_value = "workload")]
    pub by: TopBy,
    /// How many rows of each table.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub limit: usize,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// A part of the stack that `install --only` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Part {
    Image,
    Secrets,
    Tetragon,
    Prometheus,
    Grafana,
    Pipeline,
    Policies,
    Dashboards,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub env: EnvFileArg,
    /// Apply without asking for confirmation (required when not on a terminal).
    #[arg(short, long)]
    pub yes: bool,
    /// Show the plan and the preview, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not build or push the telegraf-tetragon image (use one already reachable by the cluster).
    #[arg(long)]
    pub skip_image: bool,
    /// Run the preflight checks only.
    #[arg(long)]
    pub check_only: bool,
    /// Install only these parts (repeatable).
    #[arg(long = "only", value_name = "PART")]
    pub only: Vec<Part>,
    /// Time limit for the whole install (the time the confirmation prompt waits for an answer
    /// aside): helm's own --timeout for every release gets what is left, a helm still running at
    /// the end gets SIGTERM then SIGKILL, and every wait ends there.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Refuse at once when another kovenant run holds the lock on a namespace this one writes
    /// into, instead of waiting for it within --timeout.
    #[arg(long, conflicts_with = "force_unlock")]
    pub no_lock_wait: bool,
    /// Take the lock even though another kovenant run holds it: only for a run known dead (a
    /// dead run's lock expires by itself 30s after it died).
    #[arg(long)]
    pub force_unlock: bool,
    /// Replace InfluxDB's scoped tokens (telegraf's write token, Grafana's read token): new ones
    /// in InfluxDB and their Secrets, the old ones deleted once telegraf and Grafana restarted.
    #[arg(long)]
    pub rotate_credentials: bool,
    /// The agent binary to put in the image when this executable is not a Linux build for the
    /// cluster's architecture.
    #[arg(long, value_name = "PATH")]
    pub agent_binary: Option<PathBuf>,
    /// How much of each release's helm-diff the plan shows.
    #[arg(long, value_enum, default_value = "context", value_name = "HOW")]
    pub diff: DiffMode,
    /// Output format of the plan; json only with --dry-run (a plan to save: every step's change
    /// and each release's full helm-diff).
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// How much of helm-diff's report the install plan shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffMode {
    /// One line per object, then each change with 3 lines of context.
    Context,
    /// One line per changed object.
    Summary,
    /// Every line helm-diff prints.
    Full,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub env: EnvFileArg,
    /// Remove without asking for confirmation (required when not on a terminal).
    #[arg(short, long)]
    pub yes: bool,
    /// Also delete persistent volume claims and the namespace.
    #[arg(long)]
    pub purge: bool,
    /// Leave Tetragon installed.
    #[arg(long)]
    pub keep_tetragon: bool,
    /// Time limit for the whole uninstall (the confirmation prompt aside): a helm still
    /// running at the end gets SIGTERM then SIGKILL, and every wait ends there.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Refuse at once when another kovenant run holds the lock on a namespace this one removes
    /// from, instead of waiting for it within --timeout.
    #[arg(long, conflicts_with = "force_unlock")]
    pub no_lock_wait: bool,
    /// Take the lock even though another kovenant run holds it: only for a run known dead.
    #[arg(long)]
    pub force_unlock: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub env: EnvFileArg,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// Poll until the stack is healthy or the timeout expires.
    #[arg(long)]
    pub wait: bool,
    /// Time limit for the whole command, --wait's polling included: a check still waiting for
    /// the API server then ends, and the last complete report is shown.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub env: EnvFileArg,
    /// Folder to write into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Write into DIR even when it is not empty (files kovenant renders are overwritten).
    #[arg(long)]
    pub force: bool,
    /// The agent binary whose image the chart names (as given to install): the image tag is a
    /// hash of it, so pass the same one to render the same reference.
    #[arg(long, value_name = "PATH")]
    pub agent_binary: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(flatten)]
    pub env: EnvFileArg,
    /// Push the image to KOVENANT_IMAGE_REGISTRY after building it.
    #[arg(long)]
    pub push: bool,
    /// The agent binary to put in the image when this executable is not a Linux build for the
    /// target architecture.
    #[arg(long, value_name = "PATH")]
    pub agent_binary: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Where Tetragon's events come from (who owns the host network namespace's sockets):
    /// none, stdin, file:PATH (followed like tail -F) or kube-logs.
    /// [default: none; stdin with --no-kernel]
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// The proc filesystem to read processes, their I/O counters and namespaces from.
    #[arg(long = "proc", default_value = "/proc", value_name = "DIR")]
    pub proc_root: PathBuf,
    /// Replay Tetragon's events alone (connects and accepts), without reading the kernel, and
    /// stop at the end of the input. Without it the agent reads every socket and process of
    /// this machine each window until SIGTERM or SIGINT.
    #[arg(long)]
    pub no_kernel: bool,
    /// The receive buffer of each namespace's socket-destroy listener, in bytes (tests force a
    /// tiny one to show lost notifications).
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES", hide = true)]
    pub destroy_rcvbuf: usize,
    /// Where closed sockets' final counters come from: kernel sums them by flow in the kernel
    /// (a BPF program on the tracepoint sock:inet_sock_set_state; needs the kernel's BTF, and
    /// CAP_SYS_ADMIN or CAP_BPF with CAP_PERFMON), notifications reads a destroy notification
    /// per socket, auto takes kernel where the kernel loads it. The host network namespace
    /// always uses notifications.
    #[arg(long, value_enum, default_value = "auto", value_name = "FROM")]
    pub socket_closes: crate::agent::ClosesFrom,
    /// With file:PATH, read the file from its start instead of its end.
    #[arg(long)]
    pub from_start: bool,
    /// With file:PATH, read the file from its start to its end and stop, instead of following it
    /// (replays; implies --from-start).
    #[arg(long)]
    pub no_follow: bool,
    /// Learn the cluster from this Kubernetes List (JSON) instead of watching the API.
    #[arg(long, value_name = "FILE")]
    pub cluster_snapshot: Option<PathBuf>,
    /// Aggregation window (a positive duration, as KOVENANT_AGENT_WINDOW).
    #[arg(long, default_value = "10s", value_parser = parse_interval, value_name = "DURATION")]
    pub window: Duration,
    /// Cap on live keys per window; overflow is folded into peer "other".
    #[arg(long, default_value_t = 50_000, value_name = "N")]
    pub max_keys: usize,
    /// Per window and workload, keep this many external and unresolved peers by address (the
    /// most bytes first) and fold the rest into peer "other" of their type; 0 keeps them all.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub top_peers: usize,
    /// Write tcp_flow and pod_io per workload (without the pod tag) and each pod's figures as
    /// one pod_activity point a window, for a short-retention bucket: pods then add one series
    /// each, not one per peer (docs/series-budget.md; the chart passes it).
    #[arg(long)]
    pub pod_activity: bool,
    /// Node name to tag host events with when the event carries none (default: $NODE_NAME).
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,
    /// With kube-logs: the namespace of the Tetragon pods.
    #[arg(long, default_value = "kube-system", value_name = "NS")]
    pub tetragon_namespace: String,
    /// With kube-logs: the label selector of the Tetragon pods.
    #[arg(
        long,
        default_value = "app.kubernetes.io/name=tetragon",
        value_name = "SELECTOR"
    )]
    pub tetragon_selector: String,
    /// With kube-logs: the container whose log carries the JSON export.
    #[arg(long, default_value = "export-stdout", value_name = "NAME")]
    pub tetragon_container: String,
    /// With kube-logs: only the Tetragon pod on this node (one agent per node, as the DaemonSet
    /// runs it, reads each event once). Empty or absent: every Tetragon pod.
    #[arg(long, value_name = "NODE")]
    pub tetragon_node: Option<String>,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub env: EnvFileArg,
    /// Local port to listen on (0: any free port).
    #[arg(long, default_value_t = 3000, value_name = "PORT")]
    pub port: u16,
    /// Local address to listen on.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDRESS")]
    pub address: std::net::IpAddr,
    /// Print the URL without opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Also print Grafana's admin password (read from its Secret) on the terminal.
    #[arg(long)]
    pub print_password: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Parses durations such as `90s`, `10m`, `1h30m`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::duration::parse(s)
}

/// A positive duration, checked as `.env` checks KOVENANT_AGENT_WINDOW (`0s` is refused).
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    crate::config::validate::interval(s).map_err(|p| format!("{}; expected {}", p.what, p.expected))
}
