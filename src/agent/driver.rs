//! Drives an `Agent` from chunks of input: splitting, index updates, the wall-clock flush of
//! live input that went quiet, and the stop signal.
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::index::Delta;
use super::lines::{Line, MAX_LINE, Sink, Splitter};
use super::pipeline::Agent;

/// How long live input must be quiet before the wall clock closes a window.
const QUIET: Duration = Duration::from_secs(1);
/// How long after its end (by the wall clock) an event-time window waits for late events.
const GRACE: Duration = Duration::from_secs(2);

pub struct Driver<W: Write> {
    pub agent: Agent,
    splitter: Splitter,
    pub out: W,
    stop: Arc<AtomicBool>,
    updates: Option<Receiver<Delta>>,
    window: Duration,
    last_input: Instant,
    last_flush: Instant,
}

impl<W: Write> Driver<W> {
    pub fn new(
        agent: Agent,
        out: W,
        stop: Arc<AtomicBool>,
        updates: Option<Receiver<Delta>>,
        window: Duration,
    ) -> Self {
        Driver {
            agent,
            splitter: Splitter::new(MAX_LINE),
            out,
            stop,
            updates,
            window,
            last_input: Instant::now(),
            last_flush: Instant::now(),
        }
    }

    /// The longest line kept (tests use short ones).
    #[cfg(test)]
    pub fn set_max_line(&mut self, max_line: usize) {
        self.splitter = Splitter::new(max_line);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Feeds bytes as they came; lines may span calls.
    pub fn chunk(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.take_updates();
        self.last_input = Instant::now();
        let mut sink = Feed {
            agent: &mut self.agent,
            out: &mut self.out,
        };
        let result = self.splitter.push_to(bytes, &mut sink);
        self.agent.publish();
        result
    }

    /// The stream ended (or was replaced by a rotated file): its last line ends here.
    pub fn end_of_stream(&mut self) -> io::Result<()> {
        let (agent, out) = (&mut self.agent, &mut self.out);
        self.splitter.finish(&mut |line| feed(agent, out, line))
    }

    /// Called when live input has nothing to give: index changes, and the wall-clock flush of a
    /// window when input is quiet (so an idle stream still reports every window).
    pub fn idle(&mut self) -> io::Result<()> {
        self.take_updates();
        self.agent.publish();
        let now = Instant::now();
        let quiet = now.duration_since(self.last_input);
        if self.agent.has_open_window() {
            let end_passed = self.agent.open_window_end_passed(GRACE);
            if quiet >= QUIET && (end_passed || quiet >= self.window) {
                self.flush()?;
            }
        } else if now.duration_since(self.last_flush) >= self.window {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the open window (and the self-metrics).
    pub fn flush(&mut self) -> io::Result<()> {
        self.last_flush = Instant::now();
        self.agent.flush(&mut self.out)
    }

    /// End of input or stop signal: the last line, the open window, everything to stdout.
    pub fn finish(&mut self) -> io::Result<()> {
        self.end_of_stream()?;
        if self.agent.has_open_window() || self.agent.has_pending() {
            self.flush()?;
        }
        self.out.flush()
    }

    /// Applies the changes the live watches saw since the last call, between chunks (never
    /// within a line).
    fn take_updates(&mut self) {
        let Some(rx) = &self.updates else { return };
        while let Ok(delta) = rx.try_recv() {
            self.agent.apply(delta);
        }
    }
}

fn feed(agent: &mut Agent, out: &mut dyn Write, line: Line<'_>) -> io::Result<()> {
    match line {
        Line::Text(t) => agent.feed(t, out),
        Line::TooLong => {
            agent.bad_line();
            Ok(())
        }
    }
}

/// The agent as the splitter's sink: the usual lines are scanned where they start in the chunk.
struct Feed<'d> {
    agent: &'d mut Agent,
    out: &'d mut dyn Write,
}

impl Sink for Feed<'_> {
    type Error = io::Error;

    fn line(&mut self, line: Line<'_>) -> io::Result<()> {
        feed(self.agent, self.out, line)
    }

    fn prefix(&mut self, text: &str, max: usize) -> io::Result<Option<usize>> {
        self.agent.feed_prefix(text, max, self.out)
    }
}
