//! `file:PATH`, followed like `tail -F`: survives rotation (rename + new file) and truncation
//! by polling the path's metadata every 250 ms when there is nothing to read. Polling, not
//! inotify: it needs no extra crate, behaves the same on every filesystem (hostPath, overlay,
//! NFS), and a quarter second is well inside a 10 s window.
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use super::CHUNK;
use crate::agent::driver::Driver;

const POLL: Duration = Duration::from_millis(250);

/// How to follow the file.
#[derive(Debug, Clone, Copy)]
pub struct Follow {
    /// Read what the file already holds (else start at its end).
    pub from_start: bool,
    /// Stop at the end of the file instead of waiting for more.
    pub stop_at_end: bool,
}

struct Open {
    file: File,
    inode: u64,
    pos: u64,
}

fn open(path: &Path, at_end: bool) -> io::Result<Open> {
    let mut file = File::open(path)?;
    let inode = file.metadata()?.ino();
    let pos = if at_end {
        file.seek(SeekFrom::End(0))?
    } else {
        0
    };
    Ok(Open { file, inode, pos })
}

/// Follows `path` until stopped (or, with `stop_at_end`, until its end).
pub fn run<W: Write>(path: &Path, follow: Follow, d: &mut Driver<W>) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut cur: Option<Open> = None;
    let mut first = true;
    loop {
        if d.stopping() {
            return Ok(());
        }
        let Some(f) = cur.as_mut() else {
            match open(path, first && !follow.from_start) {
                Ok(o) => cur = Some(o),
                Err(e) if follow.stop_at_end => return Err(e),
                Err(_) => {
                    // Not there (yet): Tetragon creates it, logrotate recreates it.
                    d.idle()?;
                    std::thread::sleep(POLL);
                }
            }
            first = false;
            continue;
        };
        let n = match f.file.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n > 0 {
            f.pos += n as u64;
            d.chunk(&buf[..n])?;
            continue;
        }
        if follow.stop_at_end {
            return Ok(());
        }
        // At the end of what we have: was the file rotated or truncated meanwhile?
        match std::fs::metadata(path) {
            Ok(m) if m.ino() != f.inode => {
                // Rotated: read what was appended to the old file before it was renamed; its
                // unterminated last line ends with it. The new file is read from its start.
                loop {
                    match f.file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => d.chunk(&buf[..n])?,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                d.end_of_stream()?;
                cur = open(path, false).ok();
                continue;
            }
            Ok(m) if m.len() < f.pos => {
                // Truncated in place (copytruncate): start again at the beginning.
                d.end_of_stream()?;
                f.pos = f.file.seek(SeekFrom::Start(0))?;
                continue;
            }
            _ => {}
        }
        d.idle()?;
        std::thread::sleep(POLL);
    }
}
