//! Objects a replica did not seal are never served: a writer with bucket access but without
//! `cache.shared.key` cannot make imgrelay answer with forged HTML or another source's image,
//! and a rotated key turns old objects into misses. Also what the tier exports: its stage
//! timings and the writes it dropped.

use crate::*;
use imgrelay::{
    cache::{unix_now, Entry},
    config::{Bytes, Secret},
};

const ROTATED_KEY: &str = "the-fleet's-next-mac-key-after-rotation";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_swapped_object_is_a_miss_counted_and_never_served() {
    // An object rewritten with `mime = "text/html"`, an HTML body and a recomputed checksum was
    // served as HIT-SHARED with `content-type: text/html` from imgrelay's own origin.
    let s3 = S3Server::start().await;
    let origin = jpeg_origin().await;
    let (src, other) = (origin.url("/victim.jpg"), origin.url("/other.jpg"));
    let a = Replica::start(&s3, true).await;
    let good = a.get(&variant(&src, "w=120&output=png")).await;
    assert_eq!((good.status, x_cache(&good)), (200, "MISS"));
    assert_eq!(a.get(&variant(&other, "w=30")).await.status, 200);
    s3.wait_for_objects(&src, 2).await;
    s3.wait_for_objects(&other, 2).await;

    let objects = s3.objects(&src).await;
    let (original_path, variant_path) = {
        let o = objects.iter().find(|(p, _)| p.as_ref().ends_with("/o"));
        let v = objects.iter().find(|(p, _)| !p.as_ref().ends_with("/o"));
        (o.unwrap().0.clone(), v.unwrap().0.clone())
    };
    // Forged: the variant's full key (read off the object), valid layout and checksum, an
    // HTML body; no MAC (a writer without the key cannot make one).
    let key = key_of(&objects.iter().find(|(p, _)| *p == variant_path).unwrap().1);
    assert!(key.starts_with("v"), "{key}");
    let now = unix_now();
    let forged = Entry {
        body: bytes::Bytes::from_static(b"<script>alert(document.domain)</script>"),
        mime: "text/html".into(),
        etag: "\"forged\"".into(),
        stored: now,
        expires: now + 3600,
        negative: 0,
        upstream_etag: String::new(),
        upstream_last_modified: String::new(),
    };
    s3.put(&variant_path, forged.encode(&key)).await;
    // Swapped: another source's original, sealed by a real replica, copied over this one's.
    let others = s3.objects(&other).await;
    let other_original = others
        .iter()
        .find(|(p, _)| p.as_ref().ends_with("/o"))
        .unwrap();
    s3.put(&original_path, other_original.1.to_vec()).await;

    let b = Replica::start(&s3, true).await;
    let again = b.get(&variant(&src, "w=120&output=png")).await;
    assert_eq!(
        (again.status, x_cache(&again), again.header("content-type")),
        (200, "MISS", Some("image/png")),
        "re-rendered from the origin"
    );
    assert_eq!(
        again.body, good.body,
        "this source's pixels, not the other's"
    );
    assert_eq!(decoded_size(&again.body), (120, 90));
    let s = b.scrape().await;
    assert_eq!(
        s.get("imgrelay_shared_unverified_total"),
        2.0,
        "the forged variant and the swapped original, each counted once"
    );
    assert_eq!(b.shared_errors().map(|(_, n)| n), [0; 4], "no bucket error");
}

/// The full key an encoded entry carries (the first length-prefixed string after the fixed
/// header): what a forger reads off an object to rewrite it.
fn key_of(object: &[u8]) -> String {
    let len = u32::from_le_bytes(object[46..50].try_into().unwrap()) as usize;
    String::from_utf8(object[50..50 + len].to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_key_turns_old_objects_into_misses() {
    let s3 = S3Server::start().await;
    let origin = jpeg_origin().await;
    let src = origin.url("/rotated.jpg");
    let old = Replica::start(&s3, true).await;
    assert_eq!(x_cache(&old.get(&variant(&src, "w=64")).await), "MISS");
    s3.wait_for_objects(&src, 2).await;
    let before = s3.objects(&src).await;

    let rotated = |c: &mut Config| c.cache.shared.key = Secret(ROTATED_KEY.into());
    let new = Replica::start_with(&s3, true, rotated).await;
    let first = new.get(&variant(&src, "w=64")).await;
    assert_eq!((first.status, x_cache(&first)), (200, "MISS"));
    assert_eq!(
        new.scrape().await.get("imgrelay_shared_unverified_total"),
        2.0
    );
    assert_eq!(origin.seen().len(), 2, "the old original was not trusted");

    // The new key's fills replace the old objects; a replica with the new key reads them.
    s3.wait_until_changed(&before).await;
    let next = Replica::start_with(&s3, true, rotated).await;
    assert_eq!(
        x_cache(&next.get(&variant(&src, "w=64")).await),
        "HIT-SHARED"
    );
    assert_eq!(
        next.scrape().await.get("imgrelay_shared_unverified_total"),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_stage_timings_and_dropped_writes_are_exported() {
    // `shared_get` and `shared_put` were exported but never observed, and writes the full
    // queue dropped were counted where no scrape could see them.
    let s3 = S3Server::start().await;
    let origin = jpeg_origin().await;
    let src = origin.url("/timed.jpg");
    let count = |stage: &str| format!("imgrelay_stage_duration_seconds_count{{stage=\"{stage}\"}}");

    // A write queue smaller than any answer: both writes (original, variant) are dropped.
    let tiny = Replica::start_with(&s3, false, |c| c.cache.shared.queue_bytes = Bytes(1)).await;
    assert_eq!(tiny.get(&variant(&src, "w=32")).await.status, 200);
    let s = tiny.scrape().await;
    assert_eq!(s.get("imgrelay_shared_dropped_writes_total"), 2.0);
    assert_eq!(s.get(&count("shared_get")), 2.0, "variant and original");
    assert_eq!(s.get(&count("shared_put")), 0.0);
    assert!(s3.objects(&src).await.is_empty());

    let writer = Replica::start(&s3, false).await;
    assert_eq!(writer.get(&variant(&src, "w=32")).await.status, 200);
    s3.wait_for_objects(&src, 2).await;
    let mut puts = 0.0;
    for _ in 0..200 {
        puts = writer.scrape().await.get(&count("shared_put"));
        if puts >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(puts, 2.0, "each landed write is timed");
    let s = writer.scrape().await;
    assert_eq!(s.get("imgrelay_shared_dropped_writes_total"), 0.0);
    assert!(s.has("imgrelay_stage_duration_seconds_bucket{stage=\"shared_put\",le=\"+Inf\"}"));
}
