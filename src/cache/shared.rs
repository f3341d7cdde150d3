//! The shared tier (SPEC §7): an S3-compatible bucket that a fleet of replicas reads after
//! memory and disk and writes after each fill, through `object_store`.
//!
//! Objects are entries encoded exactly as on disk (see `entry`) and sealed with the keyed MAC of
//! `cache.shared.key` (see `seal`), at the keys of `layout` under the configured prefix. Every
//! read is verified (MAC, checksum, full key, length): a forged, swapped, damaged or expired
//! object, or one written under a key since rotated away, is a miss that the next fill
//! overwrites, and each that fails verification is counted. The tier fails open: an error or a
//! call over `cache.shared.timeout` is a miss, a warn line and a count in [`SharedStats`],
//! never an error to the client; the breaker skips the bucket after repeated failures. Writes
//! never hold up an answer: they wait in a bounded queue (bytes and slots) and are dropped,
//! and counted, when it is full. This module owns no HTTP and knows nothing of requests.

use super::{breaker::Breaker, entry::Entry, layout, seal::Seal, unix_now};
use crate::{config::Config, metrics::SharedSeries};
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use object_store::{
    aws::AmazonS3Builder, path::Path, BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt,
    PutPayload, RetryConfig,
};
use std::{
    fmt, io,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, OnceLock,
    },
    time::{Duration, Instant},
};
use tokio::sync::{mpsc, Semaphore};

/// Failures in a row that open the breaker, and how long the tier is then skipped.
pub const FAILURES_TO_SKIP: u32 = 5;
pub const SKIP_WINDOW: Duration = Duration::from_secs(10);
/// Writes to the bucket running at once, and writes waiting at most (besides the byte bound).
const WRITERS: usize = 4;
const QUEUE_SLOTS: usize = 1024;
/// Room for an entry's header (key, content type, validators) and its MAC beyond its body.
const HEADER_ROOM: u64 = 1 << 20;

/// A bucket operation, as the `op` label of `imgrelay_shared_errors_total` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Put,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::Delete => "delete",
        }
    }
}

/// What the shared tier counts, for `imgrelay_shared_errors_total{op}` (op: `get`, `put`,
/// `delete`, and `skipped` for calls the breaker skipped).
#[derive(Debug, Default)]
pub struct SharedStats {
    get: AtomicU64,
    put: AtomicU64,
    delete: AtomicU64,
    skipped: AtomicU64,
}

impl SharedStats {
    /// `(op, total)` for each label value of `imgrelay_shared_errors_total`.
    pub fn errors(&self) -> [(&'static str, u64); 4] {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("get", n(&self.get)),
            ("put", n(&self.put)),
            ("delete", n(&self.delete)),
            ("skipped", n(&self.skipped)),
        ]
    }

