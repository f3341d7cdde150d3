//! Logging set-up: `tracing` to stderr, as text or JSON (`[log]`). One line per request is
//! written by the server; this module only installs the subscriber and its writer.
//!
//! Lines leave the request's path: a request formats its line and hands it to a channel
//! (`tracing-appender`'s non-blocking writer); one logging thread drains whatever has queued
//! into a buffer and writes it to stderr with one flush per batch, so under load many lines
//! share a `write` and no request waits on stderr. Nothing is dropped: when the channel is
//! full (more than [`BUFFERED_LINES`] lines waiting: stderr stalled), a request waits for room
//! rather than losing its line. The [`Logging`] guard flushes what is queued when dropped:
//! `serve` holds it until after the server has drained, so every line written before shutdown
//! reaches stderr.

use crate::config::{Log, LogFormat};
use std::io::{self, BufWriter};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines that may wait for the logging thread before a writer waits for room.
pub const BUFFERED_LINES: usize = 64 * 1024;

/// Keeps the logging thread; dropping it writes out every queued line, then stops the thread.
#[must_use = "dropping the guard stops the logging thread"]
#[derive(Debug)]
pub struct Logging {
    _worker: WorkerGuard,
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `log.level`.
pub fn init(log: &Log) -> Logging {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, worker) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("imgrelay-log")
        .finish(BufWriter::new(io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    Logging { _worker: worker }
}
