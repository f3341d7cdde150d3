//! imgrelay behind the shipped `deploy/varnish/imgrelay.vcl` (with the `imgrelay-common.vcl` it
//! includes), in a real `varnishd` (Debian `varnish` + `varnish-modules`): Varnish caches what
//! imgrelay says it may, keeps one copy per Accept bucket for `output=auto`, revalidates by
//! ETag, serves stale copies while imgrelay is down, and forgets exactly one source when
//! imgrelay's `/purge` sends it the source's xkey. `Varnish::run` starts any shipped VCL.

use crate::{
    stack::{free_port, image_answers, Varnish},
    support::*,
};
use imgrelay::config::{Config, Dur, Secret};
use std::{net::SocketAddr, time::Duration};

/// `X-Varnish` holds two ids on a cache hit (this request's and the one that stored the
/// object), one on a miss or pass.
pub(crate) fn varnish_hit(a: &Answer) -> bool {
    a.header("x-varnish")
        .unwrap_or_else(|| panic!("not through Varnish: {:?}", a.headers))
        .split_whitespace()
        .count()
        == 2
}

fn sniff(body: &[u8]) -> &'static str {
    if body.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "jpeg"
    } else if body.len() > 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WEBP" {
        "webp"
    } else if body.len() > 12 && &body[4..8] == b"ftyp" && &body[8..12] == b"avif" {
        "avif"
    } else {
        "other"
    }
}

async fn image_origin() -> Origin {
    Origin::start(|_| {
        Reply::ok("image/jpeg", &jpeg(120, 80)).with_header("Cache-Control", "max-age=86400")
    })
    .await
}

#[tokio::test]
async fn a_second_request_is_a_varnish_hit_with_its_own_request_id() {
    let origin = image_origin().await;
    let relay = Relay::start(|c| c.server.admin_token = Secret("e2e-token".into())).await;
    let varnish = Varnish::start(relay.addr).await;
    let target = format!("/?url={}&w=40", origin.url("/a.jpg"));

    let first = varnish.get(&target, &[("X-Request-Id", "first-1")]).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(!varnish_hit(&first));
    assert_eq!(first.header("x-cache"), Some("MISS"));
    assert_eq!(first.header("x-request-id"), Some("first-1"));
    assert_eq!(
        first.header("xkey"),
        None,
        "the surrogate key stays in Varnish"
    );
    // Cookies and credentials on image URLs neither reach imgrelay nor stop caching.
    let second = varnish
        .get(
            &target,
            &[
                ("X-Request-Id", "second-2"),
                ("Cookie", "session=1"),
                ("Authorization", "Basic eDp5"),
            ],
        )
        .await;
    assert!(varnish_hit(&second), "{:?}", second.headers);
    assert_eq!(
        second.header("x-cache"),
        Some("HIT-CDN"),
        "Varnish's hit is not imgrelay's stored MISS"
    );
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("x-request-id"), Some("second-2"));
    let third = varnish.get(&target, &[("X-Request-Id", "bad id!")]).await;
    assert!(varnish_hit(&third));
    let own = third.header("x-request-id").unwrap();
    assert!(
        own.bytes().all(|b| b.is_ascii_digit()),
        "Varnish's xid: {own}"
    );
    assert_eq!(origin.seen().len(), 1);

    // The query string is the key, exactly: another spelling is another object.
    let respelled = format!("/?w=40&url={}", origin.url("/a.jpg"));
    assert!(!varnish_hit(&varnish.get(&respelled, &[]).await));

    let metrics = varnish.get("/metrics", &[]).await;
    assert_eq!(metrics.status, 404);
    assert_eq!(
        relay.get("/metrics").await.status,
        200,
        "imgrelay serves it"
    );
    // Admin endpoints pass, with their token, every time.
    let purge = format!("/purge?url={}", origin.url("/a.jpg"));
    for _ in 0..2 {
        let a = request(
            varnish.addr,
            "POST",
            &purge,
            &[
                ("Authorization", "Bearer e2e-token"),
                ("Content-Length", "0"),
            ],
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text());
        assert!(!varnish_hit(&a));
    }
    let no_key = request(varnish.addr, "PURGE", "/", &[]).await;
    assert_eq!(no_key.status, 400);
}

#[tokio::test]
async fn output_auto_gives_each_accept_bucket_its_own_bytes() {
    let origin = image_origin().await;
    let relay = Relay::start(|_| {}).await;
    let varnish = Varnish::start(relay.addr).await;
    let target = format!("/?url={}&w=60&output=auto", origin.url("/a.jpg"));
    let chromium = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    let clients = [
        (chromium, "avif"),
        ("image/webp,*/*", "webp"),
        ("image/jpeg", "jpeg"),
        ("image/avif;q=0, image/webp", "webp"),
        ("*/*", "jpeg"),
    ];
    let mut first_bytes = std::collections::HashMap::new();
    // Two rounds in opposite orders: whoever fills a bucket, each client gets its own format.
    for round in [clients.to_vec(), clients.iter().rev().cloned().collect()] {
        for (accept, want) in round {
            let a = varnish.get(&target, &[("Accept", accept)]).await;
            assert_eq!(a.status, 200, "{accept}: {}", a.text());
            assert_eq!(sniff(&a.body), want, "Accept: {accept}");
            assert_eq!(a.header("vary"), Some("Accept"));
            let first = first_bytes.entry(want).or_insert_with(|| a.body.clone());
            assert_eq!(*first, a.body, "{accept}: same bytes as its bucket");
        }
    }
    // Three buckets, three fills: everything else was a hit.
    assert_eq!(image_answers(relay.addr).await, 3.0);

    // A URL without output=auto drops Accept: one object for everyone.
    let fixed = format!("/?url={}&w=60&output=webp", origin.url("/a.jpg"));
    let a = varnish.get(&fixed, &[("Accept", chromium)]).await;
    let b = varnish.get(&fixed, &[("Accept", "image/jpeg")]).await;
    assert!(!varnish_hit(&a) && varnish_hit(&b));
    assert_eq!(a.body, b.body);
}

