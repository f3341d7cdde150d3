//! What an operator sees: `/metrics` counts each event once, the admin listener keeps the
//! operator's endpoints apart, and every answer carries a request id.

use crate::{scrape::*, support::*};

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
