//! `imgrelay warm` against a running imgrelay and a local origin: every variant the rewritten
//! articles reference is then a cache hit; failures are summarised and exit 1.

use crate::{scrape::Scrape, support::*};
use imgrelay::config::Bytes;
use std::time::Duration;
use tokio::process::Command;

#[tokio::test]
async fn warm_fills_the_cache_with_every_variant() {
    let image = jpeg(1400, 900);
    let origin = Origin::start(move |req| match req.target.as_str() {
        "/gone.jpg" => Reply::status(404),
        _ => Reply::ok("image/jpeg", &image),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(|c| {
        c.cache.memory_bytes = Bytes(64 << 20);
    })
    .await;
    let public = format!("http://{}", relay.addr);
    let post = format!(
        "---\ntitle: t\nheadimg: {o}/head.jpg\n---\n<p><img src=\"{o}/a.jpg\" data-size=\"1400,900\"></p>\n\n![b]({o}/b.jpg)\n",
        o = origin.url("")
    );
    std::fs::write(dir.path().join("post.md"), &post).unwrap();

    let run = |path: std::path::PathBuf| {
        Command::new(env!("CARGO_BIN_EXE_imgrelay"))
            .arg("warm")
            .arg(path)
            .current_dir(dir.path())
            .env("IMGRELAY_SERVER__PUBLIC_URL", &public)
            .env("IMGRELAY_CACHE__DISK_BYTES", "0")
            .output()
    };
    let out = run(dir.path().to_path_buf()).await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("0 failed"), "{err}");

    // Every URL the rewriter writes is now served from memory.
    let config = {
        let mut c = test_config();
        c.server.public_url = public.clone();
        c
    };
    let rewritten = imgrelay::rewrite::Rewriter::new(&config)
        .rewrite_document(post.as_bytes(), imgrelay::rewrite::Kind::Markdown, None)
        .unwrap();
    let urls = imgrelay::warm::imgrelay_urls(&String::from_utf8_lossy(&rewritten.bytes), &public);
    assert!(
        urls.len() >= 6,
        "headimg, img src + srcset widths, markdown image: {urls:?}"
    );
    for url in &urls {
        let target = url.strip_prefix(&public).unwrap();
        let a = relay.get(target).await;
        assert_eq!(a.status, 200, "{url}");
        assert_eq!(a.header("x-cache"), Some("HIT-MEMORY"), "{url}");
    }
    assert_eq!(origin.seen().len(), 3, "each original fetched once");

    // A missing image fails the run, with its cause in the summary.
    std::fs::write(
        dir.path().join("broken.html"),
        format!("<img src=\"{}\">", origin.url("/gone.jpg")),
    )
    .unwrap();
    let out = run(dir.path().join("broken.html")).await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("failed: upstream_not_found 5"),
        "every srcset width of it: {err}"
    );
}

/// Regression: `warm` bounded its requests per origin host only, so articles with images on
/// several hosts (or more images on one host than the server's queue) sent more at once than
/// the server admits, and the rest were answered 503 and counted as failures.
#[tokio::test]
async fn warm_sends_no_more_at_once_than_the_server_queue_admits() {
    let image = jpeg(64, 48);
    let origin = Origin::start(move |_| {
        Reply::Delayed(
            Duration::from_millis(200),
            Box::new(Reply::ok("image/jpeg", &image)),
        )
    })
    .await;
    let relay = Relay::start(|c| {
        c.transform.queue = 2;
        c.cache.memory_bytes = Bytes(64 << 20);
    })
    .await;
    let public = format!("http://{}", relay.addr);
    let dir = tempfile::tempdir().unwrap();
    let post: String = (0..8)
        .map(|i| format!("<img src=\"{}\">\n", origin.url(&format!("/{i}.jpg"))))
        .collect();
    std::fs::write(dir.path().join("post.html"), post).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_imgrelay"))
        .arg("warm")
        .arg(dir.path())
        .env("IMGRELAY_SERVER__PUBLIC_URL", &public)
        .env("IMGRELAY_TRANSFORM__QUEUE", "2")
        .env("IMGRELAY_CACHE__DISK_BYTES", "0")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(", 0 failed"), "{err}");
    assert_eq!(origin.seen().len(), 8, "each image fetched once: {err}");
    // Not one request was turned away: the bound held, not merely the retry after a 503.
    let rejected = Scrape::take(relay.addr).await;
    assert_eq!(
        rejected.get("imgrelay_rejected_total{reason=\"queue_full\"}"),
        0.0,
        "{err}"
    );
}
