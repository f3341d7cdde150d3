//! The shared cache tier against a real S3-compatible server (`s3s-fs`, installed by
//! `tests/e2e/setup.sh`) on loopback: replicas with their own memory and disk sharing one
//! bucket, damaged objects, the bucket stopped and restarted, and purge; `trust` has forged
//! and swapped objects, key rotation, and the tier's exported timings and drops. Behind the `e2e`
//! feature; without `s3s-fs` every test fails and says how to install it.

#![allow(clippy::unwrap_used)]

#[path = "../it/support.rs"]
mod support;

mod bucket;
#[path = "../it/scrape.rs"]
mod scrape;
mod trust;

use bucket::S3Server;
use imgrelay::{config::Config, fetch::connector::StaticResolver, AppState};
use scrape::Scrape;
use std::{sync::Arc, time::Duration};
use support::*;
use tokio::{net::TcpListener, sync::oneshot};

const TOKEN: &str = "e2e-admin-token-e2e-admin-token";

/// One imgrelay replica in-process, with its own memory and disk tiers (or none) and the
/// shared bucket of `s3`; its state stays reachable for the shared tier's counters.
struct Replica {
    addr: std::net::SocketAddr,
    state: Arc<AppState>,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl Replica {
    async fn start(s3: &S3Server, local_tiers: bool) -> Replica {
        Replica::start_with(s3, local_tiers, |_| {}).await
    }

    /// [`Replica::start`], then `configure` has the last word.
    async fn start_with(
        s3: &S3Server,
        local_tiers: bool,
        configure: impl FnOnce(&mut Config),
    ) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let mut config: Config = test_config();
        s3.configure(&mut config);
        config.server.admin_token = imgrelay::config::Secret(TOKEN.into());
        if local_tiers {
            config.cache.dir = dir.path().to_path_buf();
            config.cache.memory_bytes = imgrelay::config::Bytes(64 << 20);
            config.cache.disk_bytes = imgrelay::config::Bytes(64 << 20);
        }
        configure(&mut config);
        config.validate().expect("test config is valid");
        let state = AppState::with_resolver(config, Arc::new(StaticResolver::default())).unwrap();
        let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(imgrelay::server::serve(
            listener,
            None,
            state.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        Replica {
            addr,
            state,
            _dir: dir,
            _stop: tx,
        }
    }

    async fn get(&self, target: &str) -> Answer {
        request(self.addr, "GET", target, &[]).await
    }

    async fn purge(&self, source: &str) -> Answer {
        let target = format!("/purge?url={}", encode(source));
        let auth = format!("Bearer {TOKEN}");
        request(self.addr, "POST", &target, &[("Authorization", &auth)]).await
    }

    /// This replica's `/metrics` (served on its one listener: no admin listener here).
    async fn scrape(&self) -> Scrape {
        let answer = self.get("/metrics").await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        Scrape::parse(&answer.text())
    }

    /// `(op, total)` of the shared tier's error counters.
    fn shared_errors(&self) -> [(&'static str, u64); 4] {
        self.state.cache.shared_stats().unwrap().errors()
    }
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn variant(source: &str, params: &str) -> String {
    format!("/?url={}&{params}", encode(source))
}

/// An origin serving one JPEG at every path; counts what it was asked.
async fn jpeg_origin() -> Origin {
    let body = jpeg(320, 240);
    Origin::start(move |_| Reply::ok("image/jpeg", &body)).await
}

fn x_cache(a: &Answer) -> &str {
    a.header("x-cache").unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_answers_from_the_bucket_and_the_origin_is_asked_once() {
    let s3 = S3Server::start().await;
    let origin = jpeg_origin().await;
    let src = origin.url("/photo.jpg");
    let (a, b) = (
        Replica::start(&s3, true).await,
        Replica::start(&s3, true).await,
    );

    let first = a.get(&variant(&src, "w=200&output=webp")).await;
    assert_eq!(
        (first.status, x_cache(&first)),
        (200, "MISS"),
        "{}",
        first.text()
    );
    s3.wait_for_objects(&src, 2).await; // the original and the variant

    let shared = b.get(&variant(&src, "w=200&output=webp")).await;
    assert_eq!((shared.status, x_cache(&shared)), (200, "HIT-SHARED"));
    assert_eq!(shared.body, first.body, "the same bytes");
    assert_eq!(shared.header("etag"), first.header("etag"));
    assert_eq!(decoded_size(&shared.body), (200, 150));
    let again = b.get(&variant(&src, "w=200&output=webp")).await;
    assert_eq!(x_cache(&again), "HIT-MEMORY", "promoted");

    // A new size on B: rendered from the shared original, without the origin.
    let smaller = b.get(&variant(&src, "w=100&output=png")).await;
    assert_eq!((smaller.status, x_cache(&smaller)), (200, "MISS"));
    assert_eq!(decoded_size(&smaller.body), (100, 75));
    let timing = smaller.header("server-timing").unwrap_or("");
    assert!(
        timing.contains("shared_get") && !timing.contains("fetch"),
        "{timing}"
    );
    assert_eq!(origin.seen().len(), 1, "the origin saw exactly one request");
    assert_eq!(b.shared_errors().map(|(_, n)| n), [0; 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_objects_in_the_bucket_are_never_served() {
    let s3 = S3Server::start().await;
    let origin = jpeg_origin().await;
    let src = origin.url("/damaged.jpg");
    let a = Replica::start(&s3, true).await;
    let good = a.get(&variant(&src, "w=160&output=png")).await;
    assert_eq!(x_cache(&good), "MISS");
    s3.wait_for_objects(&src, 2).await;

    // One bit of the variant flipped, the original cut short.
    let mut damaged = Vec::new();
    for (path, bytes) in s3.objects(&src).await {
        let mut bad = bytes.to_vec();
        if path.as_ref().ends_with("/o") {
            bad.truncate(bad.len() / 2);
        } else {
            let last = bad.len() - 1;
            bad[last] ^= 0x01;
        }
        s3.put(&path, bad.clone()).await;
        damaged.push((path, bad.into()));
    }

    let b = Replica::start(&s3, true).await;
    let again = b.get(&variant(&src, "w=160&output=png")).await;
    assert_eq!(
        (again.status, x_cache(&again)),
        (200, "MISS"),
        "re-rendered"
    );
    assert_eq!(
        again.body, good.body,
        "the intact rendering, not the damaged object"
    );
    assert_eq!(origin.seen().len(), 2, "the cut original was fetched again");

    // The next fill overwrote both objects: a third replica is served from the bucket.
    s3.wait_until_changed(&damaged).await;
    let c = Replica::start(&s3, true).await;
    let healed = c.get(&variant(&src, "w=160&output=png")).await;
    assert_eq!((x_cache(&healed), &healed.body), ("HIT-SHARED", &good.body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_bucket_fails_open_then_is_skipped_and_hits_resume_after_restart() {
    let mut s3 = S3Server::start().await;
    let origin = jpeg_origin().await;
    let src = origin.url("/outage.jpg");
    let a = Replica::start(&s3, true).await;
    assert_eq!(x_cache(&a.get(&variant(&src, "w=50")).await), "MISS");
    s3.wait_for_objects(&src, 2).await;

    s3.stop().await;
    // B keeps no local copy, so every request goes to the (stopped) bucket first.
    let b = Replica::start(&s3, false).await;
    for i in 0..6 {
        let answer = b.get(&variant(&src, "w=50")).await;
        assert_eq!(
            (answer.status, x_cache(&answer)),
            (200, "MISS"),
            "request {i}"
        );
        assert_eq!(decoded_size(&answer.body).0, 50);
    }
    let [(_, get), (_, put), _, (_, skipped)] = b.shared_errors();
    assert!(
        get >= 1 && get + put >= 5,
        "errors counted: get {get} put {put}"
    );
    assert!(skipped >= 1, "then the bucket is skipped");
    let errors_before = get + put;
    for _ in 0..3 {
        assert_eq!(b.get(&variant(&src, "w=50")).await.status, 200);
    }
    let [(_, get), (_, put), _, (_, skipped_after)] = b.shared_errors();
    // Inside the window nothing waits for the bucket (one probe, should the window end).
    assert!(
        get + put <= errors_before + 1,
        "{get} + {put} > {errors_before} + 1"
    );
    assert!(skipped_after > skipped);

    // A purge cannot skip the bucket silently: the operator is told to retry.
    let purge = b.purge(&src).await;
    assert_eq!(purge.status, 502, "{}", purge.text());
    assert_eq!(
        purge.header("x-imgrelay-error"),
        Some("shared_purge_failed")
    );
    assert_eq!(b.shared_errors()[2], ("delete", 1));

    s3.restart().await;
    // After the skip window one probe goes through; from then on B reads the bucket again.
    let mut resumed = None;
    for _ in 0..300 {
        let answer = b.get(&variant(&src, "w=50")).await;
        assert_eq!(answer.status, 200);
        if x_cache(&answer) == "HIT-SHARED" {
            resumed = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resumed = resumed.expect("shared hits resume within the skip window and a probe");
    assert_eq!(decoded_size(&resumed.body).0, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_through_either_replica_removes_the_sources_objects() {
    let s3 = S3Server::start().await;
    let origin = jpeg_origin().await;
    let (src, other) = (origin.url("/purged.jpg"), origin.url("/kept.jpg"));
    let (a, b) = (
        Replica::start(&s3, true).await,
        Replica::start(&s3, true).await,
    );
    for params in ["w=40", "w=80&output=webp"] {
        assert_eq!(a.get(&variant(&src, params)).await.status, 200);
    }
    assert_eq!(a.get(&variant(&other, "w=40")).await.status, 200);
    s3.wait_for_objects(&src, 3).await;
    s3.wait_for_objects(&other, 2).await;

    let purged = b.purge(&src).await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    assert!(
        s3.objects(&src).await.is_empty(),
        "B's purge emptied the prefix"
    );
    assert_eq!(
        s3.objects(&other).await.len(),
        2,
        "another source is untouched"
    );

    assert_eq!(b.get(&variant(&src, "w=40")).await.status, 200);
    s3.wait_for_objects(&src, 2).await;
    let purged = a.purge(&src).await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    assert!(s3.objects(&src).await.is_empty(), "A's purge too");
    let fresh = Replica::start(&s3, true).await;
    assert_eq!(x_cache(&fresh.get(&variant(&src, "w=40")).await), "MISS");
}
