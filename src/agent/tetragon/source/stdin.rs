//! Standard input, read by its own thread so the stop signal and the wall clock are heard
//! while a read blocks; and the loop shared with every source that delivers chunks.
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use super::CHUNK;
use crate::agent::tetragon::driver::Driver;

/// What a chunked source has for the driver.
pub enum Next {
    Data(Vec<u8>),
    /// Nothing within the poll interval.
    Idle,
    End,
}

/// How often a blocked source lets the driver look at the clock and the stop signal.
pub const POLL: Duration = Duration::from_millis(250);

/// Feeds chunks from `next` into the driver until the source ends or the agent is stopped.
pub fn drive<W: Write>(
    next: &mut dyn FnMut(Duration) -> io::Result<Next>,
    recycle: &mut dyn FnMut(Vec<u8>),
    d: &mut Driver<W>,
) -> io::Result<()> {
    loop {
        if d.stopping() {
            return Ok(());
        }
        match next(POLL)? {
            Next::Data(buf) => {
                d.chunk(&buf)?;
                recycle(buf);
            }
            Next::Idle => d.idle()?,
            Next::End => return Ok(()),
        }
    }
}

/// Reads `input` to its end (or until stopped), feeding the driver.
pub fn run<W: Write>(input: impl Read + Send + 'static, d: &mut Driver<W>) -> io::Result<()> {
    let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(1);
    let (back_tx, back_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut input = input;
        loop {
            let mut buf = back_rx.try_recv().unwrap_or_default();
            buf.resize(CHUNK, 0);
            match input.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(buf)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    let mut next = |t: Duration| match rx.recv_timeout(t) {
        Ok(Ok(buf)) => Ok(Next::Data(buf)),
        Ok(Err(e)) => Err(e),
        Err(RecvTimeoutError::Timeout) => Ok(Next::Idle),
        Err(RecvTimeoutError::Disconnected) => Ok(Next::End),
    };
    // The reader reuses buffers; if it is gone, so is the stream.
    let mut recycle = |buf: Vec<u8>| {
        let _ = back_tx.send(buf);
    };
    drive(&mut next, &mut recycle, d)
}
