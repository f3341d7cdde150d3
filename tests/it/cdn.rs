//! What a CDN in front of imgrelay relies on: the `xkey` surrogate key shared by a source's
//! original and all its variants, and the `PURGE` that `/purge` sends to `cdn.purge_urls`.

use crate::support::*;
use imgrelay::config::{Bytes, Secret};

#[tokio::test]
async fn one_source_shares_one_xkey_and_two_sources_differ() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start(|seen| match seen.target.as_str() {
        "/gone.jpg" => Reply::status(404),
        _ => Reply::ok("image/jpeg", &jpeg(200, 100)),
    })
    .await;
    let relay = Relay::start(|c| {
        c.cache.dir = dir.path().to_path_buf();
        c.cache.disk_bytes = Bytes(16 << 20);
    })
    .await;
    let (a, b) = (origin.url("/a.jpg"), origin.url("/b.jpg"));
    let mut keys = Vec::new();
    for target in [
        format!("/?{a}"),
        format!("/?url={a}"),
        format!("/?url={a}&w=50"),
        format!("/?url={a}&w=80&output=webp"),
    ] {
        let answer = relay.get(&target).await;
        assert_eq!(answer.status, 200, "{target}: {}", answer.text());
        keys.push(answer.header("xkey").expect("xkey on an image").to_string());
    }
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    let g = &keys[0];
    assert!(
        g.len() == 32
            && g.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "hex xxh3-128: {g}"
    );
    // The same `g` names the source's directory on disk (SPEC §7's key layout).
    assert!(dir.path().join(&g[..2]).join(g).is_dir());

    let other = relay.get(&format!("/?url={b}&w=50")).await;
    assert_eq!(other.status, 200);
    let other = other.header("xkey").expect("xkey on an image");
    assert_ne!(other, g);

    let revalidated = request(
        relay.addr,
        "GET",
        &format!("/?url={a}&w=50"),
        &[("If-None-Match", "*")],
    )
    .await;
    assert_eq!(revalidated.status, 304);
    assert_eq!(revalidated.header("xkey"), Some(g.as_str()));

    let missing = relay.get(&format!("/?{}", origin.url("/gone.jpg"))).await;
    let error = relay.get("/?url=http://127.0.0.1:1/x.jpg&w=5").await;
    for e in [missing, error] {
        assert!(e.status >= 400, "{}", e.status);
        assert_eq!(e.header("xkey"), None, "errors carry no surrogate key");
    }
}

async fn post_purge(relay: &Relay, source: &str) -> Answer {
    let target = format!(
        "/purge?url={}",
        form_urlencoded::byte_serialize(source.as_bytes()).collect::<String>()
    );
    request(
        relay.addr,
        "POST",
        &target,
        &[
            ("Authorization", "Bearer cdn-token"),
            ("Content-Length", "0"),
        ],
    )
    .await
}

#[tokio::test]
async fn purge_sends_the_sources_xkey_to_every_cdn_endpoint() {
    let origin = Origin::start(|_| Reply::ok("image/jpeg", &jpeg(64, 32))).await;
    let cdn_a = Origin::start(|_| Reply::ok("text/plain", b"Purged 3 objects")).await;
    let cdn_b = Origin::start(|_| Reply::ok("text/plain", b"Purged 0 objects")).await;
    let relay = Relay::start(|c| {
        c.server.admin_token = Secret("cdn-token".into());
        c.cdn.purge_urls = vec![cdn_a.url("/"), cdn_b.url("/varnish")];
        c.cdn.purge_token = Secret(PURGE_TOKEN.into());
    })
    .await;
    let source = origin.url("/a.jpg");
    let image = relay.get(&format!("/?url={source}&w=10")).await;
    let xkey = image.header("xkey").expect("xkey").to_string();

    let answer = post_purge(&relay, &source).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    for (cdn, path) in [(&cdn_a, "/"), (&cdn_b, "/varnish")] {
        let seen = cdn.seen();
        assert_eq!(seen.len(), 1, "one PURGE, no retries");
        assert_eq!(seen[0].method, "PURGE");
        assert_eq!(seen[0].target, path);
        assert_eq!(seen[0].header("xkey"), Some(xkey.as_str()));
        assert_eq!(
            seen[0].header("x-imgrelay-purge-token"),
            Some(PURGE_TOKEN),
            "the CDN's authority to purge"
        );
        assert_eq!(
            seen[0].header("authorization"),
            None,
            "the token stays home"
        );
        assert!(answer
            .text()
            .contains(&format!("cdn {}: purged (200)", cdn.url(path))));
    }
}

#[tokio::test]
async fn a_failed_cdn_purge_is_reported_and_not_retried() {
    let refusing = {
        let l = std::net::TcpListener::bind((LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap()
    };
    let erring = Origin::start(|_| Reply::status(500)).await;
    let fine = Origin::start(|_| Reply::ok("text/plain", b"ok")).await;
    let relay = Relay::start(|c| {
        c.server.admin_token = Secret("cdn-token".into());
        c.cdn.purge_urls = vec![
            format!("http://{refusing}/"),
            erring.url("/"),
            fine.url("/"),
        ];
        c.cdn.purge_token = Secret(PURGE_TOKEN.into());
    })
    .await;
    let answer = post_purge(&relay, "http://127.0.0.1:9/x.jpg").await;
    assert_eq!(answer.status, 502, "{}", answer.text());
    let body = answer.text();
    assert!(
        body.starts_with("purged http://127.0.0.1:9/x.jpg locally"),
        "{body}"
    );
    assert!(
        body.contains(&format!("cdn http://{refusing}/: failed: unreachable")),
        "{body}"
    );
    assert!(
        body.contains(&format!("cdn {}: failed: answered 500", erring.url("/"))),
        "{body}"
    );
    assert!(
        body.contains(&format!("cdn {}: purged (200)", fine.url("/"))),
        "{body}"
    );
    assert_eq!(erring.seen().len(), 1, "no retries");
    assert_eq!(fine.seen().len(), 1);
}

#[test]
fn purge_urls_must_be_absolute_http_urls() {
    let mut c = imgrelay::config::Config::default();
    c.cdn.purge_urls = vec!["varnish:6081".into()];
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("cdn.purge_urls"), "{err}");
    c.cdn.purge_urls = vec!["https://cdn.example/".into()];
    c.cdn.purge_token = Secret(PURGE_TOKEN.into());
    c.validate().unwrap();
}

#[test]
fn purge_urls_need_a_purge_token_a_cdn_can_check() {
    let mut c = imgrelay::config::Config::default();
    c.cdn.purge_urls = vec!["https://cdn.example/".into()];
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("cdn.purge_token"), "{err}");
    c.cdn.purge_token = Secret("x".repeat(31));
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("at least 32 bytes"), "{err}");
    c.cdn.purge_token = Secret(format!("{} ", "x".repeat(32)));
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("printable ASCII"), "{err}");
    c.cdn.purge_token = Secret("x".repeat(32));
    c.validate().unwrap();
}
