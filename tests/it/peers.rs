//! Purges across a fleet (`server.peers`, SPEC §7): a `/purge` on one replica empties the
//! other replicas' own tiers too, reports each peer's answer, survives a dead peer, and a
//! forwarded purge (`scope=local`) is never forwarded again, to peers or to the CDN.

use crate::support::*;
use imgrelay::config::{Bytes, Secret};

const TOKEN: &str = "fleet-token";

/// A replica with its own memory tier, the fleet's token and these peers and CDN endpoints.
async fn replica(peers: Vec<String>, cdn: Vec<String>) -> Relay {
    Relay::start(move |c| {
        c.cache.memory_bytes = Bytes(16 << 20);
        c.server.admin_token = Secret(TOKEN.into());
        c.server.peers = peers;
        c.cdn.purge_urls = cdn;
        c.cdn.purge_token = Secret(PURGE_TOKEN.into());
    })
    .await
}

fn base(relay: &Relay) -> String {
    format!("http://{}", relay.addr)
}

async fn purge(relay: &Relay, query: &str) -> Answer {
    let auth = format!("Bearer {TOKEN}");
    request(
        relay.addr,
        "POST",
        &format!("/purge?{query}"),
        &[("Authorization", &auth), ("Content-Length", "0")],
    )
    .await
}

fn url_param(source: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(source.as_bytes()).collect();
    format!("url={encoded}")
}

/// Anything that would hear a purge that should not have been sent.
async fn recorder() -> Origin {
    Origin::start(|_| Reply::ok("text/plain", b"ok")).await
}

#[tokio::test]
async fn a_purge_on_one_replica_empties_its_peer_and_reports_a_dead_one() {
    let origin = Origin::start(|_| Reply::ok("image/jpeg", &jpeg(64, 48))).await;
    let dead = {
        let l = std::net::TcpListener::bind((LOCALHOST, 0)).unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    // B forwards and sends PURGE to `heard` on a purge of its own, never on a forwarded one.
    let heard = recorder().await;
    let b = replica(vec![heard.url("/")], vec![heard.url("/")]).await;
    let a = replica(vec![base(&b), dead.clone()], Vec::new()).await;
    let (src, other) = (origin.url("/a.jpg"), origin.url("/other.jpg"));
    let target = format!("/?url={src}&w=32");
    let kept = format!("/?url={other}&w=32");

    for relay in [&b, &a] {
        assert_eq!(relay.get(&target).await.header("x-cache"), Some("MISS"));
        assert_eq!(relay.get(&kept).await.header("x-cache"), Some("MISS"));
    }
    assert_eq!(b.get(&target).await.header("x-cache"), Some("HIT-MEMORY"));
    assert_eq!(origin.seen().len(), 4);

    let answer = purge(&a, &url_param(&src)).await;
    let body = answer.text();
    assert_eq!(answer.status, 502, "a dead peer is a failed purge: {body}");
    assert!(body.starts_with(&format!("purged {src} locally")), "{body}");
    assert!(
        body.contains(&format!("peer {}: purged (200)", base(&b))),
        "{body}"
    );
    assert!(
        body.contains(&format!("peer {dead}: failed: unreachable")),
        "{body}"
    );

    // B's copy is gone: its next request is a MISS that asks the origin again; A's too.
    for relay in [&b, &a] {
        let again = relay.get(&target).await;
        assert_eq!((again.status, again.header("x-cache")), (200, Some("MISS")));
        assert_eq!(relay.get(&kept).await.header("x-cache"), Some("HIT-MEMORY"));
    }
    assert_eq!(origin.seen().len(), 6, "one new fetch per replica");
    assert!(
        heard.seen().is_empty(),
        "B did not forward the forwarded purge: {:?}",
        heard.seen()
    );
}

#[tokio::test]
async fn a_forwarded_purge_carries_the_token_and_the_local_scope() {
    let peer = recorder().await;
    let a = replica(vec![peer.url("/imgrelay/")], Vec::new()).await;
    let src = "http://127.0.0.1:9/p.jpg?x=1&y=2";
    let answer = purge(&a, &url_param(src)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = peer.seen();
    assert_eq!(seen.len(), 1, "one request, no retries");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(
        seen[0].target,
        format!("/imgrelay/purge?{}&scope=local", url_param(src))
    );
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    // A purge that says it is local stays local.
    let local = purge(&a, &format!("{}&scope=local", url_param(src))).await;
    assert_eq!(local.status, 200, "{}", local.text());
    assert_eq!(peer.seen().len(), 1);
    // A misspelt scope purges nothing rather than the whole fleet.
    for bad in ["scope=fleet", "scop=local", "scope=local&scope=local"] {
        let refused = purge(&a, &format!("{}&{bad}", url_param(src))).await;
        assert_eq!(refused.status, 400, "{bad}: {}", refused.text());
    }
    assert_eq!(peer.seen().len(), 1);
}

#[tokio::test]
async fn a_peer_that_refuses_the_token_is_reported() {
    let wrong = Relay::start(|c| c.server.admin_token = Secret("another-token".into())).await;
    let a = replica(vec![base(&wrong)], Vec::new()).await;
    let answer = purge(&a, &url_param("http://127.0.0.1:9/x.jpg")).await;
    assert_eq!(answer.status, 502);
    assert!(
        answer
            .text()
            .contains(&format!("peer {}: failed: answered 401", base(&wrong))),
        "{}",
        answer.text()
    );
}