    fn count(&self, op: Op) -> u64 {
        let c = match op {
            Op::Get => &self.get,
            Op::Put => &self.put,
            Op::Delete => &self.delete,
        };
        c.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// What reading one object found.
enum Read {
    Absent,
    Object(Bytes),
    /// Larger than any object this tier writes: damaged or foreign, and not read further.
    Oversized,
}

/// One answer waiting to be written.
struct Write {
    path: Path,
    key: String,
    entry: Arc<Entry>,
}

/// The bucket, its breaker and counters; shared by the request path and the writer tasks.
struct Core {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    timeout: Duration,
    max_object: u64,
    breaker: Breaker,
    seal: Seal,
    stats: SharedStats,
    /// Stage timings, dropped writes and unverified objects, as exported.
    series: SharedSeries,
    /// Body bytes waiting in the write queue.
    queued: AtomicU64,
}

/// The shared tier; cheap to share behind an `Arc`.
pub struct Shared {
    core: Arc<Core>,
    queue_bytes: u64,
    /// Started on the first write, inside the runtime that serves requests.
    writer: OnceLock<mpsc::Sender<Write>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.core.store.to_string())
            .field("prefix", &self.core.prefix)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The tier `[cache.shared]` describes, or `None` when it is off. The S3 client retries a
    /// failed call at most once and gives up after `cache.shared.timeout`; credentials come
    /// from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`; objects are
    /// sealed with `cache.shared.key`.
    pub fn open(config: &Config, series: SharedSeries) -> io::Result<Option<Shared>> {
        let s = &config.cache.shared;
        if !s.is_on() {
            return Ok(None);
        }
        let (bucket, prefix) = s.bucket_and_prefix().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "cache.shared.url is not s3://bucket/prefix",
            )
        })?;
        let timeout = s.timeout.0;
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(200),
                base: 2.0,
            },
            max_retries: 1,
            retry_timeout: timeout,
        };
        let client = ClientOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(timeout);
        // Client options first: the builder's own setters (allow_http) write into them.
        let mut builder = AmazonS3Builder::new()
            .with_client_options(client)
            .with_retry(retry)
            .with_bucket_name(bucket)
            .with_region(&s.region)
            .with_allow_http(s.allow_http)
            .with_virtual_hosted_style_request(false);
        if !s.endpoint.is_empty() {
            builder = builder.with_endpoint(&s.endpoint);
        }
        let env = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(v) = env("AWS_ACCESS_KEY_ID") {
            builder = builder.with_access_key_id(v);
        }
        if let Some(v) = env("AWS_SECRET_ACCESS_KEY") {
            builder = builder.with_secret_access_key(v);
        }
        if let Some(v) = env("AWS_SESSION_TOKEN") {
            builder = builder.with_token(v);
        }
        let store = builder.build().map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("cache.shared: {e}"))
        })?;
        Ok(Some(Shared::new(
            Arc::new(store),
            &prefix,
            timeout,
            s.queue_bytes.0,
            Seal::new(s.key.expose().as_bytes()),
            series,
        )))
    }

    /// The tier over any object store (tests use an in-memory or delaying one).
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        timeout: Duration,
        queue_bytes: u64,
        seal: Seal,
        series: SharedSeries,
    ) -> Shared {
        let prefix = prefix.trim_matches('/');
        Shared {
            core: Arc::new(Core {
                store,
                prefix: if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                },
                timeout,
                max_object: queue_bytes.saturating_add(HEADER_ROOM),
                breaker: Breaker::new(FAILURES_TO_SKIP, SKIP_WINDOW),
                seal,
                stats: SharedStats::default(),
                series,
                queued: AtomicU64::new(0),
            }),
            queue_bytes,
            writer: OnceLock::new(),
        }
    }

    pub fn stats(&self) -> &SharedStats {
        &self.core.stats
    }

    /// Writes dropped because the queue was full (or the answer larger than the queue).
    pub fn dropped_writes(&self) -> u64 {
        self.core.series.dropped_writes.get()
    }

    /// Objects read that failed verification.
    pub fn unverified(&self) -> u64 {
        self.core.series.unverified.get()
    }

    /// The object of `key` (in `group`, the original's key) when it is there, sealed with this
    /// replica's key, intact and fresh; every failure is a miss.
    pub async fn get(&self, group: &str, key: &str) -> Option<Entry> {
        let core = &self.core;
        if !core.admit() {
            return None;
        }
        let path = core.path(group, key);
        let started = Instant::now();
        let read = tokio::time::timeout(core.timeout, core.read(&path)).await;
        core.series.get.observe(started.elapsed().as_secs_f64());
        let bytes = match read {
            Ok(Ok(Read::Absent)) => {
                core.breaker.record(true, Instant::now());
                return None;
            }
            Ok(Ok(Read::Object(bytes))) => {
                core.breaker.record(true, Instant::now());
                bytes
            }
            Ok(Ok(Read::Oversized)) => {
                core.breaker.record(true, Instant::now());
                tracing::warn!(object = %path, "shared cache object too large; treated as a miss");
                return None;
            }
            Ok(Err(e)) => return core.failed(Op::Get, &e),
            Err(_) => return core.failed(Op::Get, &"timed out"),
        };
        // The MAC first: nothing of an object that a keyless writer could have made is parsed.
        match core
            .seal
            .open(bytes)
            .and_then(|b| Entry::decode_owned(b, key))
        {
            Some(e) if e.is_fresh(unix_now()) => Some(e),
            Some(_) => None,
            None => {
                let total = core.series.unverified.get() + 1;
                core.series.unverified.inc();
                tracing::warn!(
                    object = %path,
                    unverified_total = total,
                    "shared cache object failed verification (forged, swapped, damaged, or \
                     sealed with another cache.shared.key); treated as a miss"
                );
                None
            }
        }
    }

    /// Queues `entry` for writing under `key`; never waits. Negative entries are not shared
    /// (they live for seconds). A write that does not fit the queue is dropped and counted.
    pub fn put_later(&self, group: &str, key: &str, entry: &Arc<Entry>) {
        if entry.negative != 0 {
            return;
        }
        let core = &self.core;
        let size = entry.body.len() as u64;
        let before = core.queued.fetch_add(size, Ordering::AcqRel);
        let write = Write {
            path: core.path(group, key),
            key: key.to_string(),
            entry: entry.clone(),
        };
        let sent = before + size <= self.queue_bytes && self.writer().try_send(write).is_ok();
        if !sent {
            core.queued.fetch_sub(size, Ordering::AcqRel);
            core.series.dropped_writes.inc();
            let n = core.series.dropped_writes.get();
            tracing::debug!(
                dropped_total = n,
                "shared cache write queue full; write dropped"
            );
        }
    }

    fn writer(&self) -> &mpsc::Sender<Write> {
        self.writer.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE_SLOTS);
            tokio::spawn(write_loop(self.core.clone(), rx));
            tx
        })
    }

    /// Deletes every object of the original `group` (its one prefix); the count deleted.
    /// Purges are not skipped by the breaker: an operator asked for this one.
    pub async fn purge(&self, group: &str) -> Result<usize, String> {
        let core = &self.core;
        let prefix = Path::from(format!("{}{}", core.prefix, layout::group_dir(group)));
        let store = core.store.clone();
        let work = async move {
            let listed = store.list(Some(&prefix)).map_ok(|m| m.location).boxed();
            store.delete_stream(listed).try_collect::<Vec<_>>().await
        };
        match tokio::time::timeout(core.timeout, work).await {
            Ok(Ok(deleted)) => {
                core.breaker.record(true, Instant::now());
                Ok(deleted.len())
            }
            Ok(Err(e)) => {
                core.failed::<()>(Op::Delete, &e);
                Err(e.to_string())
            }
            Err(_) => {
                core.failed::<()>(Op::Delete, &"timed out");
                Err("timed out".into())
            }
        }
    }
}

