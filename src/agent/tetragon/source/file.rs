//! `file:PATH`, followed like `tail -F`: survives rotation (rename + new file) and truncation
//! by polling the path's metadata every 250 ms when there is nothing to read. Polling, not
//! inotify: it needs no extra crate, behaves the same on every filesystem (hostPath, overlay,
//! NFS), and a quarter second is well inside a 10 s window.
//!
//! Tetragon rotates its export file with lumberjack, and an agent that is behind may find the
//! path several rotations on. It then finishes the file it holds, reads the files rotated since
//! from their backups (plain or gzipped, see `backups`), oldest first, and only then the new
//! file; the ones lumberjack already deleted are counted as lost.
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use flate2::read::MultiGzDecoder;

use super::backups::{self, Backup, Pattern, gz_holds};
use super::lost::{self, Left};
use super::{CHUNK, mapped};
use crate::agent::tetragon::driver::Driver;

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
    dev: u64,
    ino: u64,
    pos: u64,
    /// The time in the name of the newest backup older than this file (`i64::MIN`: none):
    /// the backups newer than it are this file's and those rotated after it.
    floor: i64,
}

fn open(path: &Path, at_end: bool) -> io::Result<Open> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    let pos = if at_end {
        file.seek(SeekFrom::End(0))?
    } else {
        0
    };
    Ok(Open {
        file,
        dev: meta.dev(),
        ino: meta.ino(),
        pos,
        floor: i64::MIN,
    })
}

/// The followed path and its backups' names.
struct Target<'a> {
    path: &'a Path,
    pattern: Option<Pattern>,
}

impl Target<'_> {
    fn backups(&self) -> Vec<Backup> {
        match &self.pattern {
            Some(p) => backups::scan(self.path, p),
            None => Vec::new(),
        }
    }

    /// Opens the path where following starts (or starts again after it was missing): the
    /// backups already there are older than what the agent reads.
    fn open_first(&self, at_end: bool) -> io::Result<Open> {
        let mut f = open(self.path, at_end)?;
        let backups = self.backups();
        let own = backups.iter().find(|b| b.is(f.dev, f.ino)).map(|b| b.ms);
        f.floor = backups
            .iter()
            .map(|b| b.ms)
            .filter(|ms| own.is_none_or(|own| *ms < own))
            .max()
            .unwrap_or(i64::MIN);
        Ok(f)
    }
}

