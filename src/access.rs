//! Who a request is and what became of it: the `X-Request-Id` each answer carries, and the one
//! access line written per request (SPEC §6), handed to `telemetry`'s logging thread as data.
//! The server calls both; nothing here routes, answers or counts.
//!
//! An id the client sent is kept when it is 1–128 characters of `[A-Za-z0-9._:-]` (a CDN's
//! own id, so its log and ours join on it); anything else is replaced by a fresh id. Fresh ids
//! are a random per-process prefix and a counter: unique across restarts and replicas without
//! a random draw per request.

use crate::{
    error::{Error, Severity},
    metrics::Route,
    telemetry::{self, Record, RequestId},
};
use http::{HeaderMap, HeaderValue, Method};
use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tracing::Level;

pub const REQUEST_ID: &str = "x-request-id";

/// Mints request ids: `{process prefix}-{counter}`, both in hex.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

impl RequestIds {
    /// The prefix mixes the OS-seeded hasher keys of `RandomState` with the start time, so two
    /// processes (replicas, or one process before and after a restart) differ.
    pub fn new() -> RequestIds {
        let mut h = RandomState::new().build_hasher();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        h.write_u128(now.as_nanos());
        h.write_u32(std::process::id());
        RequestIds {
            prefix: h.finish(),
            next: AtomicU64::new(1),
        }
    }

    /// The client's id when it is acceptable, else a fresh one.
    pub fn for_request(&self, headers: &HeaderMap) -> HeaderValue {
        match headers.get(REQUEST_ID) {
            Some(v) if acceptable(v.as_bytes()) => v.clone(),
            _ => self.fresh(),
        }
    }

    fn fresh(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:016x}-{n:x}", self.prefix);
        HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

/// 1–128 characters of `[A-Za-z0-9._:-]`.
fn acceptable(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// What the access line reports about one answered request.
#[derive(Debug)]
pub struct Line<'a> {
    pub request_id: &'a str,
    pub method: Method,
    pub route: Route,
    pub status: u16,
    /// The `X-Cache` value, when the answer has one.
    pub cache: Option<&'static str>,
    pub bytes: u64,
    /// When the answer was ready, and how long it took.
    pub at: Instant,
    pub took: Duration,
}

/// Writes the access line (target `imgrelay::access`) as a [`Record`] for the logging thread:
/// the request formats nothing. An error answer adds its stable code and its operator detail
/// and is logged at its severity's level. With `access` off only errors that are the server's
/// or the origin's doing are written, in the same shape.
pub fn log(line: Line<'_>, error: Option<&Error>, access: bool) {
    let level = match error.map(Error::severity) {
        Some(Severity::Server) => Level::ERROR,
        Some(Severity::Upstream) => Level::WARN,
        Some(Severity::Client) | None if access => Level::INFO,
        Some(Severity::Client) | None => return,
    };
    let enabled = match level {
        Level::ERROR => tracing::enabled!(target: "imgrelay::access", Level::ERROR),
        Level::WARN => tracing::enabled!(target: "imgrelay::access", Level::WARN),
        _ => tracing::enabled!(target: "imgrelay::access", Level::INFO),
    };
    if !enabled {
        return;
    }
    let (error, detail) = match error {
        Some(e) if level == Level::INFO => (Some(e.code()), None),
        Some(e) => (Some(e.code()), Some(e.detail().unwrap_or("").into())),
        None => (None, None),
    };
    let record = Record {
        at: line.at,
        took: line.took,
        level,
        request_id: RequestId::new(line.request_id),
        method: line.method,
        route: line.route,
        status: line.status,
        cache: line.cache,
        bytes: line.bytes,
        error,
        detail,
    };
    telemetry::access(record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_kept_only_when_well_formed() {
        let ids = RequestIds::new();
        let mut h = HeaderMap::new();
        for good in ["a", "cdn-1234:edge_7.x", &"x".repeat(128)] {
            h.insert(REQUEST_ID, HeaderValue::from_str(good).unwrap());
            assert_eq!(ids.for_request(&h), good);
        }
        for bad in [
            "",
            "has space",
            "semi;colon",
            "ünï",
            &"x".repeat(129),
            "a/b",
        ] {
            let v = HeaderValue::from_bytes(bad.as_bytes()).unwrap();
            h.insert(REQUEST_ID, v);
            let got = ids.for_request(&h);
            assert_ne!(got.as_bytes(), bad.as_bytes());
            assert!(acceptable(got.as_bytes()), "{got:?}");
        }
    }

    #[test]
    fn fresh_ids_differ_within_and_across_processes() {
        let (a, b) = (RequestIds::new(), RequestIds::new());
        let none = HeaderMap::new();
        let (a1, a2, b1) = (
            a.for_request(&none),
            a.for_request(&none),
            b.for_request(&none),
        );
        assert_ne!(a1, a2);
        assert_ne!(
            a1, b1,
            "two id sources (a restart, a replica) do not collide"
        );
        assert!(acceptable(a1.as_bytes()));
    }
}
