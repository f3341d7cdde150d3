//! The cache (SPEC §5, §7): memory → disk → shared bucket → origin, with promotion, coalescing
//! and freshness.
//!
//! Originals are keyed by their normalised source URL, so `/?{url}` and `/?url=` share one
//! entry; variants by that URL, the canonical transform with its defaults resolved, and the
//! pipeline version. Negative results (upstream 404/410, non-images) are entries with their own
//! short expiry; errors that might pass (5xx, timeouts) are never stored. A stale entry is handed
//! to the fill function, which may revalidate it or serve it when the origin fails. The shared
//! tier is asked inside the coalesced miss (one bucket read per key however many wait); a hit
//! there is promoted into disk and memory, and a fill is queued for the bucket, never awaited.

mod breaker;
pub mod coalesce;
pub mod disk;
pub mod entry;
pub mod layout;
pub mod memory;
mod nowait;
mod seal;
pub mod shared;

use crate::{
    config::Config,
    error::Error,
    metrics::{Metrics, Snapshot},
};
use coalesce::Coalescer;
use disk::Disk;
pub use entry::{unix_now, Entry};
use memory::Memory;
use shared::{Shared, SharedStats};
use std::{future::Future, io, sync::Arc, time::Instant};
use url::Url;

/// Bump when the pipeline's output for the same request changes: old variants become misses.
pub const PIPELINE_VERSION: u32 = 2;

/// Where an answer came from, for `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Memory,
    Disk,
    /// From the bucket that the fleet shares.
    Shared,
    Miss,
    /// A stale copy served because the origin failed (stale-if-error).
    Stale,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Memory => "HIT-MEMORY",
            Tier::Disk => "HIT-DISK",
            Tier::Shared => "HIT-SHARED",
            Tier::Miss => "MISS",
            Tier::Stale => "HIT-STALE",
        }
    }
}

/// A served entry, where it came from, and the `Server-Timing` of the work done for it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub entry: Arc<Entry>,
    pub tier: Tier,
    pub timing: String,
}

/// What a fill function produced.
#[derive(Debug)]
pub enum Filled {
    /// A new or revalidated entry: store it in both tiers.
    Store(Entry, String),
    /// The stale entry, served as it is because the origin failed.
    Stale(Arc<Entry>),
}

/// The tiers and the coalescer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Cache {
    memory: Option<Memory>,
    disk: Option<Arc<Disk>>,
    shared: Option<Arc<Shared>>,
    inflight: Arc<Coalescer<Hit>>,
}

pub fn original_key(url: &Url) -> String {
    format!("o|{url}")
}

pub fn variant_key(url: &Url, canonical: &str) -> String {
    format!("v{PIPELINE_VERSION}|{url}|{canonical}")
}

impl Cache {
    /// Opens the tiers that `[cache]` turns on; fails if the disk tier's directory cannot be
    /// created or is locked by another process, or the shared tier's client cannot be built.
    pub fn open(config: &Config, metrics: &Metrics) -> io::Result<Cache> {
        let c = &config.cache;
        Ok(Cache {
            memory: (c.memory_bytes.0 > 0).then(|| Memory::new(c.memory_bytes.0)),
            disk: if c.disk_bytes.0 > 0 {
                Some(Disk::open(&c.dir, c.disk_bytes.0)?)
            } else {
                None
            },
            shared: Shared::open(config, metrics.shared())?.map(Arc::new),
            inflight: Arc::new(Coalescer::new(metrics.roles())),
        })
    }

    /// The shared tier's error counters, when the tier is on (for metrics).
    pub fn shared_stats(&self) -> Option<&SharedStats> {
        self.shared.as_deref().map(Shared::stats)
    }

    /// The shared tier, when it is on (tests read its counters).
    pub fn shared(&self) -> Option<&Shared> {
        self.shared.as_deref()
    }

