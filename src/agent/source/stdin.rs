//! Standard input, read by its own thread so the stop signal and the wall clock are heard
//! while a read blocks.
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use super::CHUNK;
use crate::agent::driver::Driver;

/// Reads `input` to its end (or until stopped), feeding the driver.
pub fn run<W: Write>(input: impl Read + Send + 'static, d: &mut Driver<W>) -> io::Result<()> {
    let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
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
    loop {
        if d.stopping() {
            return Ok(());
        }
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(Ok(buf)) => {
                d.chunk(&buf)?;
                // The reader reuses the buffer; if it is gone, so is the stream.
                let _ = back_tx.send(buf);
            }
            Ok(Err(e)) => return Err(e),
            Err(RecvTimeoutError::Timeout) => d.idle()?,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}
