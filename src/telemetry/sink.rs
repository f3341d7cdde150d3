//! The logging thread and the queue in front of it: every log line of the process goes through
//! here to stderr. A request pushes its access [`Record`] (no formatting, no wake-up); the
//! subscriber's other lines arrive formatted, through [`Lines`]. The thread takes the whole
//! queue every [`INTERVAL`] (sooner once [`BATCH`] entries wait), formats the records and writes
//! the batch in large writes, in the order the entries were queued. Under load that is one
//! wake-up per batch instead of one per line, and one writer keeps every line whole.
//!
//! Nothing is lost: while [`CAPACITY`] entries wait (stderr is stalled, e.g. a full pipe), a
//! sender blocks until the thread has taken the queue (backpressure, as a blocking write to
//! stderr would). Dropping the [`Guard`] closes the queue and waits (up to [`SHUTDOWN_WAIT`],
//! should stderr never drain) until every queued entry is written; an entry sent after that is
//! written by its sender, straight to stderr.

use super::record::{Format, Record};
use std::{
    io::{self, Write},
    sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant, SystemTime},
};
use tracing_subscriber::fmt::MakeWriter;

/// How long a first entry waits for others before the logging thread writes the batch.
pub const INTERVAL: Duration = Duration::from_millis(20);
/// Entries that wake the logging thread before [`INTERVAL`] is over.
pub const BATCH: usize = 4096;
/// Entries that may wait before a sender blocks for room.
pub const CAPACITY: usize = 16 * BATCH;
/// How long dropping the [`Guard`] waits for the queue to be written.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// Bytes of lines per write.
const CHUNK: usize = 64 * 1024;

/// The sending side.
#[derive(Debug, Clone)]
pub struct Sink {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// The logging thread waits here for entries.
    ready: Condvar,
    /// Senders wait here for room.
    room: Condvar,
    capacity: usize,
}

/// Records, and the subscriber's lines each with the number of records queued before it (so
/// the thread writes them in the order they came).
#[derive(Debug, Default)]
struct Queue {
    records: Vec<Record>,
    lines: Vec<(usize, Box<[u8]>)>,
    /// The logging thread waits with no deadline: the next entry must wake it.
    idle: bool,
    closed: bool,
}

/// Keeps the logging thread; dropping it writes every queued entry and stops the thread.
#[must_use = "dropping the guard stops the logging thread"]
#[derive(Debug)]
pub struct Guard {
    shared: Arc<Shared>,
    done: mpsc::Receiver<()>,
}

impl Queue {
    fn len(&self) -> usize {
        self.records.len() + self.lines.len()
    }
}

impl Sink {
    /// Starts the logging thread writing to `out`, records as `format` says; at most
    /// `capacity` entries wait before senders block.
    pub fn start(
        out: impl Write + Send + 'static,
        format: Format,
        capacity: usize,
    ) -> io::Result<(Sink, Guard)> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            room: Condvar::new(),
            capacity: capacity.max(1),
        });
        let (finished, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("imgrelay-log".into())
            .spawn({
                let shared = shared.clone();
                move || {
                    run(&shared, out, format);
                    let _ = finished.send(());
                }
            })?;
        let guard = Guard {
            shared: shared.clone(),
            done,
        };
        Ok((Sink { shared }, guard))
    }

    /// Queues `record`, waiting for room while the queue is full; hands it back once the
    /// logging thread has stopped.
    pub fn record(&self, record: Record) -> Option<Record> {
        let mut record = Some(record);
        self.push(|q| q.records.extend(record.take()));
        record
    }

    /// Queues a line the subscriber formatted; `false` once the logging thread has stopped.
    pub fn line(&self, line: &[u8]) -> bool {
        self.push(|q| {
            let at = q.records.len();
            q.lines.push((at, line.into()));
        })
    }

    /// Runs `push` on the queue once it has room; `false` (and `push` not run) once closed.
    fn push(&self, push: impl FnOnce(&mut Queue)) -> bool {
        let s = &*self.shared;
        let mut q = lock(&s.queue);
        while q.len() >= s.capacity && !q.closed {
            q = wait(&s.room, q);
        }
        if q.closed {
            return false;
        }
        push(&mut q);
        let wake = std::mem::take(&mut q.idle) || q.len() == batch(s.capacity);
        drop(q);
        if wake {
            s.ready.notify_one();
        }
        true
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.ready.notify_one();
        self.shared.room.notify_all();
        let _ = self.done.recv_timeout(SHUTDOWN_WAIT);
    }
}

/// The subscriber's writer: each formatted line is queued as it is; without a
/// logging thread, lines go straight to stderr.
#[derive(Debug, Clone)]
pub struct Lines(pub Option<Sink>);

/// One line being written (the subscriber writes a line with one `write_all`).
#[derive(Debug)]
pub struct LineWriter<'a>(Option<&'a Sink>);

