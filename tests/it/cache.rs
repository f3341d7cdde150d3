//! The two-tier cache over real HTTP: tiers, restart, eviction, healing, coalescing,
//! freshness (revalidation, stale-if-error, negative TTL), purge, and crash safety of the real
//! binary under `kill -9`.

use crate::support::*;
use imgrelay::config::{Bytes, Config, Dur, Secret};
use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU16, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::io::AsyncWriteExt;

fn cached(dir: &Path) -> impl FnOnce(&mut Config) + '_ {
    move |c| {
        c.cache.dir = dir.to_path_buf();
        c.cache.memory_bytes = Bytes(64 << 20);
        c.cache.disk_bytes = Bytes(64 << 20);
    }
}

async fn start_cached(dir: &Path, more: impl Fn(&mut Config)) -> Relay {
    // A server that just stopped may still be releasing the directory lock: retry briefly.
    let mut last = None;
    for _ in 0..100 {
        let resolver = Arc::new(imgrelay::fetch::connector::StaticResolver::default());
        match Relay::try_start_with(resolver, |c| {
            cached(dir)(c);
            more(c);
        })
        .await
        {
            Ok(relay) => return relay,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot start on {}: {last:?}", dir.display());
}

/// Every regular file under the cache directory, but the lock file.
fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != ".lock") {
                out.push(p);
            }
        }
    }
    out
}

fn counting_origin_image(image: Vec<u8>) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    move |_| Reply::ok("image/jpeg", &image).with_header("Cache-Control", "max-age=86400")
}

#[tokio::test]
async fn miss_then_memory_then_disk_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start(counting_origin_image(jpeg(200, 120))).await;
    let pass = format!("/?{}", origin.url("/a.jpg"));
    let variant = format!("/?url={}&w=50", origin.url("/a.jpg"));

    let relay = start_cached(dir.path(), |_| {}).await;
    let first = relay.get(&pass).await;
    assert_eq!((first.status, first.header("x-cache")), (200, Some("MISS")));
    assert_eq!(relay.get(&pass).await.header("x-cache"), Some("HIT-MEMORY"));
    let v1 = relay.get(&variant).await;
    assert_eq!(v1.header("x-cache"), Some("MISS"));
    assert_eq!(decoded_size(&v1.body), (50, 30));
    assert_eq!(
        relay.get(&variant).await.header("x-cache"),
        Some("HIT-MEMORY")
    );
    assert_eq!(
        origin.seen().len(),
        1,
        "the variant was made from the cached original"
    );
    relay.stop().await;

    let relay = start_cached(dir.path(), |_| {}).await;
    let again = relay.get(&pass).await;
    assert_eq!(again.header("x-cache"), Some("HIT-DISK"));
    assert_eq!(again.body, first.body);
    assert_eq!(
        again.header("etag"),
        first.header("etag"),
        "ETag stable across restarts"
    );
    let v2 = relay.get(&variant).await;
    assert_eq!(v2.header("x-cache"), Some("HIT-DISK"));
    assert_eq!(v2.body, v1.body);
    assert_eq!(
        relay.get(&pass).await.header("x-cache"),
        Some("HIT-MEMORY"),
        "promoted"
    );
    assert_eq!(origin.seen().len(), 1);
    assert_eq!(
        again.header("age"),
        None,
        "imgrelay is the origin of its URLs: max-age is what is left, no Age beside it"
    );
}

#[tokio::test]
async fn a_second_process_cannot_share_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = start_cached(dir.path(), |_| {}).await;
    let resolver = Arc::new(imgrelay::fetch::connector::StaticResolver::default());
    let second = Relay::try_start_with(resolver, cached(dir.path())).await;
    let err = second.err().expect("the directory is locked");
    assert!(err.to_string().contains("in use"), "{err}");
}