    /// Returns the entry for `key` (in `group`, the original's key), filling it once for all
    /// concurrent callers when it is missing or stale. Negative entries come back as errors.
    /// The tier says where the answer, entry or error, came from: a failed fill is a miss.
    pub async fn get_or_fill<F, Fut>(
        &self,
        group: &str,
        key: &str,
        fill: F,
    ) -> (Tier, Result<Hit, Error>)
    where
        F: FnOnce(Option<Arc<Entry>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Filled, Error>> + Send + 'static,
    {
        let hit = match self.lookup_or_fill(group, key, fill).await {
            Ok(hit) => hit,
            Err(e) => return (Tier::Miss, Err(e)),
        };
        let tier = hit.tier;
        match hit.entry.negative {
            0 => (tier, Ok(hit)),
            404 => (tier, Err(Error::UpstreamNotFound)),
            _ => (tier, Err(Error::NotAnImage)),
        }
    }

    /// Sizes of the tiers, for the scrape's gauges.
    pub async fn measure(&self, now: &mut Snapshot) {
        if let Some(m) = &self.memory {
            (now.memory_bytes, now.memory_entries) = m.size().await;
        }
        if let Some(d) = &self.disk {
            (now.disk_bytes, now.disk_entries) = (d.total_bytes(), d.entries());
        }
        if let Some(s) = self.shared_stats() {
            now.shared_errors = s.errors().to_vec();
        }
    }

    async fn lookup_or_fill<F, Fut>(&self, group: &str, key: &str, fill: F) -> Result<Hit, Error>
    where
        F: FnOnce(Option<Arc<Entry>>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Filled, Error>> + Send + 'static,
    {
        let now = unix_now();
        let hit = |entry, tier| Hit {
            entry,
            tier,
            timing: String::new(),
        };
        let mut stale = None;
        if let Some(m) = &self.memory {
            if let Some(e) = m.get(key).await {
                if e.is_fresh(now) {
                    return Ok(hit(e, Tier::Memory));
                }
                stale = Some(e);
            }
        }
        if let (Some(d), None) = (&self.disk, &stale) {
            let found = match d.get_nowait(group, key) {
                Some(found) => found,
                None => {
                    let (d, g, k) = (d.clone(), group.to_string(), key.to_string());
                    match tokio::task::spawn_blocking(move || d.get(&g, &k)).await {
                        Ok(found) => found,
                        Err(e) => {
                            // A panic in the read (or a runtime shutting down): a miss.
                            tracing::error!(error = %e, "disk cache read task failed");
                            None
                        }
                    }
                }
            };
            if let Some(e) = found.map(Arc::new) {
                if e.is_fresh(now) {
                    if let Some(m) = &self.memory {
                        m.put(key, e.clone()).await;
                    }
                    return Ok(hit(e, Tier::Disk));
                }
                stale = Some(e);
            }
        }
        let (this, group, owned_key) = (self.clone(), group.to_string(), key.to_string());
        self.inflight
            .run(key, move || async move {
                if let Some(shared) = &this.shared {
                    let started = Instant::now();
                    if let Some(entry) = shared.get(&group, &owned_key).await {
                        let entry = Arc::new(entry);
                        this.store(&group, &owned_key, &entry).await;
                        let took = started.elapsed().as_secs_f64() * 1e3;
                        return Ok(Hit {
                            entry,
                            tier: Tier::Shared,
                            timing: format!("shared_get;dur={took:.1}"),
                        });
                    }
                }
                match fill(stale).await? {
                    Filled::Store(entry, timing) => {
                        let entry = Arc::new(entry);
                        this.store(&group, &owned_key, &entry).await;
                        if let Some(shared) = &this.shared {
                            shared.put_later(&group, &owned_key, &entry);
                        }
                        Ok(Hit {
                            entry,
                            tier: Tier::Miss,
                            timing,
                        })
                    }
                    Filled::Stale(entry) => Ok(Hit {
                        entry,
                        tier: Tier::Stale,
                        timing: String::new(),
                    }),
                }
            })
            .await
    }

    /// Writes into memory and disk (not the shared tier).
    async fn store(&self, group: &str, key: &str, entry: &Arc<Entry>) {
        if let Some(m) = &self.memory {
            m.put(key, entry.clone()).await;
        }
        if let Some(d) = &self.disk {
            let (d, g, k, e) = (d.clone(), group.to_string(), key.to_string(), entry.clone());
            match tokio::task::spawn_blocking(move || d.put(&g, &k, &e)).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "disk cache write failed"),
                Err(err) => tracing::error!(error = %err, "disk cache write task failed"),
            }
        }
    }

    /// Drops an original and all its variants from every tier: the shared tier first, so no
    /// request can promote a copy from it into a tier already purged, then this process's own
    /// tiers (also when the shared tier failed). A tier that could not delete is an error, so
    /// the operator knows to retry: the shared tier's first, as it matters to the whole fleet.
    pub async fn purge(&self, url: &Url) -> Result<(), Error> {
        let shared = match &self.shared {
            Some(shared) => shared
                .purge(&original_key(url))
                .await
                .map(drop)
                .map_err(|detail| Error::SharedPurge { detail }),
            None => Ok(()),
        };
        let local = self.purge_local(url).await;
        shared.and(local)
    }

    /// Drops an original and all its variants from this process's memory and disk tiers only
    /// (a purge another replica forwarded: it has purged the shared tier itself). Memory cannot
    /// fail; a disk purge that failed is [`Error::DiskPurge`] with its cause.
    pub async fn purge_local(&self, url: &Url) -> Result<(), Error> {
        let group = original_key(url);
        if let Some(m) = &self.memory {
            m.purge(&group, &format!("v{PIPELINE_VERSION}|{url}|"));
        }
        let Some(d) = &self.disk else {
            return Ok(());
        };
        let d = d.clone();
        match tokio::task::spawn_blocking(move || d.purge(&group)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::DiskPurge {
                detail: e.to_string(),
            }),
            Err(e) => Err(Error::DiskPurge {
                detail: format!("the purge task failed: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: &'static [u8]) -> Entry {
        let now = unix_now();
        Entry {
            body: bytes::Bytes::from_static(body),
            mime: "image/png".into(),
            etag: "\"e\"".into(),
            stored: now,
            expires: now + 60,
            negative: 0,
            upstream_etag: String::new(),
            upstream_last_modified: String::new(),
        }
    }

    #[tokio::test]
    async fn a_fill_that_panics_does_not_poison_its_key() {
        // A panic in a fill (the hook here is the fill itself) used to leave the key in flight
        // with a dead slot: every later request for it was a 500 until restart.
        let mut config = Config::default();
        config.cache.memory_bytes = crate::config::Bytes(0);
        config.cache.disk_bytes = crate::config::Bytes(0);
        let cache = Cache::open(&config, &crate::metrics::Metrics::new()).unwrap();
        let (_, boom) = cache
            .get_or_fill("o|k", "o|k", |_| async {
                panic!("injected: probe panicked")
            })
            .await;
        match boom {
            Err(e @ Error::Panicked { .. }) => {
                assert!(e.detail().is_some_and(|d| d.contains("injected")));
            }
            other => panic!("expected the caught panic, got {other:?}"),
        }
        let hit = cache
            .get_or_fill("o|k", "o|k", |_| async {
                Ok(Filled::Store(entry(b"png"), String::new()))
            })
            .await
            .1
            .unwrap();
        assert_eq!(&hit.entry.body[..], b"png");
        assert_eq!(hit.tier, Tier::Miss);
    }
}
