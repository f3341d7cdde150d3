//! Upstream limits at their edges: bytes (declared and read), time (connect and whole fetch).

use crate::support::*;
use imgrelay::config::{Bytes, Dur};
use std::time::Duration;

#[tokio::test]
async fn declared_length_over_the_limit_is_refused_before_the_body() {
    let origin = Origin::start(|_| Reply::Declares { length: 10 << 20 }).await;
    // The origin never sends its body: only a refusal based on the header can answer in time.
    let relay = Relay::start(|c| {
        c.upstream.max_bytes = Bytes(1 << 20);
        c.upstream.timeout = Dur(Duration::from_secs(30));
    })
    .await;
    let a = relay.pass(&origin.url("/big.jpg")).await;
    assert_eq!(a.status, 413, "{}", a.text());
    assert_eq!(a.header("x-imgrelay-error"), Some("source_too_large"));
    assert_eq!(a.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn body_exactly_at_the_limit_passes_and_one_byte_more_does_not() {
    let limit = 4096usize;
    let mut at = jpeg(32, 32);
    at.resize(limit, 0); // trailing bytes after EOI: still a JPEG by its magic
    let mut over = at.clone();
    over.push(0);
    let origin = Origin::start(move |req| match req.target.as_str() {
        "/at" => Reply::ok("image/jpeg", &at),
        _ => Reply::ok("image/jpeg", &over),
    })
    .await;
    let relay = Relay::start(|c| c.upstream.max_bytes = Bytes(limit as u64)).await;
    let a = relay.pass(&origin.url("/at")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.body.len(), limit);
    let a = relay.pass(&origin.url("/over")).await;
    assert_eq!(a.status, 413);
}

#[tokio::test]
async fn an_endless_body_is_cut_and_nothing_is_served() {
    let origin = Origin::start(|_| Reply::Endless).await;
    let relay = Relay::start(|c| c.upstream.max_bytes = Bytes(1 << 20)).await;
    let a = relay.pass(&origin.url("/endless.jpg")).await;
    assert_eq!(a.status, 413);
    assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(a.body.len() < 100, "no image bytes served");
}

#[tokio::test]
async fn a_one_byte_a_second_origin_gets_504() {
    let origin = Origin::start(|_| Reply::Drip {
        body: jpeg(64, 64),
        every: Duration::from_millis(400),
    })
    .await;
    let relay = Relay::start(|c| c.upstream.timeout = Dur(Duration::from_secs(1))).await;
    let a = relay.pass(&origin.url("/slow.jpg")).await;
    assert_eq!(a.status, 504, "{}", a.text());
    assert_eq!(a.header("x-imgrelay-error"), Some("upstream_timeout"));
    assert_eq!(a.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn a_slow_but_bounded_origin_within_the_timeout_is_served_whole() {
    let body = jpeg(8, 8);
    let b = body.clone();
    let origin = Origin::start(move |_| {
        Reply::Delayed(
            Duration::from_millis(300),
            Box::new(Reply::ok("image/jpeg", &b)),
        )
    })
    .await;
    let relay = Relay::start(|c| c.upstream.timeout = Dur(Duration::from_secs(5))).await;
    let a = relay.pass(&origin.url("/a.jpg")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, body);
}

#[tokio::test]
async fn refused_connection_is_502() {
    // Bind and drop: the port is closed, so the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let relay = Relay::start(|_| {}).await;
    let a = relay.pass(&format!("http://127.0.0.1:{port}/a.jpg")).await;
    assert_eq!(a.status, 502);
    assert_eq!(a.header("x-imgrelay-error"), Some("upstream_unreachable"));
    assert_eq!(a.text(), "upstream unreachable\n");
}