#[tokio::test]
async fn eviction_keeps_the_directory_under_disk_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start(|req| {
        let n: u32 = req
            .target
            .trim_start_matches("/i")
            .trim_end_matches(".jpg")
            .parse()
            .unwrap_or(1);
        Reply::ok("image/jpeg", &jpeg(100 + n, 100))
    })
    .await;
    let limit = 60_000u64;
    let relay = start_cached(dir.path(), |c| c.cache.disk_bytes = Bytes(limit)).await;
    for i in 0..40 {
        assert_eq!(
            relay.pass(&origin.url(&format!("/i{i}.jpg"))).await.status,
            200
        );
    }
    let total: u64 = cache_files(dir.path())
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(total <= limit, "{total} bytes on disk, limit {limit}");
    assert!(total > limit / 2, "eviction left too little: {total}");
}

#[tokio::test]
async fn corrupt_entries_are_healed_never_served() {
    let image = jpeg(64, 64);
    let origin = Origin::start(counting_origin_image(image.clone())).await;
    for (case, damage) in [
        (
            "flipped byte",
            Box::new(|b: &mut Vec<u8>| {
                let i = b.len() - 10;
                b[i] ^= 1;
            }) as Box<dyn Fn(&mut Vec<u8>)>,
        ),
        (
            "truncated",
            Box::new(|b: &mut Vec<u8>| b.truncate(b.len() / 2)),
        ),
        ("garbage", Box::new(|b: &mut Vec<u8>| *b = vec![0x5A; 300])),
        (
            "old version",
            Box::new(|b: &mut Vec<u8>| b[8..12].copy_from_slice(&0u32.to_le_bytes())),
        ),
        ("empty", Box::new(|b: &mut Vec<u8>| b.clear())),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let url = origin.url(&format!("/{}.jpg", case.replace(' ', "-")));
        let relay = start_cached(dir.path(), |_| {}).await;
        assert_eq!(relay.pass(&url).await.status, 200);
        relay.stop().await;
        let files = cache_files(dir.path());
        assert_eq!(files.len(), 1, "{case}: {files:?}");
        let mut bytes = std::fs::read(&files[0]).unwrap();
        damage(&mut bytes);
        std::fs::write(&files[0], &bytes).unwrap();

        let before = origin.seen().len();
        let relay = start_cached(dir.path(), |_| {}).await;
        let a = relay.pass(&url).await;
        assert_eq!(a.status, 200, "{case}");
        assert_eq!(
            a.header("x-cache"),
            Some("MISS"),
            "{case}: the damaged file was not served"
        );
        assert_eq!(a.body, image, "{case}");
        assert_eq!(origin.seen().len(), before + 1, "{case}");
        // Healed: the next restart reads a good file again.
        relay.stop().await;
        let relay = start_cached(dir.path(), |_| {}).await;
        assert_eq!(
            relay.pass(&url).await.header("x-cache"),
            Some("HIT-DISK"),
            "{case}"
        );
    }
}

async fn coalescing(memory_on: bool) {
    let dir = tempfile::tempdir().unwrap();
    let image = jpeg(300, 200);
    let origin = Origin::start(move |_| {
        Reply::Delayed(
            Duration::from_millis(400),
            Box::new(Reply::ok("image/jpeg", &image)),
        )
    })
    .await;
    let relay = Arc::new(
        start_cached(dir.path(), move |c| {
            if !memory_on {
                c.cache.memory_bytes = Bytes(0);
                c.cache.disk_bytes = Bytes(0);
            }
        })
        .await,
    );
    let target = format!("/?url={}&w=120", origin.url("/new.jpg"));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (relay, target) = (relay.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                // Half the clients hang up before the answer.
                let mut s = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
                let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
                s.write_all(req.as_bytes()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
                None
            } else {
                Some(relay.get(&target).await)
            }
        }));
    }
    for t in tasks {
        if let Some(a) = t.await.unwrap() {
            assert_eq!(a.status, 200);
            assert_eq!(decoded_size(&a.body), (120, 80));
        }
    }
    assert_eq!(origin.seen().len(), 1, "memory tier on: {memory_on}");
}

#[tokio::test]
async fn concurrent_misses_fetch_once_with_the_memory_tier() {
    coalescing(true).await;
}

#[tokio::test]
async fn concurrent_misses_fetch_once_with_every_tier_off() {
    coalescing(false).await;
}