impl Core {
    fn path(&self, group: &str, key: &str) -> Path {
        Path::from(format!("{}{}", self.prefix, layout::entry_path(group, key)))
    }

    /// The breaker's verdict; a skipped call is counted.
    fn admit(&self) -> bool {
        let admitted = self.breaker.admit(Instant::now());
        if !admitted {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }

    /// Counts and logs a failed call; returns the miss it stands for.
    fn failed<T>(&self, op: Op, error: &dyn fmt::Display) -> Option<T> {
        self.breaker.record(false, Instant::now());
        let total = self.stats.count(op);
        tracing::warn!(
            op = op.as_str(),
            error = %error,
            errors_total = total,
            "shared cache tier failed; treated as a miss"
        );
        None
    }

    /// Reads one object whole, refusing to hold more than the largest object this tier writes.
    async fn read(&self, path: &Path) -> object_store::Result<Read> {
        let got = match self.store.get(path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(Read::Absent),
            Err(e) => return Err(e),
        };
        if got.meta.size > self.max_object {
            return Ok(Read::Oversized);
        }
        let mut body = BytesMut::with_capacity(usize::try_from(got.meta.size).unwrap_or(0));
        let mut chunks = got.into_stream();
        while let Some(chunk) = chunks.next().await {
            body.extend_from_slice(&chunk?);
            if body.len() as u64 > self.max_object {
                return Ok(Read::Oversized);
            }
        }
        Ok(Read::Object(body.freeze()))
    }

    async fn write(&self, w: Write) {
        let size = w.entry.body.len() as u64;
        if self.admit() {
            let payload = PutPayload::from(self.seal.seal(w.entry.encode(&w.key)));
            let started = Instant::now();
            let put = tokio::time::timeout(self.timeout, self.store.put(&w.path, payload)).await;
            self.series.put.observe(started.elapsed().as_secs_f64());
            match put {
                Ok(Ok(_)) => self.breaker.record(true, Instant::now()),
                Ok(Err(e)) => {
                    self.failed::<()>(Op::Put, &e);
                }
                Err(_) => {
                    self.failed::<()>(Op::Put, &"timed out");
                }
            }
        }
        self.queued.fetch_sub(size, Ordering::AcqRel);
    }
}

/// Drains the write queue, [`WRITERS`] writes at a time; ends when the tier is dropped.
async fn write_loop(core: Arc<Core>, mut queue: mpsc::Receiver<Write>) {
    let running = Arc::new(Semaphore::new(WRITERS));
    while let Some(w) = queue.recv().await {
        let Ok(permit) = running.clone().acquire_owned().await else {
            return;
        };
        let core = core.clone();
        tokio::spawn(async move {
            core.write(w).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
