//! The known sequence of operator-visible events and a reader of `/metrics` scrapes, shared
//! by the integration suite (exact counter deltas) and the e2e suite (`promtool check metrics`).

#![allow(dead_code)]

use crate::support::*;
use imgrelay::config::{Bytes, Dur};
use std::{
    collections::HashMap,
    net::SocketAddr,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

/// One scrape: every sample line, keyed by its name and labels as written.
#[derive(Debug)]
pub struct Scrape(HashMap<String, f64>);

impl Scrape {
    pub async fn take(addr: SocketAddr) -> Scrape {
        let answer = request(addr, "GET", "/metrics", &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        Scrape::parse(&answer.text())
    }

    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("sample line");
                (series.to_string(), value.parse().expect("sample value"))
            })
            .collect();
        Scrape(samples)
    }

    /// A sample's value; absent samples are 0 (a label value never seen).
    pub fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    pub fn has(&self, series: &str) -> bool {
        self.0.contains_key(series)
    }
}

/// Asserts `after - before` for each series.
fn assert_deltas(before: &Scrape, after: &Scrape, expected: &[(&str, f64)]) {
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(s, want)| after.get(s) - before.get(s) != *want)
        .map(|(s, want)| format!("{s}: +{} (want +{want})", after.get(s) - before.get(s)))
        .collect();
    assert!(wrong.is_empty(), "wrong deltas:\n{}", wrong.join("\n"));
}