#[tokio::test]
async fn three_sizes_of_one_image_fetch_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start(counting_origin_image(jpeg(400, 300))).await;
    let relay = start_cached(dir.path(), |_| {}).await;
    for w in [100, 200, 300] {
        let a = relay
            .get(&format!("/?url={}&w={w}", origin.url("/p.jpg")))
            .await;
        assert_eq!(decoded_size(&a.body).0, w);
    }
    assert_eq!(origin.seen().len(), 1);
}

#[tokio::test]
async fn revalidation_stale_if_error_negative_ttl_and_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let image = jpeg(32, 32);
    let mode = Arc::new(AtomicU16::new(200));
    let m = mode.clone();
    let origin = Origin::start(move |req| match m.load(Ordering::SeqCst) {
        200 => Reply::ok("image/jpeg", &image)
            .with_header("Cache-Control", "max-age=0")
            .with_header("ETag", "\"v1\""),
        304 if req.header("if-none-match") == Some("\"v1\"") => Reply::Full {
            status: 304,
            headers: vec![("Cache-Control".into(), "max-age=3600".into())],
            body: Vec::new(),
        },
        s => Reply::status(s),
    })
    .await;
    let relay = start_cached(dir.path(), |c| {
        c.cache.min_ttl = Dur(Duration::ZERO);
        c.cache.negative_ttl = Dur(Duration::from_secs(60));
    })
    .await;
    let url = origin.url("/r.jpg");
    let first = relay.pass(&url).await;
    assert_eq!(first.header("x-cache"), Some("MISS"));

    // Stale at once (max-age=0): revalidated with If-None-Match, the origin says 304.
    mode.store(304, Ordering::SeqCst);
    let second = relay.pass(&url).await;
    assert_eq!(second.body, first.body);
    assert_eq!(origin.seen()[1].header("if-none-match"), Some("\"v1\""));
    assert_eq!(
        relay.pass(&url).await.header("x-cache"),
        Some("HIT-MEMORY"),
        "the 304 refreshed it"
    );

    // stale-if-error: a new stale copy and a dead origin.
    let url2 = origin.url("/s.jpg");
    mode.store(200, Ordering::SeqCst);
    relay.pass(&url2).await;
    mode.store(503, Ordering::SeqCst);
    let stale = relay.pass(&url2).await;
    assert_eq!(
        (stale.status, stale.header("x-cache")),
        (200, Some("HIT-STALE"))
    );
    assert_eq!(stale.body, first.body);

    // 5xx is never cached: a new URL fails twice at the origin.
    let before = origin.seen().len();
    assert_eq!(relay.pass(&origin.url("/down.jpg")).await.status, 502);
    assert_eq!(relay.pass(&origin.url("/down.jpg")).await.status, 502);
    assert_eq!(origin.seen().len(), before + 2);

    // 404 is cached for negative_ttl.
    mode.store(404, Ordering::SeqCst);
    let before = origin.seen().len();
    for _ in 0..3 {
        let a = relay.pass(&origin.url("/gone.jpg")).await;
        assert_eq!(a.status, 404);
        assert_eq!(a.header("cache-control"), Some("public, max-age=60"));
    }
    assert_eq!(origin.seen().len(), before + 1);
}

