//! Faults injected into real runs on the real control plane with real helm 4: two installs at
//! once (one helm paused with SIGSTOP), a run killed outright, SIGTERM mid-install, the API
//! server frozen (SIGSTOP of the real kube-apiserver) mid-upgrade, and a helm cache that is full.
//! Each test prints what the fault cost (time to the error, time for the next run to converge):
//! docs/install-notes.md keeps the table.
// The measured costs go to stderr, for `--nocapture`.
#![allow(clippy::print_stderr)]
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::lifecycle::assert_all_ready;
use super::{HelmMajor, Session, both, says};
use crate::support::Run;

/// A helm that logs `PID ARGS` of each call, then becomes the real helm (`exec`, same pid), so
/// a test can pause or kill the very helm process kovenant waits for.
fn recording_helm(s: &Session) -> (PathBuf, PathBuf) {
    let log = s.home.path().join("helm-calls.log");
    let script = s.home.path().join("helm-wrapper.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$$ $*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            s.helm.display()
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod wrapper");
    (script, log)
}

/// The pid of the last helm call whose arguments contain `needle`.
fn helm_pid(log: &Path, needle: &str) -> Option<i32> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .find(|l| l.contains(needle))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
}

fn kill(signal: &str, pid: i32) {
    let ok = Command::new("kill")
        .args([signal, "--", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success(), "kill {signal} {pid}");
}

/// A kovenant run in the background (its own process group, as a shell runs a job), its
/// stderr in a file, its temp folder in `tmp`.
struct Background {
    child: Child,
    stderr: PathBuf,
    started: Instant,
}

impl Background {
    fn start(s: &Session, helm: &Path, tmp: &Path, name: &str, args: &[&str]) -> Background {
        let stderr = s.home.path().join(format!("{name}.stderr"));
        let child = s
            .kovenant(args)
            .env("KOVENANT_HELM", helm)
            .env("TMPDIR", tmp)
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start kovenant");
        Background {
            child,
            stderr,
            started: Instant::now(),
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Panics when the run has ended (with what it said).
    fn still_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the run ended ({status}) too early:\n{}", self.stderr());
        }
    }

    fn wait(mut self) -> (Run, Duration) {
        let status = self.child.wait().expect("wait kovenant");
        let took = self.started.elapsed();
        (
            Run {
                code: status.code().unwrap_or(-1),
                stdout: String::new(),
                stderr: self.stderr(),
            },
            took,
        )
    }
}

/// `helm history RELEASE -n kovenant`: (revision, status), oldest first.
fn history(s: &Session, release: &str) -> Vec<(u64, String)> {
    let out = s.helm(&["history", release, "-n", "kovenant", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    v.as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap_or(0),
                r["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn status_of(s: &Session, release: &str) -> Option<String> {
    s.releases()
        .into_iter()
        .find(|(r, _, _)| r == release)
        .map(|(_, _, st)| st)
}

fn lease_exists(s: &Session) -> bool {
    s.exists(&["lease", "-n", "kube-system", "kovenant-kovenant"])
}

/// The run folders kovenant left in a temp folder (helm's own temporary files aside).
fn left_in(tmp: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("kovenant-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A second .env beside the session's: the session's lines plus `extra`.
fn env_file(s: &Session, name: &str, extra: &[&str]) -> String {
    s.write_env(extra);
    let path = s.home.path().join(name);
    std::fs::copy(&s.env_file, &path).expect("copy .env");
    s.write_env(&[]);
    path.to_string_lossy().into_owned()
}

#[test]
fn two_installs_at_once_run_one_after_the_other_and_the_last_applied_is_deployed() {
    let s = Session::new(HelmMajor::V4);
    let (helm, log) = recording_helm(&s);
    let tmp = tempfile::tempdir().expect("tmp");
    // Run A installs an agent whose image "pulls" for 30 s (kwok stage pod-ready), so helm waits
    // with the pipeline release pending-upgrade; its helm is then paused (SIGSTOP).
    let slow = env_file(&s, "slow.env", &["KOVENANT_IMAGE_REGISTRY=slow.invalid"]);
    let fast = env_file(&s, "fast.env", &[]);
    let mut a = Background::start(
        &s,
        &helm,
        tmp.path(),
        "a",
        &["install", "--yes", "--skip-image", "--env-file", &slow],
    );
    s.eventually(
        "A's helm is waiting, the pipeline release pending-upgrade",
        Duration::from_secs(180),
        || {
            a.still_running();
            status_of(&s, "kovenant/kovenant-pipeline").as_deref() == Some("pending-upgrade")
        },
    );
    let a_helm = helm_pid(&log, "upgrade --install kovenant-pipeline").expect("A's helm");
    kill("-STOP", a_helm);
    let pending = history(&s, "kovenant-pipeline");

    // B refuses at once, naming A.
    let refused_at = Instant::now();
    let b = s.run(&[
        "install",
        "--yes",
        "--skip-image",
        "--no-lock-wait",
        "--env-file",
        &fast,
    ]);
    let refused_in = refused_at.elapsed();
    assert_eq!(b.code, 1, "{b}");
    says(&b, "another kovenant run holds it: ");
    says(&b, &format!(" pid {} (kovenant install), since ", a.pid()));
    assert_eq!(
        history(&s, "kovenant-pipeline"),
        pending,
        "B changed nothing"
    );
    // uninstall obeys the same lock; status only reads it, and says a run is changing things.
    let u = s.uninstall(&["--no-lock-wait"]);
    assert_eq!(u.code, 1, "{u}");
    says(&u, &format!(" pid {} (kovenant install), since ", a.pid()));
    let st = s.run(&["status", "--env-file", &fast]);
    says(&st, "a kovenant run holds the lock on namespace kovenant: ");
    assert_eq!(history(&s, "kovenant-pipeline"), pending, "nothing changed");

    // C waits for A (within its --timeout), then applies its own configuration.
    let c = Background::start(
        &s,
        &helm,
        tmp.path(),
        "c",
        &[
            "install",
            "--yes",
            "--skip-image",
            "--timeout",
            "5m",
            "--env-file",
            &fast,
        ],
    );
    s.eventually("C waits for the lock", Duration::from_secs(60), || {
        c.stderr()
            .contains("waiting for the lock on namespace kovenant")
    });
    kill("-CONT", a_helm);
    let a_pid = a.pid();
    let (a_run, _) = a.wait();
    assert_eq!(a_run.code, 0, "A completes once its helm goes on: {a_run}");
    let (c_run, c_took) = c.wait();
    assert_eq!(c_run.code, 0, "C, after A: {c_run}");
    says(&c_run, &format!("pid {a_pid} (kovenant install)"));
    let deployed: Vec<_> = history(&s, "kovenant-pipeline")
        .into_iter()
        .filter(|(_, st)| st == "deployed")
        .collect();
    assert_eq!(deployed.len(), 1, "{:?}", history(&s, "kovenant-pipeline"));
    // What is deployed is what the last run applied: C's image, not A's slow one.
    let values = s.get(&["daemonset", "-n", "kovenant", "kovenant-agent"]);
    let image = values["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!image.starts_with("slow.invalid/"), "{image}");
    assert_all_ready(&s);
    assert!(!lease_exists(&s), "the lock is let go");
    assert_eq!(left_in(tmp.path()), Vec::<String>::new());
    eprintln!(
        "measured: a second install refused in {} ms; a waiting one converged {} s after it started",
        refused_in.as_millis(),
        c_took.as_secs()
    );
}

#[test]
fn a_killed_runs_lock_expires_its_folder_is_swept_and_the_next_install_reinstalls_what_it_left() {
    let s = Session::new(HelmMajor::V4);
    let (helm, log) = recording_helm(&s);
    let tmp = tempfile::tempdir().expect("tmp");
    // InfluxDB's image "pulls" for 30 s: the pipeline's first pass (InfluxDB alone) waits with
    // the release pending-install at revision 1.
    let slow = env_file(
        &s,
        "slow.env",
        &["KOVENANT_INFLUXDB_IMAGE=slow.invalid/influxdb:2.7.12"],
    );
    let mut a = Background::start(
        &s,
        &helm,
        tmp.path(),
        "a",
        &["install", "--yes", "--skip-image", "--env-file", &slow],
    );
    s.eventually(
        "the pipeline's first pass is pending-install",
        Duration::from_secs(180),
        || {
            a.still_running();
            status_of(&s, "kovenant/kovenant-pipeline").as_deref() == Some("pending-install")
        },
    );
    // The machine loses the run: kovenant and its helm die at once (SIGKILL to the group).
    let a_pid = a.pid();
    kill("-KILL", -a_pid);
    let _ = a.wait();
    assert!(helm_pid(&log, "upgrade --install kovenant-pipeline").is_some());
    assert_eq!(
        status_of(&s, "kovenant/kovenant-pipeline").as_deref(),
        Some("pending-install")
    );
    assert!(lease_exists(&s), "a killed run cannot let go of its lock");
    let stale = left_in(tmp.path());
    assert!(
        stale.len() == 1 && stale[0].starts_with("kovenant-run-"),
        "the killed run's folder: {stale:?}"
    );

    // The next run waits for the dead run's lock to expire, then unlocks and converges.
    let b = Background::start(
        &s,
        &helm,
        tmp.path(),
        "b",
        &[
            "install",
            "--yes",
            "--skip-image",
            "--env-file",
            &s.env_arg(),
        ],
    );
    let (b_run, b_took) = b.wait();
    assert_eq!(b_run.code, 0, "{b_run}");
    says(&b_run, &format!("pid {a_pid} (kovenant install), since "));
    says(
        &b_run,
        "release kovenant/kovenant-pipeline was left pending-install at revision 1",
    );
    // Uninstalled and installed afresh: created, not updated.
    assert!(
        b_run
            .stderr
            .lines()
            .any(|l| l.trim_start().starts_with("release kovenant-pipeline")
                && l.trim_end().ends_with("created")),
        "{b_run}"
    );
    assert_eq!(left_in(tmp.path()), Vec::<String>::new(), "swept: {b_run}");
    assert!(!lease_exists(&s));
    assert_all_ready(&s);
    eprintln!(
        "measured: after a run killed outright, the next install converged in {} s (the lock's \
         expiry included)",
        b_took.as_secs()
    );
}

#[test]
fn sigterm_mid_install_is_handled_as_ctrl_c_and_the_same_install_converges() {
    let s = Session::new(HelmMajor::V4);
    let (helm, log) = recording_helm(&s);
    let tmp = tempfile::tempdir().expect("tmp");
    let slow = env_file(&s, "slow.env", &["KOVENANT_IMAGE_REGISTRY=slow.invalid"]);
    let mut a = Background::start(
        &s,
        &helm,
        tmp.path(),
        "a",
        &["install", "--yes", "--skip-image", "--env-file", &slow],
    );
    s.eventually(
        "helm waits for the agent, the pipeline pending-upgrade",
        Duration::from_secs(180),
        || {
            a.still_running();
            status_of(&s, "kovenant/kovenant-pipeline").as_deref() == Some("pending-upgrade")
        },
    );
    let helm_pid = helm_pid(&log, "upgrade --install kovenant-pipeline").expect("helm");
    // As `timeout` and CI runners do: SIGTERM to kovenant alone.
    let sent = Instant::now();
    kill("-TERM", a.pid());
    let (run, _) = a.wait();
    let stopped_in = sent.elapsed();
    assert_eq!(run.code, 143, "{run}");
    // The wait names what it waits for (Prometheus's and Grafana's helm may still run too).
    let waiting = run
        .stderr
        .lines()
        .find(|l| l.starts_with("waiting for helm upgrade --install "))
        .unwrap_or_else(|| panic!("no wait for helm: {run}"));
    assert!(
        waiting.contains(&format!(
            "helm upgrade --install kovenant-pipeline (pid {helm_pid})"
        )) && waiting.contains(" to stop: it was sent SIGTERM and records its release as failed"),
        "{run}"
    );
    assert!(!run.stderr.contains("record the interruption"), "{run}");
    says(&run, "error: terminated (SIGTERM)");
    assert!(
        status_of(&s, "kovenant/kovenant-pipeline").is_some_and(|st| !st.starts_with("pending")),
        "helm recorded the release: {:?}",
        s.releases()
    );
    assert_eq!(left_in(tmp.path()), Vec::<String>::new(), "{run}");
    assert!(!lease_exists(&s), "{run}");

    let again_at = Instant::now();
    let again = s.install(&[]);
    assert_eq!(again.code, 0, "{again}");
    assert_all_ready(&s);
    eprintln!(
        "measured: SIGTERM mid-install stopped in {} ms; the same install converged in {} s",
        stopped_in.as_millis(),
        again_at.elapsed().as_secs()
    );
}

/// SIGCONT to the API server when dropped, so a failing test never leaves the cluster frozen.
struct Frozen(i32);

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

#[test]
fn a_frozen_api_server_ends_install_at_its_timeout_naming_the_cause_and_the_rerun_converges() {
    let s = Session::new(HelmMajor::V4);
    let (helm, _log) = recording_helm(&s);
    let tmp = tempfile::tempdir().expect("tmp");
    // Installed first, so that the run under test is an upgrade that reaches helm's wait soon.
    let first = s.install(&[]);
    assert_eq!(first.code, 0, "{first}");
    let slow = env_file(&s, "slow.env", &["KOVENANT_IMAGE_REGISTRY=slow.invalid"]);
    let timeout = Duration::from_secs(60);
    let mut a = Background::start(
        &s,
        &helm,
        tmp.path(),
        "a",
        &[
            "install",
            "--yes",
            "--skip-image",
            "--timeout",
            "60s",
            "--env-file",
            &slow,
        ],
    );
    s.eventually(
        "helm waits for the agent, the pipeline pending-upgrade",
        Duration::from_secs(55),
        || {
            a.still_running();
            status_of(&s, "kovenant/kovenant-pipeline").as_deref() == Some("pending-upgrade")
        },
    );
    let apiserver: i32 = std::fs::read_to_string(s.cluster_dir.join("kube-apiserver.pid"))
        .expect("the API server's pid")
        .trim()
        .parse()
        .expect("a pid");
    let frozen = Frozen(apiserver);
    kill("-STOP", apiserver);
    let frozen_at = Instant::now();
    let (run, took) = a.wait();
    let error_in = frozen_at.elapsed();
    drop(frozen);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        took <= timeout + Duration::from_secs(10),
        "--timeout 60s is a hard bound: returned after {took:?}\n{run}"
    );
    says(&run, "does not answer");
    assert_eq!(left_in(tmp.path()), Vec::<String>::new(), "{run}");

    // The API server back: the next run (which waits for the lock the frozen run could not let
    // go of) unlocks what helm left pending and converges.
    let again_at = Instant::now();
    let again = s.install(&[]);
    assert_eq!(again.code, 0, "{again}");
    assert_all_ready(&s);
    eprintln!(
        "measured: API server frozen: install --timeout 60s returned {} s after it started, {} s \
         after the freeze; the next install converged in {} s",
        took.as_secs(),
        error_in.as_secs(),
        again_at.elapsed().as_secs()
    );
    let _ = both(&again);
}

/// A tmpfs of 64 KiB mounted at `dir` and filled to the last byte, unmounted when dropped.
struct FullDisk(PathBuf);

impl FullDisk {
    fn at(dir: PathBuf) -> FullDisk {
        std::fs::create_dir_all(&dir).expect("mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount");
        assert!(ok.success(), "mount a tmpfs (the tests run as root)");
        let disk = FullDisk(dir);
        // helm's cache layout (and helm 4's plugin compilation cache), then nothing left: its
        // index files cannot be written.
        for sub in ["repository", "wazero-build"] {
            std::fs::create_dir_all(disk.0.join(sub)).expect("mkdir");
        }
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}", disk.0.join("fill").display()))
            .stderr(Stdio::null())
            .status();
        disk
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_helm_cache_is_reported_with_helms_own_cause() {
    let s = Session::new(HelmMajor::V4);
    // A machine that knows kovenant's repositories, with a new cache on a full disk: kovenant
    // asks helm to fetch their indexes (`helm repo update`), which cannot be written.
    for name in [
        "kovenant-cilium",
        "kovenant-prometheus-community",
        "kovenant-grafana-community",
    ] {
        let out = s.helm(&["repo", "add", name, &s.chart_repo]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let full = FullDisk::at(s.home.path().join("full-cache"));
    let env = s.env_arg();
    let started = Instant::now();
    let run = Run::from(
        s.kovenant(&[
            "install",
            "--yes",
            "--skip-image",
            "--only",
            "tetragon",
            "--env-file",
            &env,
        ])
        .env("HELM_CACHE_HOME", &full.0)
        .output()
        .expect("run kovenant"),
    );
    let took = started.elapsed();
    drop(full);
    assert_eq!(run.code, 1, "{run}");
    says(&run, "helm repo update");
    says(&run, "no space left on device");
    assert!(
        !s.exists(&["daemonset", "-n", "kube-system", "tetragon"]),
        "{run}"
    );
    eprintln!(
        "measured: a full helm cache: the error in {} ms",
        took.as_millis()
    );
}

#[test]
fn an_unreadable_helm_cache_is_the_reason_preflight_gives_not_a_missing_plugin() {
    let s = Session::new(HelmMajor::V4);
    // helm 4 loads plugins through a compilation cache in its cache home; a cache it cannot
    // read (here a file where the folder should be: the tests run as root, whom permissions do
    // not stop) makes `helm plugin list` skip the plugin with a warning and exit 0.
    let cache = s.home.path().join("cache-is-a-file");
    std::fs::write(&cache, "").expect("write");
    let env = s.env_arg();
    let run = Run::from(
        s.kovenant(&[
            "install",
            "--check-only",
            "--skip-image",
            "--env-file",
            &env,
        ])
        .env("HELM_CACHE_HOME", &cache)
        .output()
        .expect("run kovenant"),
    );
    assert_eq!(run.code, 1, "{run}");
    says(
        &run,
        "× the helm-diff plugin is installed: `helm plugin list` does not show diff, and helm said:",
    );
    says(&run, "wazero-build: not a directory");
    assert!(!run.stderr.contains("helm plugin install"), "{run}");
}