/// Scrapes until `series` reaches `value` (an event that happens on another task).
async fn wait_for(addr: SocketAddr, series: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Scrape::take(addr).await.get(series) < value {
        assert!(Instant::now() < deadline, "{series} never reached {value}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn start_cached(dir: &Path) -> Relay {
    // A server that just stopped may still be releasing the directory lock: retry briefly.
    for _ in 0..100 {
        let resolver = Arc::new(imgrelay::fetch::connector::StaticResolver::default());
        let started = Relay::try_start_with(resolver, |c| {
            c.cache.dir = dir.to_path_buf();
            c.cache.memory_bytes = Bytes(64 << 20);
            c.cache.disk_bytes = Bytes(64 << 20);
            c.transform.queue = 1;
            c.transform.timeout = Dur(Duration::from_secs(60));
        })
        .await;
        if let Ok(relay) = started {
            return relay;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot start on {}", dir.display());
}

const BURST: usize = 5;

/// The known sequence of issue 17: a miss, a memory hit, a variant, an upstream 404, a
/// coalesced burst with a 503 from the full queue while its leader fetches, and a disk hit
/// after a restart. Returns the last scrape of each server, for the e2e check too.
pub async fn known_sequence(dir: &Path) -> (String, String) {
    let (open, gate) = tokio::sync::watch::channel(false);
    let image = jpeg(200, 120);
    let origin = Origin::start(move |seen| {
        let ok = Reply::ok("image/jpeg", &image).with_header("Cache-Control", "max-age=86400");
        match seen.target.as_str() {
            "/gone.jpg" => Reply::status(404),
            "/burst.jpg" => Reply::Gated(gate.clone(), Box::new(ok)),
            _ => ok,
        }
    })
    .await;
    let relay = Arc::new(start_cached(dir).await);
    let pass = |path: &str| format!("/?{}", origin.url(path));
    let before = Scrape::take(relay.addr).await;

    let miss = relay.get(&pass("/a.jpg")).await;
    assert_eq!((miss.status, miss.header("x-cache")), (200, Some("MISS")));
    let hit = relay.get(&pass("/a.jpg")).await;
    assert_eq!(hit.header("x-cache"), Some("HIT-MEMORY"));
    let variant = relay
        .get(&format!("/?url={}&w=50", origin.url("/a.jpg")))
        .await;
    assert_eq!(
        (variant.status, variant.header("x-cache")),
        (200, Some("MISS"))
    );
    let timing = variant.header("server-timing").unwrap();
    for stage in ["queue;dur=", "decode;dur=", "resize;dur=", "encode;dur="] {
        assert!(timing.contains(stage), "{timing}");
    }
    let gone = relay.get(&pass("/gone.jpg")).await;
    assert_eq!((gone.status, gone.header("x-cache")), (404, Some("MISS")));

    let burst: Vec<_> = (0..BURST)
        .map(|_| {
            let (relay, target) = (relay.clone(), pass("/burst.jpg"));
            tokio::spawn(async move { relay.get(&target).await })
        })
        .collect();
    let followers = "imgrelay_coalesced_total{role=\"follower\"}";
    wait_for(
        relay.addr,
        followers,
        before.get(followers) + (BURST - 1) as f64,
    )
    .await;
    // The burst's leader holds the one queue slot while the origin holds its answer.
    let busy = relay.get(&pass("/other.jpg")).await;
    assert_eq!(busy.status, 503);
    open.send(true).unwrap();
    for b in burst {
        let b = b.await.unwrap();
        assert_eq!((b.status, b.header("x-cache")), (200, Some("MISS")));
    }

    let after = Scrape::take(relay.addr).await;
    assert_deltas(
        &before,
        &after,
        &[
            (
                "imgrelay_requests_total{route=\"original\",status=\"200\"}",
                2.0 + BURST as f64,
            ),
            (
                "imgrelay_requests_total{route=\"original\",status=\"404\"}",
                1.0,
            ),
            (
                "imgrelay_requests_total{route=\"original\",status=\"503\"}",
                1.0,
            ),
            (
                "imgrelay_requests_total{route=\"image\",status=\"200\"}",
                1.0,
            ),
            (
                "imgrelay_request_duration_seconds_count{route=\"original\"}",
                4.0 + BURST as f64,
            ),
            (
                "imgrelay_cache_results_total{result=\"miss\"}",
                4.0 + BURST as f64,
            ),
            ("imgrelay_cache_results_total{result=\"hit-memory\"}", 1.0),
            ("imgrelay_cache_results_total{result=\"hit-disk\"}", 0.0),
            ("imgrelay_upstream_requests_total{outcome=\"ok\"}", 2.0),
            (
                "imgrelay_upstream_requests_total{outcome=\"not_found\"}",
                1.0,
            ),
            ("imgrelay_upstream_requests_total{outcome=\"error\"}", 0.0),
            // a.jpg, its variant, gone.jpg, the burst, other.jpg (refused inside its fill)
            ("imgrelay_coalesced_total{role=\"leader\"}", 5.0),
            (followers, (BURST - 1) as f64),
            ("imgrelay_rejected_total{reason=\"queue_full\"}", 1.0),
            (
                "imgrelay_stage_duration_seconds_count{stage=\"fetch\"}",
                3.0,
            ),
            (
                "imgrelay_stage_duration_seconds_count{stage=\"queue\"}",
                1.0,
            ),
            (
                "imgrelay_stage_duration_seconds_count{stage=\"decode\"}",
                1.0,
            ),
            (
                "imgrelay_stage_duration_seconds_count{stage=\"encode\"}",
                1.0,
            ),
        ],
    );
    assert_eq!(
        origin.seen().len(),
        3,
        "a.jpg, gone.jpg, burst.jpg: once each"
    );
    assert!(after.get("imgrelay_cache_entries{tier=\"memory\"}") >= 1.0);
    assert!(after.get("imgrelay_cache_bytes{tier=\"disk\"}") > 0.0);
    let first = request(relay.addr, "GET", "/metrics", &[]).await.text();
    Arc::into_inner(relay)
        .expect("no task holds the relay")
        .stop()
        .await;

    let relay = start_cached(dir).await;
    let disk = relay.get(&pass("/a.jpg")).await;
    assert_eq!(disk.header("x-cache"), Some("HIT-DISK"));
    let restarted = Scrape::take(relay.addr).await;
    for (series, want) in [
        ("imgrelay_cache_results_total{result=\"hit-disk\"}", 1.0),
        ("imgrelay_cache_results_total{result=\"miss\"}", 0.0),
        (
            "imgrelay_requests_total{route=\"original\",status=\"200\"}",
            1.0,
        ),
        ("imgrelay_upstream_requests_total{outcome=\"ok\"}", 0.0),
    ] {
        assert_eq!(restarted.get(series), want, "{series}");
    }
    let second = request(relay.addr, "GET", "/metrics", &[]).await.text();
    relay.stop().await;
    (first, second)
}