/// Follows `path` until stopped (or, with `stop_at_end`, until its end).
pub fn run<W: Write>(path: &Path, follow: Follow, d: &mut Driver<W>) -> io::Result<()> {
    let target = Target {
        path,
        pattern: Pattern::of(path),
    };
    let mut buf = vec![0u8; CHUNK];
    let mut cur: Option<Open> = None;
    let mut first = true;
    let mut tried_map = false;
    // After a rotation that left nothing at the path yet: backups newer than this are unread.
    let mut resume: Option<i64> = None;
    loop {
        if d.stopping() {
            return Ok(());
        }
        let Some(f) = cur.as_mut() else {
            let opened = match resume {
                Some(after) => {
                    let (next, after) = catch_up(&target, after, &mut buf, d)?;
                    resume = Some(after);
                    next.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
                }
                None => target.open_first(first && !follow.from_start),
            };
            match opened {
                Ok(o) => {
                    cur = Some(o);
                    resume = None;
                }
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
        // A replay (`--no-follow`) of a file no one writes goes through a map (`mapped`);
        // whatever the map did not take is read as usual.
        if follow.stop_at_end && !tried_map {
            tried_map = true;
            if mapped::feed(&mut f.file, d)? {
                f.pos = f.file.stream_position()?;
                continue;
            }
        }
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
            Ok(m) if (m.dev(), m.ino()) != (f.dev, f.ino) => {
                // Rotated: read what was appended to the old file before it was renamed; its
                // unterminated last line ends with it. Then the files rotated after it, then
                // the new file from its start.
                pump(&mut f.file, &mut buf, d)?;
                d.end_of_stream()?;
                let Some(done) = cur.take() else { continue };
                let after = settle(&target, &done, d);
                let (next, after) = catch_up(&target, after, &mut buf, d)?;
                resume = next.is_none().then_some(after);
                cur = next;
                continue;
            }
            Ok(m) if m.len() < f.pos => {
                // Truncated in place (copytruncate): start again at the beginning.
                d.end_of_stream()?;
                d.agent.stats_mut().truncations += 1;
                f.pos = f.file.seek(SeekFrom::Start(0))?;
                continue;
            }
            _ => {}
        }
        d.idle()?;
        std::thread::sleep(POLL);
    }
}

/// Feeds `input` to its end.
fn pump<W: Write>(input: &mut dyn Read, buf: &mut [u8], d: &mut Driver<W>) -> io::Result<()> {
    loop {
        match input.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => d.chunk(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Finds the file the agent just finished among the backups; returns the time in its backup's
/// name, after which the unread backups come. When lumberjack already deleted it, the files
/// rotated after it that it deleted too are counted as lost.
fn settle<W: Write>(target: &Target<'_>, done: &Open, d: &mut Driver<W>) -> i64 {
    let backups = target.backups();
    let newer: Vec<&Backup> = backups.iter().filter(|b| b.ms > done.floor).collect();
    if let Some(b) = newer.iter().find(|b| b.is(done.dev, done.ino)) {
        return b.ms;
    }
    let Ok(meta) = done.file.metadata() else {
        return done.floor;
    };
    // Still has a name, not one of lumberjack's (logrotate's `tetragon.log.1`): nothing to
    // catch up on, nothing lost.
    if meta.nlink() > 0 {
        return done.floor;
    }
    // lumberjack gzips the oldest backups first: the finished file, if kept, is the oldest.
    if let Some(b) = newer.first()
        && b.plain.is_none()
        && b.gz
            .as_deref()
            .is_some_and(|gz| gz_holds(gz, &done.file, meta.len()))
    {
        return b.ms;
    }
    let ns = |t: io::Result<std::time::SystemTime>| t.ok().and_then(backups::ns);
    let end = ns(meta.modified());
    let created = ns(meta.created());
    let mut left: Vec<Left> = newer
        .iter()
        .map(|b| Left {
            rotated: Some(b.ms * 1_000_000),
            created: b.plain.as_ref().and_then(|p| p.created),
        })
        .collect();
    left.push(Left {
        rotated: None,
        created: ns(std::fs::metadata(target.path).and_then(|m| m.created())),
    });
    if let Some(end) = end {
        let own_life = created.map(|c| end - c);
        d.agent.stats_mut().rotated_files_lost += lost::estimate(end, own_life, &left);
    }
    done.floor
}

/// Reads the backups newer than `after`, oldest first, then hands over the file at the path
/// (`None`: nothing there yet), with the time of the newest backup it read or skipped.
fn catch_up<W: Write>(
    target: &Target<'_>,
    mut after: i64,
    buf: &mut [u8],
    d: &mut Driver<W>,
) -> io::Result<(Option<Open>, i64)> {
    // Opened before the folder is listed: every file rotated before it is in the list.
    let cur = open(target.path, false).ok();
    let backups = target.backups();
    // The file at the path may have been rotated already: the backups before it come first.
    let cur_ms = cur
        .as_ref()
        .and_then(|c| backups.iter().find(|b| b.is(c.dev, c.ino)))
        .map(|b| b.ms);
    let from = after;
    for b in backups
        .iter()
        .filter(|b| b.ms > from && cur_ms.is_none_or(|t| b.ms < t))
    {
        if d.stopping() {
            return Ok((None, after));
        }
        match open_backup(b) {
            Some(mut input) => {
                d.agent.stats_mut().rotated_files_read += 1;
                // A gzip that breaks off ends where it breaks: what it held so far is counted.
                if let Err(e) = pump(&mut *input, buf, d)
                    && e.kind() != io::ErrorKind::InvalidData
                    && e.kind() != io::ErrorKind::UnexpectedEof
                {
                    return Err(e);
                }
                d.end_of_stream()?;
            }
            None => d.agent.stats_mut().rotated_files_lost += 1,
        }
        after = b.ms;
    }
    Ok((cur.map(|c| Open { floor: after, ..c }), after))
}

/// The backup's content: its plain file, else (lumberjack compressed it meanwhile) its gzip;
/// `None` when lumberjack deleted it first.
fn open_backup(b: &Backup) -> Option<Box<dyn Read>> {
    if let Some(f) = b.plain.as_ref().and_then(|p| File::open(&p.path).ok()) {
        return Some(Box::new(f));
    }
    let gz = File::open(b.gz_path()?).ok()?;
    Some(Box::new(MultiGzDecoder::new(io::BufReader::with_capacity(
        CHUNK, gz,
    ))))
}
