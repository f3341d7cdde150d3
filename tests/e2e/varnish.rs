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
    let token = [("X-Imgrelay-Purge-Token", PURGE_TOKEN)];
    let no_key = request(varnish.addr, "PURGE", "/", &token).await;
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
        // Safari lists WebP first; imgrelay prefers AVIF whatever the order or weights.
        (
            "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,\
             image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
            "avif",
        ),
        ("image/webp;q=0.9, IMAGE/AVIF;q=0.5", "avif"),
        ("image/avif;q=0;level=1, image/webp", "webp"),
        ("image/avif ; q=0.0, image/jpeg", "jpeg"),
    ];
    let mut first_bytes = std::collections::HashMap::new();
    // Two rounds in opposite orders: whoever fills a bucket, each client gets its own format.
    for round in [clients.to_vec(), clients.iter().rev().cloned().collect()] {
        for (accept, want) in round {
            let a = varnish.get(&target, &[("Accept", accept)]).await;
            assert_eq!(a.status, 200, "{accept}: {}", a.text());
            assert_eq!(sniff(&a.body), want, "Accept: {accept}");
            let direct = request(relay.addr, "GET", &target, &[("Accept", accept)]).await;
            assert_eq!(sniff(&direct.body), want, "directly, Accept: {accept}");
            assert_eq!(a.header("vary"), Some("Accept"));
            let first = first_bytes.entry(want).or_insert_with(|| a.body.clone());
            assert_eq!(*first, a.body, "{accept}: same bytes as its bucket");
        }
    }
    // Three buckets, three fills: everything else was a hit (or asked imgrelay directly).
    let direct = 2.0 * clients.len() as f64;
    assert_eq!(image_answers(relay.addr).await, 3.0 + direct);

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
        c.cdn.purge_token = Secret(PURGE_TOKEN.into());
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

/// Referers as readers' browsers, apps, proxies and attackers send them, and what imgrelay's
/// hotlink rule (`good.example` and `bücher.example` allowed) answers to each: the host as a
/// browser reads the URL decides, nothing else.
const REFERERS: &[(Option<&str>, u16)] = &[
    (None, 200),
    (Some("https://good.example/2024/05/post.html"), 200),
    (Some("HTTPS://GOOD.EXAMPLE/Post"), 200),
    (Some("https://good.example:8443/p?x=1"), 200),
    (Some("http://good.example./p"), 200),
    (Some("https://evil.example@good.example/"), 200),
    (Some("https://good.example\\@evil.example/"), 200),
    (Some("https://good.example@evil.example/"), 403),
    (Some("https://good.example:x@evil.example/"), 403),
    (Some("https://evil.example\\.good.example/"), 403),
    (Some("https://good.example%2eevil.example/"), 403),
    (Some("https://good.example.evil.example/"), 403),
    (Some("https://evil.example/good.example"), 403),
    (Some("https://evil.example/?https://good.example/"), 403),
    (Some("https://xn--bcher-kva.example/"), 200),
    (Some("https://bücher.example/"), 200),
    (Some("https://BÜCHER.example/"), 200),
    (Some("https://bucher.example/"), 403),
    (Some("android-app://good.example/"), 403),
    (Some("null"), 403),
    (Some(""), 403),
];

fn with_referer(referer: Option<&str>) -> Vec<(&str, &str)> {
    referer.map(|r| vec![("Referer", r)]).unwrap_or_default()
}

