//! imgrelay: a self-hosted image proxy and article rewriter.
//!
//! A request walks one way through the house:
//!
//! ```text
//! server      accept loop, connection limit, header timeout, graceful shutdown, routing
//!   api/…     one endpoint family per file: parse the request, call the pipeline, answer
//!   request   the form rule and the wsrv-style parameters (pure)
//!   transform the wsrv-style parameters as one typed, canonical transform (pure)
//!   sign      HMAC signatures of request targets (pure)
//!   work      admission (bounded queue) and CPU permits for the blocking pool
//!   cache/…   memory (moka) → disk (files + LRU) → fill, coalesced; originals and variants
//!   fetch/…   source rules → per-host limit → guarded connector (SSRF) → redirects → bounded
//!             body → sniffed type
//!   image/…   decode (limits first) → geometry → resize → encode (pure, synchronous)
//!   api/…     response headers of SPEC §2.4 (ETag, 304, Cache-Control, Vary, CORS, CSP)
//! ```
//!
//! Beside that path, `rewrite` (the article rewriter: library, `imgrelay rewrite`, and
//! `api::rewrite` for `POST /rewrite`) points every image of HTML and Markdown at imgrelay.
//!
//! Beside it, `metrics` holds the Prometheus series each step counts into, and `access` mints
//! request ids and writes the access line.
//!
//! `config` is loaded and validated before anything binds; `error` is the one error enum that
//! every step returns and that the API turns into a status, a code and a one-line reason.

#![deny(unsafe_code)]

pub mod access;
pub mod api;
pub mod cache;
pub mod cli;
pub mod config;
pub mod error;
pub mod fetch;
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
    /// `POST /rewrite` bodies held and rewritten at once: one per worker.
    pub rewrite_slots: Arc<tokio::sync::Semaphore>,
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
        let rewrite_slots = Arc::new(tokio::sync::Semaphore::new(config.workers()));
        Ok(Arc::new(AppState {
            cache: cache::Cache::open(&config, &metrics)?,
            work: work::Work::new(&config),
            config,
            fetcher,
            rewriter,
            rewrite_slots,
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
