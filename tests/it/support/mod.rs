//! Shared test harness: the binary under test, the real services .ci/run starts, shared fixtures.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The kovenant binary built for this test run, with a clean, predictable environment:
/// no colour, no inherited KOVENANT_* or seed configuration keys.
pub fn kovenant() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kovenant"));
    for (key, _) in std::env::vars() {
        if key.starts_with("KOVENANT_")
            || key.starts_with("DOCKER_INFLUXDB_INIT_")
            || key.starts_with("GRAFANA_")
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// A real service's address from the environment `.ci/run` sets. A test that needs it fails
/// (never skips) when it is missing.
pub fn service(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{var} is not set: this test needs the real service that .ci/run starts \
             (run ./.ci/run, or `.ci/services.sh start DIR && source DIR/env`)"
        ),
    }
}

/// A binary that `.ci/tools.sh NAME` builds from its Go module (cached by version), from the
/// environment variable `.ci/cluster.sh` writes from tools.sh's `NAME=PATH` lines. A test that
/// needs it fails (never skips) when it is missing, saying how to build it.
pub fn tool(var: &str, name: &str) -> PathBuf {
    let path = match std::env::var(var) {
        Ok(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!(
            "{var} is not set: this test needs the real binary that `.ci/tools.sh {name}` builds \
             (run ./.ci/run, or `export {var}=$(.ci/tools.sh {name} | cut -d= -f2)`)"
        ),
    };
    assert!(
        path.is_file(),
        "{var}={}: no such file; build it with `.ci/tools.sh {name}`",
        path.display()
    );
    path
}

/// `../shared`, where the fixtures, corpus tool and upstream schemas live.
pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// A finished kovenant run: exit code and both streams.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(o: std::process::Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
