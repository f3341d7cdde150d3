//! What an operator sees: `/metrics` counts each event once, the admin listener keeps the
//! operator's endpoints apart, and every answer carries a request id.

use crate::{scrape::*, support::*};
use std::time::Duration;

#[tokio::test]
async fn metrics_count_each_event_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    known_sequence(dir.path()).await;
}

#[tokio::test]
async fn the_admin_listener_serves_metrics_health_and_readiness_only() {
    let relay = Relay::start(|c| c.server.admin_listen = "127.0.0.1:0".into()).await;
    let admin = relay.admin.expect("admin listener bound");

    let main_metrics = relay.get("/metrics").await;
    assert_eq!(main_metrics.status, 404);
    for path in ["/healthz", "/readyz"] {
        assert_eq!(relay.get(path).await.status, 200, "main {path}");
        assert_eq!(
            request(admin, "GET", path, &[]).await.status,
            200,
            "admin {path}"
        );
    }
    let scrape = request(admin, "GET", "/metrics", &[]).await;
    assert_eq!(scrape.status, 200);
    assert_eq!(
        scrape.header("content-type"),
        Some("text/plain; version=0.0.4")
    );
    for path in ["/", "/?http://127.0.0.1:9/a.jpg", "/rewrite", "/nope"] {
        assert_eq!(
            request(admin, "GET", path, &[]).await.status,
            404,
            "admin {path}"
        );
    }
    let s = Scrape::parse(&scrape.text());
    assert_eq!(
        s.get("imgrelay_requests_total{route=\"health\",status=\"200\"}"),
        4.0
    );
    assert_eq!(
        s.get("imgrelay_requests_total{route=\"other\",status=\"404\"}"),
        1.0
    );
    assert!(s.has("imgrelay_build_info{version=\"0.1.0\"}"));

    let single = Relay::start(|_| {}).await;
    let scrape = single.get("/metrics").await;
    assert_eq!(scrape.status, 200);
    assert!(scrape
        .text()
        .contains("# TYPE imgrelay_request_duration_seconds histogram"));
}

#[tokio::test]
async fn request_ids_are_echoed_made_and_never_sent_upstream() {
    let origin = Origin::start(|_| Reply::ok("image/png", &png(4, 4))).await;
    let relay = Relay::start(|_| {}).await;
    let target = format!("/?{}", origin.url("/i.png"));

    let echoed = request(
        relay.addr,
        "GET",
        &target,
        &[("X-Request-Id", "cdn-42:edge_7.a")],
    )
    .await;
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.header("x-request-id"), Some("cdn-42:edge_7.a"));
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-request-id"), None, "never sent upstream");

    let made: Vec<String> = ids_of(&relay, &[]).await;
    assert_ne!(made[0], made[1]);
    for id in &made {
        assert!(
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)),
            "{id}"
        );
    }
    let long = "x".repeat(129);
    for bad in ["has space", "semi;colon", long.as_str()] {
        let got = ids_of(&relay, &[("X-Request-Id", bad)]).await;
        assert!(
            got.iter().all(|id| id != bad && !id.is_empty()),
            "{bad} kept"
        );
    }
    // Errors carry one too.
    let missing = request(relay.addr, "GET", "/nope", &[("X-Request-Id", "r1")]).await;
    assert_eq!(
        (missing.status, missing.header("x-request-id")),
        (404, Some("r1"))
    );
}

/// The ids of two answers to `/healthz` sent with `headers`.
async fn ids_of(relay: &Relay, headers: &[(&str, &str)]) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let a = request(relay.addr, "GET", "/healthz", headers).await;
        ids.push(a.header("x-request-id").expect("x-request-id").to_string());
    }
    ids
}

/// A port on 127.0.0.1 where nothing listens: connecting is refused at once.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn the_public_scrape_never_tells_a_denied_destination_from_an_unreachable_one() {
    // With no admin listener /metrics is public, and it used to count `denied` apart from
    // `error`: a port scanner read there what the identical 502s hide (SPEC §2.5, §2.6).
    let port = closed_port().await;
    let denied = "/?http://169.254.169.254/latest/meta-data.jpg";
    let unreachable = format!("/?http://127.0.0.1:{port}/a.jpg");
    for admin in [false, true] {
        let relay = Relay::start(|c| {
            if admin {
                c.server.admin_listen = "127.0.0.1:0".into();
            }
        })
        .await;
        let (a, b) = (relay.get(denied).await, relay.get(&unreachable).await);
        assert_eq!((a.status, b.status), (502, 502));
        assert_eq!(a.without_date(), b.without_date());
        let upstream = |s: &Scrape, outcome: &str| {
            s.get(&format!(
                "imgrelay_upstream_requests_total{{outcome=\"{outcome}\"}}"
            ))
        };
        match relay.admin {
            None => {
                let public = relay.get("/metrics").await;
                assert_eq!(public.status, 200);
                assert!(!public.text().contains("denied"), "{}", public.text());
                let s = Scrape::parse(&public.text());
                assert_eq!(upstream(&s, "error"), 2.0, "both counted as `error`");
            }
            Some(admin) => {
                assert_eq!(relay.get("/metrics").await.status, 404);
                let s = Scrape::take(admin).await;
                assert_eq!(
                    (upstream(&s, "denied"), upstream(&s, "error")),
                    (1.0, 1.0),
                    "the operator's listener keeps the split"
                );
            }
        }
    }
}

/// Opens `n` keep-alive connections to `addr`, each served one `/healthz` (so each holds a
/// slot of its listener's budget), and returns them open and idle.
async fn hold_connections(addr: std::net::SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut held = Vec::new();
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    held
}

#[tokio::test]
async fn the_admin_listener_answers_while_the_public_one_is_full() {
    // Both listeners drew from server.max_connections: three idle public connections made the
    // operator's /healthz and /metrics hang, so monitoring went blind during an attack.
    let relay = Relay::start(|c| {
        c.server.admin_listen = "127.0.0.1:0".into();
        c.server.max_connections = 3;
        c.server.admin_max_connections = 2;
    })
    .await;
    let admin = relay.admin.expect("admin listener bound");
    let _public = hold_connections(relay.addr, 3).await;
    let limit = Duration::from_secs(10);
    for path in ["/healthz", "/metrics"] {
        let a = request_within(admin, "GET", path, &[], None, limit).await;
        assert_eq!(
            a.status, 200,
            "admin {path} while the public listener is full"
        );
    }

    // The admin budget's own edge: two held, the third waits until one closes.
    let mut held = hold_connections(admin, 2).await;
    let waiting = tokio::spawn(async move {
        request_within(admin, "GET", "/healthz", &[], None, Duration::from_secs(20)).await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third admin connection was served while two were open"
    );
    drop(held.pop());
    assert_eq!(
        waiting.await.unwrap().status,
        200,
        "served once a slot freed"
    );
}
