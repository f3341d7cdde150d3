//! The memory tier: a `moka` cache of entries weighted by their size in bytes
//! (`cache.memory_bytes`). Cloning it clones a handle, never the data.

use super::entry::Entry;
use moka::future::Cache;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Memory {
    cache: Cache<String, Arc<Entry>>,
}

impl Memory {
    pub fn new(max_bytes: u64) -> Memory {
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Arc<Entry>| {
                u32::try_from(k.len() + v.body.len() + v.mime.len() + v.etag.len() + 128)
                    .unwrap_or(u32::MAX)
            })
            .support_invalidation_closures()
            .build();
        Memory { cache }
    }

    pub async fn get(&self, key: &str) -> Option<Arc<Entry>> {
        self.cache.get(key).await
    }

    pub async fn put(&self, key: &str, entry: Arc<Entry>) {
        self.cache.insert(key.to_string(), entry).await;
    }

    /// Weighted size (bytes of bodies, keys and headers) and entry count, once moka has
    /// applied its pending inserts and evictions (its counts lag behind otherwise).
    pub async fn size(&self) -> (u64, u64) {
        self.cache.run_pending_tasks().await;
        (self.cache.weighted_size(), self.cache.entry_count())
    }

    /// Drops `original` and every key that starts with `variant_prefix`.
    pub fn purge(&self, original: &str, variant_prefix: &str) {
        let (o, v) = (original.to_string(), variant_prefix.to_string());
        let _ = self
            .cache
            .invalidate_entries_if(move |k, _| *k == o || k.starts_with(&v));
    }
}