#[tokio::test]
async fn the_hotlink_rule_holds_on_varnish_hits_stale_copies_and_304s() {
    let origin = image_origin().await;
    let relay = Relay::start(|c| {
        short_lived(c);
        c.security.allowed_referers = vec![
            "good.example".parse().unwrap(),
            "xn--bcher-kva.example".parse().unwrap(),
        ];
    })
    .await;
    let backend = relay.addr;
    let varnish = Varnish::start(backend).await;
    let target = format!("/?url={}&w=40", origin.url("/a.jpg"));
    let good = [("Referer", "https://good.example/post")];
    let filled = varnish.get(&target, &good).await;
    assert_eq!(filled.status, 200, "{}", filled.text());
    assert!(varnish_hit(&varnish.get(&target, &good).await));

    // The same verdict directly and through Varnish, whose cache now holds the image.
    for (referer, want) in REFERERS {
        let headers = with_referer(*referer);
        let direct = request(backend, "GET", &target, &headers).await;
        assert_eq!(direct.status, *want, "directly, Referer {referer:?}");
        let through = varnish.get(&target, &headers).await;
        assert_eq!(
            through.status, *want,
            "through Varnish, Referer {referer:?}"
        );
        if *want == 200 {
            assert_eq!(through.body, filled.body);
        }
    }

    // A conditional request is no way around it: only an allowed Referer gets its 304.
    let etag = filled.header("etag").unwrap();
    let mut headers = vec![("If-None-Match", etag)];
    assert_eq!(varnish.get(&target, &headers).await.status, 304);
    headers.push(("Referer", "https://evil.example/"));
    assert_eq!(varnish.get(&target, &headers).await.status, 403);

    // With imgrelay down, the stale copy goes to the Referer it was made for, to no other.
    relay.stop().await;
    let stale = until(&varnish, &target, |a| {
        a.header("age").and_then(|s| s.parse::<u64>().ok()) > Some(1)
    })
    .await;
    assert_eq!(stale.status, 200, "no Referer: served from the stale copy");
    let good_stale = varnish.get(&target, &good).await;
    assert_eq!((good_stale.status, &good_stale.body), (200, &filled.body));
    for (referer, want) in REFERERS {
        if *want == 403 {
            let a = varnish.get(&target, &with_referer(*referer)).await;
            assert_ne!(a.status, 200, "stale copy for Referer {referer:?}");
            assert_ne!(a.body, filled.body);
        }
    }
}

#[tokio::test]
async fn a_purge_without_the_token_is_refused_even_from_loopback() {
    let origin = image_origin().await;
    let relay = Relay::start(|_| {}).await;
    let varnish = Varnish::start(relay.addr).await;
    let target = format!("/?url={}&w=40", origin.url("/a.jpg"));
    let xkey = relay.get(&target).await.header("xkey").unwrap().to_string();
    assert!(!varnish_hit(&varnish.get(&target, &[]).await));
    assert!(varnish_hit(&varnish.get(&target, &[]).await));

    // Every reader behind a TLS terminator on this host comes from 127.0.0.1, like imgrelay.
    let wrong = format!("{PURGE_TOKEN}x");
    for token in [
        None,
        Some(""),
        Some(wrong.as_str()),
        Some(&PURGE_TOKEN[1..]),
    ] {
        let mut headers = vec![("xkey", xkey.as_str())];
        headers.extend(token.map(|t| ("X-Imgrelay-Purge-Token", t)));
        let a = request(varnish.addr, "PURGE", "/", &headers).await;
        assert_eq!(a.status, 403, "token {token:?}");
        assert!(varnish_hit(&varnish.get(&target, &[]).await), "{token:?}");
    }
    let headers = [
        ("xkey", xkey.as_str()),
        ("X-Imgrelay-Purge-Token", PURGE_TOKEN),
    ];
    assert_eq!(
        request(varnish.addr, "PURGE", "/", &headers).await.status,
        200
    );
    assert!(!varnish_hit(&varnish.get(&target, &[]).await), "purged");

    // A Varnish started without a token refuses every PURGE, an empty token included.
    let tokenless = Varnish::start_without_token(relay.addr).await;
    assert!(!varnish_hit(&tokenless.get(&target, &[]).await));
    for token in ["", PURGE_TOKEN] {
        let headers = [("xkey", xkey.as_str()), ("X-Imgrelay-Purge-Token", token)];
        let a = request(tokenless.addr, "PURGE", "/", &headers).await;
        assert_eq!(a.status, 403, "token {token:?}");
    }
    assert!(varnish_hit(&tokenless.get(&target, &[]).await));
}

