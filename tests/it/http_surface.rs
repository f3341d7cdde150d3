//! The HTTP surface of SPEC §2: methods, forms, validators, URL length, routes, connection
//! bounds.

use crate::support::*;
use imgrelay::config::Dur;
use std::time::Duration;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

async fn image_origin() -> (Origin, Vec<u8>) {
    let image = jpeg(120, 80);
    let img = image.clone();
    (
        Origin::start(move |_| Reply::ok("image/jpeg", &img)).await,
        image,
    )
}

#[tokio::test]
async fn methods_other_than_get_head_options_are_405_with_allow() {
    let relay = Relay::start(|_| {}).await;
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in ["/?http://127.0.0.1/a.jpg", "/healthz"] {
            let a = request(relay.addr, method, path, &[("Content-Length", "0")]).await;
            assert_eq!(a.status, 405, "{method} {path}");
            assert_eq!(a.header("allow"), Some("GET, HEAD, OPTIONS"));
            assert_eq!(a.header("x-imgrelay-error"), Some("method_not_allowed"));
        }
    }
}

#[tokio::test]
async fn options_is_a_cors_preflight() {
    let relay = Relay::start(|_| {}).await;
    let a = request(
        relay.addr,
        "OPTIONS",
        "/?http://example.com/a.jpg",
        &[
            ("Origin", "https://blog.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "x-requested-with"),
        ],
    )
    .await;
    assert_eq!(a.status, 204);
    assert!(a.body.is_empty());
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        a.header("access-control-allow-methods"),
        Some("GET, HEAD, OPTIONS")
    );
    assert_eq!(
        a.header("access-control-allow-headers"),
        Some("x-requested-with")
    );
}

#[tokio::test]
async fn head_has_the_get_headers_and_no_body() {
    let (origin, image) = image_origin().await;
    let relay = Relay::start(|_| {}).await;
    let target = format!("/?{}", origin.url("/a.jpg"));
    let get = request(relay.addr, "GET", &target, &[]).await;
    let head = request(relay.addr, "HEAD", &target, &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(image.len().to_string().as_str())
    );
    for h in [
        "content-type",
        "content-length",
        "etag",
        "cache-control",
        "access-control-allow-origin",
    ] {
        assert_eq!(head.header(h), get.header(h), "{h}");
    }
    assert!(
        origin.seen().iter().all(|s| s.method == "GET"),
        "never HEAD upstream"
    );
}