impl<'a> MakeWriter<'a> for Lines {
    type Writer = LineWriter<'a>;
    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter(self.0.as_ref())
    }
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.0.is_some_and(|sink| sink.line(buf)) {
            io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Entries that wake the logging thread early: [`BATCH`], or fewer in a smaller queue.
fn batch(capacity: usize) -> usize {
    BATCH.min(capacity)
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wait<'a>(c: &Condvar, q: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
    c.wait(q).unwrap_or_else(PoisonError::into_inner)
}

/// The logging thread: takes the queue batch by batch until it is closed and empty.
fn run(shared: &Shared, mut out: impl Write, mut format: Format) {
    let (mut records, mut lines) = (Vec::new(), Vec::new());
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    loop {
        let closed = {
            let mut q = lock(&shared.queue);
            loop {
                if q.closed || q.len() >= batch(shared.capacity) {
                    break;
                }
                if q.len() == 0 {
                    q.idle = true;
                    q = wait(&shared.ready, q);
                    continue;
                }
                // Entries wait: let the batch grow for one interval (or until it is full).
                q.idle = false;
                q = shared
                    .ready
                    .wait_timeout(q, INTERVAL)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                break;
            }
            std::mem::swap(&mut q.records, &mut records);
            std::mem::swap(&mut q.lines, &mut lines);
            q.closed
        };
        shared.room.notify_all();
        // One clock reading per batch: a record's wall time is now less its age.
        let (wall, now) = (SystemTime::now(), Instant::now());
        let mut pending = lines.drain(..).peekable();
        for (i, record) in records.drain(..).enumerate() {
            while let Some((_, line)) = pending.next_if(|(at, _)| *at <= i) {
                buf.extend_from_slice(&line);
            }
            let at = wall
                .checked_sub(now.saturating_duration_since(record.at))
                .unwrap_or(wall);
            format.write(&record, at, &mut buf);
            if buf.len() >= CHUNK {
                let _ = out.write_all(&buf);
                buf.clear();
            }
        }
        for (_, line) in pending {
            buf.extend_from_slice(&line);
        }
        if !buf.is_empty() {
            let _ = out.write_all(&buf);
            buf.clear();
        }
        let _ = out.flush();
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn record(id: &str) -> Record {
        Record::hit(id)
    }

    /// A writer that passes what it is given to a channel, optionally waiting for a go first,
    /// and taking `delay` over each write (a slow stderr).
    struct Out {
        lines: mpsc::Sender<Vec<u8>>,
        gate: Option<mpsc::Receiver<()>>,
        delay: Duration,
    }

    impl Write for Out {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(gate) = self.gate.take() {
                let _ = gate.recv();
            }
            std::thread::sleep(self.delay);
            let _ = self.lines.send(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn ids(rx: &mpsc::Receiver<Vec<u8>>) -> Vec<String> {
        let text: Vec<u8> = rx.try_iter().flatten().collect();
        String::from_utf8(text)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["request_id"].as_str().unwrap().to_string()
            })
            .collect()
    }

    #[test]
    fn every_line_sent_before_the_guard_drops_is_written_in_order() {
        let (tx, rx) = mpsc::channel();
        // A slow writer: the last batches are still being written when the guard drops.
        let out = Out {
            lines: tx,
            gate: None,
            delay: Duration::from_millis(5),
        };
        let (sink, guard) = Sink::start(out, Format::new(true, false), CAPACITY).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let lines = Lines(Some(sink.clone()));
                    let mut writer = lines.make_writer();
                    for i in 0..5000 {
                        if i % 10 == 0 {
                            // A line the subscriber wrote, between two access lines.
                            let line = format!("{{\"request_id\":\"t{t}-{i}\"}}\n");
                            writer.write_all(line.as_bytes()).unwrap();
                        } else {
                            assert!(sink.record(record(&format!("t{t}-{i}"))).is_none());
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let got = ids(&rx);
        assert_eq!(got.len(), 20_000);
        for t in 0..4 {
            let mine: Vec<&String> = got
                .iter()
                .filter(|id| id.starts_with(&format!("t{t}-")))
                .collect();
            let want: Vec<String> = (0..5000).map(|i| format!("t{t}-{i}")).collect();
            assert_eq!(mine, want.iter().collect::<Vec<_>>(), "thread {t}");
        }
        assert!(
            sink.record(record("late")).is_some(),
            "a stopped sink hands the record back"
        );
    }

    #[test]
    fn a_full_queue_makes_senders_wait_and_loses_nothing() {
        // The writer stalls on its first write; with room for 8 records, the sender blocks
        // until the writer goes on, then every record arrives.
        let (tx, rx) = mpsc::channel();
        let (go, gate) = mpsc::channel();
        let out = Out {
            lines: tx,
            gate: Some(gate),
            delay: Duration::ZERO,
        };
        let (sink, guard) = Sink::start(out, Format::new(true, false), 8).unwrap();
        let (sent_tx, sent) = mpsc::channel();
        let sender = std::thread::spawn(move || {
            for i in 0..100 {
                assert!(sink.record(record(&format!("r{i}"))).is_none());
                sent_tx.send(i).unwrap();
            }
        });
        // The writer holds at most one batch (8) while stalled and the queue 8 more.
        std::thread::sleep(Duration::from_millis(300));
        let before = sent.try_iter().count();
        assert!(
            before <= 16,
            "{before} records queued past a stalled writer"
        );
        go.send(()).unwrap();
        sender.join().unwrap();
        drop(guard);
        let want: Vec<String> = (0..100).map(|i| format!("r{i}")).collect();
        assert_eq!(ids(&rx), want);
    }
}
