//! imgrelay: a self-hosted image proxy and article rewriter.
//!
//! A request walks one way through the house; each module below uses only those after it:
//!
//! ```text
//! server      accept loop, connection limit, header timeout, graceful shutdown, routing
//! api/…       one endpoint family per file: parse the request, call the pipeline, answer with
//!             the headers of SPEC §2.4 (ETag, 304, Cache-Control, Vary, CORS, CSP)
//! request     the form rule and the wsrv-style parameters (pure)
//! transform   those parameters as one typed, canonical transform (pure)
//! sign        HMAC signatures of request targets (pure)
//! work        admission (bounded queue) and CPU permits for the blocking pool
//! cache/…     memory (moka) → disk (files + LRU) → shared bucket (S3) → fill, coalesced;
//!             originals and variants
//! fetch/…     source rules → per-host limit → guarded connector (SSRF) → redirects → bounded
//!             body → sniffed type
//! image/…     sniff → decode (limits first) → geometry → resize → encode (pure, synchronous)
//! ```
//!
//! Beside that path, for `api::admin`'s `/purge`: `fanout` forwards it to the other replicas
//! and sends the CDN its `PURGE` (one bounded request per endpoint). Also beside it: `rewrite/…` (the article rewriter: library, `imgrelay rewrite`, and what
//! `api::rewrite` calls for `POST /rewrite`) points every image of HTML and Markdown at
//! imgrelay, building the same URLs `request` parses; `warm` requests every URL the rewriter
//! writes from a running imgrelay, and `imgrelay rewrite --info-from` asks one for the sizes
//! it measures, both through `batch` (bounded, retried, with a progress bar); `cli` holds the
//! other subcommands.
//!
//! Under everything: `config` (loaded and validated before anything binds), `error` (the one
//! error enum every step returns and the API turns into a status, a code and a one-line
//! reason), `metrics` (the Prometheus series each step counts into), `access` (request ids and
//! the access line) and `telemetry` (the log subscriber). Under `cfg(fuzzing)` only, `fuzz`
//! re-exports the parsers for the fuzz targets of `fuzz/`.

#![deny(unsafe_code)]

pub mod access;
pub mod api;
pub mod batch;
pub mod cache;
pub mod cli;
pub mod config;
pub mod error;
pub mod fanout;
pub mod fetch;
#[cfg(fuzzing)]
pub mod fuzz;
pub mod image;
pub mod metrics;
pub mod request;
pub mod rewrite;
pub mod server;
pub mod sign;
pub mod telemetry;
pub mod transform;
pub mod warm;
pub mod work;

use config::Config;
use fetch::{
    connector::{Resolve, SystemResolver},
    Fetcher,
};
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

/// What every handler shares. Built once per process (or per test server).
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub fetcher: Fetcher,
    pub cache: cache::Cache,
    pub work: work::Work,
    /// The article rewriter of `POST /rewrite`, built once.
    pub rewriter: rewrite::Rewriter,
    /// Every Prometheus series; the fetcher, cache and work hold handles into it.
    pub metrics: metrics::Metrics,
    pub request_ids: access::RequestIds,
    shutting_down: AtomicBool,
}

impl AppState {
    /// Production state: the system resolver.
    pub fn new(config: Config) -> std::io::Result<Arc<Self>> {
        Self::with_resolver(config, Arc::new(SystemResolver))
    }

    /// State with a chosen resolver (tests map names to loopback without DNS). Fails when the
    /// TLS provider cannot start or the disk cache directory is unusable or locked.
    pub fn with_resolver(config: Config, resolver: Arc<dyn Resolve>) -> std::io::Result<Arc<Self>> {
        let metrics = metrics::Metrics::new();
        let fetcher = Fetcher::new(&config, resolver, &metrics).map_err(std::io::Error::other)?;
        let rewriter = rewrite::Rewriter::new(&config);
        Ok(Arc::new(AppState {
            cache: cache::Cache::open(&config, &metrics)?,
            work: work::Work::new(&config),
            config,
            fetcher,
            rewriter,
            metrics,
            request_ids: access::RequestIds::new(),
            shutting_down: AtomicBool::new(false),
        }))
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }
}
