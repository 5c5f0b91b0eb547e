//! The one private folder a run keeps its files in (rendered charts and values, never a secret):
//! `$TMPDIR/kovenant-run-XXXXXX`, made on first use, removed when the command ends however it
//! ends (done, failed, Ctrl-C, SIGTERM). A run killed outright (SIGKILL) cannot remove its own:
//! each folder holds a `.lock` file its run keeps locked (flock) while it lives, so the next run
//! removes every folder whose lock it can take, and never one of a live run.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

const PREFIX: &str = "kovenant-run-";
const LOCK: &str = ".lock";

/// The folder and the locked file that says its run lives.
struct Dir {
    path: PathBuf,
    _lock: File,
}

static DIR: Mutex<Option<Dir>> = Mutex::new(None);

/// The run's folder, made (0700) on first use; stale folders of killed runs are removed first.
pub fn path() -> Result<PathBuf> {
    let mut slot = DIR.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = slot.as_ref() {
        return Ok(d.path.clone());
    }
    let tmp = std::env::temp_dir();
    sweep(&tmp);
    let dir = tempfile::Builder::new()
        .prefix(PREFIX)
        .tempdir_in(&tmp)
        .map_err(|e| Error::io("creating", &tmp, e))?
        .keep();
    // Locked before it takes its name, so a sweep never finds it unlocked.
    let lock_path = dir.join(LOCK);
    let making = dir.join(".lock-making");
    let lock = File::create(&making).map_err(|e| Error::io("creating", &making, e))?;
    lock.try_lock()
        .map_err(|e| Error::io("locking", &making, std::io::Error::other(e.to_string())))?;
    std::fs::rename(&making, &lock_path).map_err(|e| Error::io("renaming", &making, e))?;
    *slot = Some(Dir {
        path: dir.clone(),
        _lock: lock,
    });
    Ok(dir)
}

/// Removes the run's folder, if it made one.
pub fn remove() {
    let taken = DIR.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(d) = taken {
        let _ = std::fs::remove_dir_all(&d.path);
    }
}

/// Removes the folders of runs that died without removing theirs: those whose lock file can be
/// locked (its run is gone: the kernel drops a dead process's locks). A folder without its lock
/// file yet is being made by a live run, and is left alone.
fn sweep(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let dir = entry.path();
        let Ok(lock) = File::open(dir.join(LOCK)) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_whose_run_died_is_swept_and_a_live_ones_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dead = tmp.path().join(format!("{PREFIX}dead"));
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(LOCK), "").unwrap();
        std::fs::write(dead.join("values.yaml"), "a: 1").unwrap();
        let live = tmp.path().join(format!("{PREFIX}live"));
        std::fs::create_dir(&live).unwrap();
        let held = File::create(live.join(LOCK)).unwrap();
        held.try_lock().unwrap();
        let making = tmp.path().join(format!("{PREFIX}making"));
        std::fs::create_dir(&making).unwrap();
        let other = tmp.path().join("kovenant-test-pv-01");
        std::fs::create_dir(&other).unwrap();
        sweep(tmp.path());
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(making.exists());
        assert!(other.exists());
        drop(held);
        sweep(tmp.path());
        assert!(!live.exists());
    }
}
