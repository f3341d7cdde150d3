//! `[cache]` and `[cache.shared]`: the tiers' sizes, lifetimes and the shared bucket.

use super::{Bytes, Dur, Secret};
use serde::{Deserialize, Serialize};
use std::{path::PathBuf, time::Duration};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cache {
    pub dir: PathBuf,
    pub memory_bytes: Bytes,
    pub disk_bytes: Bytes,
    pub negative_ttl: Dur,
    pub min_ttl: Dur,
    pub max_ttl: Dur,
    pub stale_while_revalidate: Dur,
    pub stale_if_error: Dur,
    /// `[cache.shared]`: the third tier, shared by a fleet of replicas.
    pub shared: SharedCache,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            dir: PathBuf::from("./cache"),
            memory_bytes: Bytes(256 << 20),
            disk_bytes: Bytes(4 << 30),
            negative_ttl: Dur(Duration::from_secs(60)),
            min_ttl: Dur(Duration::from_secs(3600)),
            max_ttl: Dur(Duration::from_secs(30 * 86_400)),
            stale_while_revalidate: Dur(Duration::from_secs(86_400)),
            stale_if_error: Dur(Duration::from_secs(7 * 86_400)),
            shared: SharedCache::default(),
        }
    }
}

/// `[cache.shared]` (SPEC §7, §8): an S3-compatible bucket behind memory and disk. Credentials
/// are not configuration: they come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and
/// `AWS_SESSION_TOKEN` when set).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharedCache {
    /// `s3://bucket` or `s3://bucket/prefix`; empty = the tier is off.
    pub url: String,
    /// The S3-compatible server (`http://127.0.0.1:9000`); empty = AWS for `region`.
    pub endpoint: String,
    pub region: String,
    /// Allows an `http://` endpoint.
    pub allow_http: bool,
    /// Bound of every bucket call; past it the call is a miss.
    pub timeout: Dur,
    /// Bytes of answers waiting to be written to the bucket; a write past it is dropped.
    pub queue_bytes: Bytes,
    /// The key of the MAC every object carries (at least 32 bytes, the same on every replica);
    /// required with the tier on. Objects sealed with another key are misses.
    pub key: Secret,
}

impl Default for SharedCache {
    fn default() -> Self {
        SharedCache {
            url: String::new(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            allow_http: false,
            timeout: Dur(Duration::from_secs(2)),
            queue_bytes: Bytes(64 << 20),
            key: Secret::default(),
        }
    }
}

impl SharedCache {
    pub fn is_on(&self) -> bool {
        !self.url.is_empty()
    }

    /// The bucket and the key prefix (without slashes at either end) of `url`, which
    /// [`Config::validate`] has checked.
    pub fn bucket_and_prefix(&self) -> Option<(String, String)> {
        let u = url::Url::parse(&self.url).ok()?;
        let bucket = u.host_str().filter(|b| !b.is_empty())?.to_string();
        Some((bucket, u.path().trim_matches('/').to_string()))
    }
}