#[tokio::test]
async fn no_store_answers_are_not_stored_and_negative_ones_live_their_max_age() {
    let image = jpeg(60, 40);
    let origin = Origin::start(move |seen| match seen.target.starts_with("/gone") {
        true => Reply::status(404),
        false => Reply::ok("image/jpeg", &image).with_header("Cache-Control", "max-age=86400"),
    })
    .await;
    let relay = Relay::start(|c| {
        c.cache.negative_ttl = Dur(Duration::from_secs(2));
        c.security.allowed_referers = vec!["good.example".parse().unwrap()];
    })
    .await;
    let varnish = Varnish::start(relay.addr).await;
    let objects = || varnish.counter("MAIN.n_object");
    let before = objects();

    // Errors imgrelay marks no-store, over and over: nothing is stored.
    for i in 0..20 {
        let bad = format!("/?url={}&w=10&nope={i}", origin.url("/a.jpg"));
        assert_eq!(varnish.get(&bad, &[]).await.status, 400);
        let hotlinked = format!("/?url={}&w={}", origin.url("/a.jpg"), 10 + i);
        let evil = [("Referer", "https://evil.example/")];
        assert_eq!(varnish.get(&hotlinked, &evil).await.status, 403);
    }
    assert_eq!(objects(), before, "no object for a no-store answer");
    // The 403 of a hotlinking page is not what the allowed page then gets.
    let target = format!("/?url={}&w=10", origin.url("/a.jpg"));
    let good = [("Referer", "https://good.example/")];
    assert_eq!(varnish.get(&target, &good).await.status, 200);
    let with_images = objects();
    assert_eq!(with_images, before + 1);

    // Negative answers: cached for negative_ttl, then gone from the cache entirely.
    for i in 0..5 {
        let gone = format!("/?url={}", origin.url(&format!("/gone-{i}.jpg")));
        assert_eq!(varnish.get(&gone, &[]).await.status, 404);
        let again = varnish.get(&gone, &[]).await;
        assert_eq!(again.status, 404);
        assert!(varnish_hit(&again), "a negative answer is cached a while");
    }
    assert_eq!(objects(), with_images + 5);
    let mut left = objects();
    for _ in 0..150 {
        left = objects();
        if left == with_images {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, with_images, "negative answers outlived negative_ttl");
}

#[tokio::test]
async fn varnish_counts_the_lifetime_imgrelay_gives_once() {
    let image = jpeg(60, 40);
    let origin = Origin::start(move |_| {
        Reply::ok("image/jpeg", &image).with_header("Cache-Control", "max-age=7200")
    })
    .await;
    let relay = Relay::start(|c| c.cache.memory_bytes = imgrelay::config::Bytes(16 << 20)).await;
    let varnish = Varnish::start(relay.addr).await;
    let target = format!("/?url={}&w=30", origin.url("/a.jpg"));
    let direct = relay.get(&target).await;
    assert_eq!(direct.header("age"), None, "imgrelay is its URLs' origin");
    // imgrelay's copy ages; Varnish then stores it with what is left of its lifetime.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let a = varnish.get(&target, &[]).await;
    assert_eq!(a.header("x-cache"), Some("HIT-MEMORY"));
    let max_age: u64 = a
        .header("cache-control")
        .and_then(|c| c.split(", ").find_map(|p| p.strip_prefix("max-age=")))
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!((7190..=7198).contains(&max_age), "{max_age}");
    assert_eq!(a.header("age"), Some("0"), "Varnish's own age of its copy");
    let rfc: Vec<_> = varnish
        .ttl_records()
        .into_iter()
        .filter(|r| r.starts_with("RFC "))
        .collect();
    assert_eq!(rfc.len(), 1, "{rfc:?}");
    let ttl: u64 = rfc[0].split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(ttl, max_age, "Varnish's TTL is imgrelay's max-age: {rfc:?}");
}
