//! Logging set-up and the logging thread: `tracing` to stderr, as text or JSON (`[log]`). The
//! server writes one access line per request (`access`); this module installs the subscriber,
//! runs the thread that writes every line, and takes access lines as data ([`access`]).
//!
//! Lines leave the request's path: a request queues its access line as a [`Record`] (fields,
//! not text) and the logging thread formats and writes whole batches (`sink`); the
//! subscriber's other lines are formatted where they happen and queued in the same order.
//! Nothing is dropped (a full queue makes senders wait), and the [`Logging`] guard writes out
//! what is queued when dropped: `serve` holds it until after the server has drained, so every
//! line written before shutdown reaches stderr.

mod record;
mod sink;

pub use record::{Format, Record, RequestId};
pub use sink::{Guard, Lines, Sink, BATCH, CAPACITY, INTERVAL, SHUTDOWN_WAIT};

use crate::config::{Log, LogFormat};
use std::{io, sync::OnceLock};
use tracing_subscriber::EnvFilter;

/// The process's logging thread, once [`init`] has started it.
static SINK: OnceLock<Sink> = OnceLock::new();

/// Keeps the logging thread; dropping it writes out every queued line, then stops the thread.
#[must_use = "dropping the guard stops the logging thread"]
#[derive(Debug)]
pub struct Logging {
    _guard: Option<Guard>,
}

/// Installs the global subscriber and starts the logging thread. `RUST_LOG`, when set,
/// overrides `log.level`.
pub fn init(log: &Log) -> Logging {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&io::stderr());
    let json = matches!(log.format, LogFormat::Json);
    let (sink, guard) = match Sink::start(io::stderr(), Format::new(json, ansi), CAPACITY) {
        Ok((sink, guard)) if SINK.set(sink.clone()).is_ok() => (Some(sink), Some(guard)),
        // A second `init` in one process, or no thread to be had: lines are written where
        // they happen.
        _ => (None, None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(Lines(sink));
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    Logging { _guard: guard }
}

/// Writes an access line: queued for the logging thread, or through the subscriber where no
/// logging thread runs (a library user, a test, or after shutdown).
pub fn access(record: Record) {
    let unsent = match SINK.get() {
        Some(sink) => sink.record(record),
        None => Some(record),
    };
    if let Some(record) = unsent {
        record.emit();
    }
}