fn short_lived(c: &mut Config) {
    c.cache.min_ttl = Dur(Duration::from_secs(1));
    c.cache.max_ttl = Dur(Duration::from_secs(1));
}

/// Asks until `done` holds for an answer; the object's expiry is the only clock involved.
async fn until(varnish: &Varnish, target: &str, mut done: impl FnMut(&Answer) -> bool) -> Answer {
    for _ in 0..200 {
        let a = varnish.get(target, &[]).await;
        if done(&a) {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no such answer from Varnish within 20 s: {target}");
}

fn counted(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

async fn count_304(relay: SocketAddr) -> f64 {
    let metrics = request(relay, "GET", "/metrics", &[]).await.text();
    counted(
        &metrics,
        "imgrelay_requests_total{route=\"image\",status=\"304\"}",
    )
}

#[tokio::test]
async fn an_expired_object_is_revalidated_with_its_etag() {
    let origin = image_origin().await;
    let relay = Relay::start(|c| {
        short_lived(c);
        c.cache.stale_while_revalidate = Dur(Duration::ZERO);
    })
    .await;
    let varnish = Varnish::start(relay.addr).await;
    let target = format!("/?url={}&w=30", origin.url("/a.jpg"));
    let first = varnish.get(&target, &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(count_304(relay.addr).await, 0.0);
    // Once its second has passed, Varnish asks imgrelay with If-None-Match and gets a 304;
    // every answer meanwhile is the same image.
    let mut revalidated = false;
    for _ in 0..200 {
        if count_304(relay.addr).await > 0.0 {
            revalidated = true;
            break;
        }
        let a = varnish.get(&target, &[]).await;
        assert_eq!((a.status, &a.body), (200, &first.body));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(revalidated, "no 304 from imgrelay within 20 s");
    let after = varnish.get(&target, &[]).await;
    assert_eq!(after.header("etag"), first.header("etag"));
    assert_eq!((after.status, after.body), (200, first.body));
}

#[tokio::test]
async fn with_imgrelay_stopped_varnish_serves_stale_within_grace() {
    let origin = image_origin().await;
    let relay = Relay::start(short_lived).await;
    let backend = relay.addr;
    let varnish = Varnish::start(backend).await;
    let target = format!("/?url={}&w=30", origin.url("/a.jpg"));
    let first = varnish.get(&target, &[]).await;
    assert_eq!(first.status, 200);
    relay.stop().await;
    assert!(
        tokio::net::TcpStream::connect(backend).await.is_err(),
        "imgrelay is down"
    );
    // Past its one-second max-age the object is stale; Varnish still answers with it.
    let stale = until(&varnish, &target, |a| {
        assert_eq!(a.status, 200, "{}", a.text());
        a.header("age").and_then(|s| s.parse::<u64>().ok()) > Some(1)
    })
    .await;
    assert_eq!(stale.body, first.body);
}

#[tokio::test]
async fn purge_through_imgrelay_drops_one_source_from_varnish() {
    let origin = image_origin().await;
    // Varnish needs imgrelay's port and imgrelay Varnish's: pick Varnish's first.
    let varnish_addr = free_port();
    let relay = Relay::start(|c| {
        c.server.admin_token = Secret("e2e-token".into());
        c.cdn.purge_urls = vec![format!("http://{varnish_addr}/")];
    })
    .await;
    let varnish = Varnish::start_on(relay.addr, varnish_addr).await;
    let (a, b) = (origin.url("/a.jpg"), origin.url("/b.jpg"));
    let a_urls = [
        format!("/?{a}"),
        format!("/?url={a}&w=20"),
        format!("/?url={a}&w=30&output=webp"),
    ];
    let b_urls = [format!("/?url={b}&w=20")];
    for t in a_urls.iter().chain(&b_urls) {
        assert!(!varnish_hit(&varnish.get(t, &[]).await));
        assert!(varnish_hit(&varnish.get(t, &[]).await));
    }
    let purge = format!(
        "/purge?url={}",
        form_urlencoded::byte_serialize(a.as_bytes()).collect::<String>()
    );
    let answer = request(
        relay.addr,
        "POST",
        &purge,
        &[
            ("Authorization", "Bearer e2e-token"),
            ("Content-Length", "0"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.text().contains("purged (200)"), "{}", answer.text());
    for t in &a_urls {
        let again = varnish.get(t, &[]).await;
        assert_eq!(again.status, 200);
        assert!(!varnish_hit(&again), "{t} was purged");
    }
    for t in &b_urls {
        assert!(varnish_hit(&varnish.get(t, &[]).await), "{t} was not");
    }
}
