//! Replaying a regular file through a memory map: the lines are scanned where the page cache
//! holds them, without `read(2)` copying each byte into a buffer first (a fifth to a quarter of
//! the agent's time on a replay, BENCHMARKS.md).
//!
//! A mapped file that shrinks under the reader kills it with `SIGBUS`. So the file is mapped only
//! while the agent holds a read lease on it (`fcntl(F_SETLEASE, F_RDLCK)`, fcntl(2) "Leases"): the
//! kernel grants one only when no one has the file open for writing, and then holds back every
//! `open` for writing and every `truncate` of it until the lease is given up (or
//! `/proc/sys/fs/lease-break-time` seconds pass, 45 by default), telling the holder with `SIGIO`.
//! On that signal the agent finishes the chunk it is in, unmaps, gives the lease up and reads the
//! rest with `read(2)`, from where it was. Where no lease can be had (a file being written, as
//! Tetragon's export is while it is followed; a file of another user without `CAP_LEASE`; a
//! filesystem without leases) nothing is mapped and the caller reads as before.
//!
//! What is left: a chunk whose processing is held up for longer than the lease-break time (the
//! output pipe blocked for 45 s mid-chunk) while someone truncates the file.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::{Advice, Mmap, MmapOptions};

use super::CHUNK;
use crate::agent::tetragon::driver::Driver;

/// How much of the file is mapped at a time.
const WINDOW: usize = 4 << 20;

/// A read lease on an open file, given up when dropped.
struct Lease<'f> {
    file: &'f File,
    broken: Arc<AtomicBool>,
    signal: signal_hook::SigId,
}

impl<'f> Lease<'f> {
    fn take(file: &'f File) -> Option<Lease<'f>> {
        let broken = Arc::new(AtomicBool::new(false));
        // Registered first: a lease broken at once must not find SIGIO's default action
        // (terminate).
        let signal =
            signal_hook::flag::register(signal_hook::consts::SIGIO, Arc::clone(&broken)).ok()?;
        // SAFETY: fcntl on a descriptor this function borrows; F_SETLEASE takes an int argument.
        let taken = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_RDLCK) } == 0;
        if !taken {
            signal_hook::low_level::unregister(signal);
            return None;
        }
        Some(Lease {
            file,
            broken,
            signal,
        })
    }

    /// Someone waits to write or truncate the file.
    fn broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        // SAFETY: as in `take`; the descriptor outlives the lease (`'f`).
        unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
        // signal-hook keeps its handler installed, doing nothing: a late SIGIO stays harmless.
        signal_hook::low_level::unregister(self.signal);
    }
}

/// Feeds what `file` holds from its current offset to its end through a map, when a lease can
/// be had; leaves the offset after what was fed (all of it, unless the lease was broken or the
/// agent stopped). `false`: nothing was mapped, the caller reads.
pub fn feed<W: Write>(file: &mut File, d: &mut Driver<W>) -> io::Result<bool> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Ok(false);
    }
    let start = file.stream_position()?;
    let Some(len) = meta
        .len()
        .checked_sub(start)
        .filter(|&n| n > 0)
        .and_then(|n| usize::try_from(n).ok())
    else {
        return Ok(false);
    };
    let Some(lease) = Lease::take(file) else {
        return Ok(false);
    };
    // The size may have changed between the metadata and the lease: map what there is now.
    let len = match file.metadata()?.len().checked_sub(start) {
        Some(now) => len.min(usize::try_from(now).unwrap_or(usize::MAX)),
        None => 0,
    };
    if len == 0 {
        return Ok(false);
    }
    // A window at a time, so the mapped pages the agent has read do not pile up in its resident
    // memory (they stay in the page cache).
    let mut done = 0;
    while done < len && !lease.broken() && !d.stopping() {
        let size = WINDOW.min(len - done);
        // SAFETY: the lease holds back every writer and truncation of the file for as long as
        // the map is read (see the module's comment): the mapped bytes stay there, unchanged.
        let map: Mmap = match unsafe {
            MmapOptions::new()
                .offset(start + done as u64)
                .len(size)
                .map(&*file)
        } {
            Ok(map) => map,
            // A file that cannot be mapped (a filesystem without mmap): read(2) takes over
            // from here.
            Err(_) => break,
        };
        // Read once, front to back: the kernel reads ahead.
        let _ = map.advise(Advice::Sequential);
        let mut at = 0;
        while at < size && !lease.broken() && !d.stopping() {
            let end = (at + CHUNK).min(size);
            d.chunk(&map[at..end])?;
            at = end;
        }
        done += at;
    }
    drop(lease);
    file.seek(SeekFrom::Start(start + done as u64))?;
    Ok(true)
}