#[tokio::test]
async fn purge_drops_the_original_and_its_variants() {
    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::start(counting_origin_image(jpeg(200, 100))).await;
    let relay = start_cached(dir.path(), |c| {
        c.server.admin_token = Secret("purge-token".into())
    })
    .await;
    let url = origin.url("/x.jpg");
    for target in [
        format!("/?{url}"),
        format!("/?url={url}&w=50"),
        format!("/?url={url}&w=80"),
    ] {
        assert_eq!(relay.get(&target).await.status, 200);
    }
    assert_eq!(origin.seen().len(), 1);
    let purge = format!(
        "/purge?url={}",
        form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>()
    );
    let denied = request(
        relay.addr,
        "POST",
        &purge,
        &[("Authorization", "Bearer wrong"), ("Content-Length", "0")],
    )
    .await;
    assert_eq!(denied.status, 401);
    let ok = request(
        relay.addr,
        "POST",
        &purge,
        &[
            ("Authorization", "Bearer purge-token"),
            ("Content-Length", "0"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(
        cache_files(dir.path()).is_empty(),
        "{:?}",
        cache_files(dir.path())
    );
    let a = relay.get(&format!("/?url={url}&w=50")).await;
    assert_eq!(a.header("x-cache"), Some("MISS"));
    assert_eq!(origin.seen().len(), 2);

    let no_token = Relay::start(|_| {}).await;
    let a = request(
        no_token.addr,
        "POST",
        &purge,
        &[("Authorization", "Bearer x"), ("Content-Length", "0")],
    )
    .await;
    assert_eq!(a.status, 404, "off without a token");
}

#[tokio::test]
async fn kill_9_while_writing_never_leaves_a_corrupt_answer() {
    let bin = env!("CARGO_BIN_EXE_imgrelay");
    let dir = tempfile::tempdir().unwrap();
    let images: Arc<Vec<Vec<u8>>> =
        Arc::new((0..300).map(|i| jpeg(40 + i % 50, 30 + i / 10)).collect());
    let imgs = images.clone();
    let origin = Origin::start(move |req| {
        let i: usize = req
            .target
            .trim_start_matches("/k")
            .trim_end_matches(".jpg")
            .parse()
            .unwrap_or(0);
        Reply::ok("image/jpeg", &imgs[i % imgs.len()])
    })
    .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spawn = || {
        tokio::process::Command::new(bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir.path())
            .env("IMGRELAY_SECURITY__ALLOW_NETWORKS", r#"["127.0.0.0/8"]"#)
            .env("IMGRELAY_SECURITY__ALLOWED_PORTS", "[]")
            .env("IMGRELAY_CACHE__DIR", dir.path().join("cache"))
            .env("IMGRELAY_CACHE__MEMORY_BYTES", "0")
            .env("IMGRELAY_LOG__LEVEL", "error")
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let wait_up = || async move {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("imgrelay did not come up");
    };

    let mut child = spawn();
    wait_up().await;
    // Load from 8 clients; kill -9 once about half the entries are written.
    let done = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for c in 0..8 {
        let (origin_url, done) = (origin.url(""), done.clone());
        load.push(tokio::spawn(async move {
            for i in (c..300).step_by(8) {
                let mut s = match tokio::net::TcpStream::connect(addr).await {
                    Ok(s) => s,
                    Err(_) => return,
                };
                let target = if i % 3 == 0 {
                    format!("/?url={origin_url}/k{i}.jpg&w=20")
                } else {
                    format!("/?{origin_url}/k{i}.jpg")
                };
                let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                if s.write_all(req.as_bytes()).await.is_err() {
                    return;
                }
                let mut buf = Vec::new();
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf).await;
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    while done.load(Ordering::SeqCst) < 150 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    for l in load {
        let _ = l.await;
    }

    let mut child = spawn();
    wait_up().await;
    let mut hits = 0;
    for i in 0..300usize {
        let pass = request(
            addr,
            "GET",
            &format!("/?{}", origin.url(&format!("/k{i}.jpg"))),
            &[],
        )
        .await;
        assert_eq!(pass.status, 200, "k{i}");
        assert_eq!(pass.body, images[i], "k{i}: pass-through bytes");
        hits += usize::from(pass.header("x-cache") == Some("HIT-DISK"));
        if i % 3 == 0 {
            let v = request(
                addr,
                "GET",
                &format!("/?url={}&w=20", origin.url(&format!("/k{i}.jpg"))),
                &[],
            )
            .await;
            assert_eq!(v.status, 200, "k{i} variant");
            assert_eq!(decoded_size(&v.body).0, 20, "k{i} variant decodes");
        }
    }
    assert!(
        hits > 50,
        "entries written before the kill survived: {hits}"
    );
    assert!(
        !std::fs::read_dir(dir.path().join("cache/tmp"))
            .unwrap()
            .any(|_| true),
        "temp files swept at start-up"
    );
    child.start_kill().unwrap();
    let _ = child.wait().await;
}