#[tokio::test]
async fn matching_if_none_match_is_304_without_a_body() {
    let (origin, _) = image_origin().await;
    let relay = Relay::start(|_| {}).await;
    let target = format!("/?{}", origin.url("/a.jpg"));
    let first = relay.get(&target).await;
    let etag = first.header("etag").unwrap().to_string();

    let again = request(relay.addr, "GET", &target, &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(
        again.header("content-length"),
        None,
        "no Content-Length: 0 on a 304"
    );
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert_eq!(again.header("cache-control"), first.header("cache-control"));

    let other = request(relay.addr, "GET", &target, &[("If-None-Match", "\"nope\"")]).await;
    assert_eq!(other.status, 200);
    assert_eq!(other.body, first.body);
}

#[tokio::test]
async fn url_length_limit_is_inclusive() {
    let (origin, _) = image_origin().await;
    let relay = Relay::start(|c| c.limits.max_url_bytes = 512).await;
    let base = format!("/?{}", origin.url("/a.jpg?pad="));
    let at = format!("{base}{}", "x".repeat(512 - base.len()));
    assert_eq!(at.len(), 512);
    assert_eq!(relay.get(&at).await.status, 200);
    let over = format!("{at}y");
    let a = relay.get(&over).await;
    assert_eq!(a.status, 414);
    assert_eq!(a.header("x-imgrelay-error"), Some("uri_too_long"));
}

#[tokio::test]
async fn malformed_requests_are_400_naming_the_problem() {
    let relay = Relay::start(|_| {}).await;
    for (target, reason) in [
        ("/", "missing source"),
        ("/?url=h/a.jpg&width=3", "unknown parameter `width`"),
        ("/?url=h/a.jpg&url=h/b.jpg", "duplicate parameter `url`"),
        ("/?url=ftp%3A%2F%2Fh%2Fa.jpg", "only http and https"),
        ("/?http://user:pw@h/a.jpg", "userinfo"),
    ] {
        let a = relay.get(target).await;
        assert_eq!(a.status, 400, "{target}");
        assert!(a.text().contains(reason), "{target}: {}", a.text());
        assert_eq!(a.header("cache-control"), Some("no-store"));
    }
    assert_eq!(relay.get("/nope").await.status, 404);
}

#[tokio::test]
async fn health_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let cd = cache_dir.clone();
    let relay = Relay::start(move |c| {
        c.cache.disk_bytes = imgrelay::config::Bytes(1 << 20);
        c.cache.dir = cd;
    })
    .await;
    assert_eq!(relay.get("/healthz").await.status, 200);
    assert_eq!(relay.get("/readyz").await.status, 200);
    assert!(cache_dir.is_dir());

    // The cache directory turns into a file under imgrelay's feet: not ready any more.
    std::fs::remove_dir_all(&cache_dir).unwrap();
    std::fs::write(&cache_dir, b"not a directory").unwrap();
    assert_eq!(relay.get("/healthz").await.status, 200);
    assert_eq!(relay.get("/readyz").await.status, 503);
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off() {
    let relay = Relay::start(|c| c.server.header_timeout = Dur(Duration::from_millis(500))).await;
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Keep dribbling header bytes, as slowloris does, for far longer than the timeout.
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        for _ in 0..200 {
            if s.write_all(b"X-a: b\r\n").await.is_err() {
                return true;
            }
            let mut buf = [0u8; 256];
            match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => return true, // an error status then close
                Err(_) => {}
            }
        }
        false
    })
    .await;
    assert_eq!(
        closed,
        Ok(true),
        "connection still open after 20 s of dribbling"
    );
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let relay = Relay::start(|_| {}).await;
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    for _ in 0..3 {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
}

#[tokio::test]
async fn max_connections_holds_extra_clients_until_a_slot_frees() {
    let relay = Relay::start(|c| c.server.max_connections = 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(relay.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    let mut third = TcpStream::connect(relay.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let early = tokio::time::timeout(Duration::from_millis(500), third.read_to_end(&mut buf)).await;
    assert!(
        early.is_err(),
        "a third connection was served while two were open"
    );
    drop(held.pop());
    tokio::time::timeout(Duration::from_secs(20), third.read_to_end(&mut buf))
        .await
        .expect("served once a slot freed")
        .unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 200"));
}

#[tokio::test]
async fn admin_endpoints_without_a_token_are_404_to_every_method() {
    // GET /purge used to answer 405 with `Allow: POST`, betraying the endpoint.
    let relay = Relay::start(|_| {}).await;
    let unknown = request(relay.addr, "GET", "/no-such-path", &[]).await;
    for path in ["/purge?url=http://h/a.jpg", "/rewrite"] {
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
            let a = request(relay.addr, method, path, &[("Authorization", "Bearer x")]).await;
            assert_eq!(a.status, 404, "{method} {path}");
            assert_eq!(a.header("allow"), None, "{method} {path}");
            assert_eq!(
                a.header("x-imgrelay-error"),
                Some("not_found"),
                "{method} {path}"
            );
            if method == "GET" {
                assert_eq!(a.without_date(), unknown.without_date(), "{path}");
            }
        }
    }
    // With a token they exist: other methods are 405 naming POST.
    let relay =
        Relay::start(|c| c.server.admin_token = imgrelay::config::Secret("t".repeat(32))).await;
    let a = request(relay.addr, "GET", "/purge?url=http://h/a.jpg", &[]).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("POST, OPTIONS"));
}
