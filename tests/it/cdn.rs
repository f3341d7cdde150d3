//! What a CDN in front of imgrelay relies on: the `xkey` surrogate key shared by a source's
//! original and all its variants, and the `PURGE` that `/purge` sends to `cdn.purge_urls`.

use crate::support::*;
use imgrelay::config::Bytes;

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
