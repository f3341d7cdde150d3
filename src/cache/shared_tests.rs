//! Tests of the shared tier over an in-memory bucket, and over a bucket that fails or hangs on
//! command (the slow or broken S3 server, without a network).

use super::*;
use crate::{
    cache::{Cache, Filled, Tier},
    config::{self, Config},
    error::Error,
};
use async_trait::async_trait;
use futures_util::stream::BoxStream;
use object_store::{
    memory::InMemory, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    PutMultipartOptions, PutOptions, PutResult,
};
use std::sync::{atomic::AtomicUsize, Mutex};

/// How the test bucket behaves right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Works,
    Fails,
    /// Never answers: a bucket slower than any timeout.
    Hangs,
}

/// An in-memory bucket that can be told to fail or hang, and counts the calls it gets.
#[derive(Debug)]
struct Bucket {
    inner: InMemory,
    mode: Mutex<Mode>,
    calls: AtomicUsize,
}

impl Bucket {
    fn new() -> Arc<Bucket> {
        Arc::new(Bucket {
            inner: InMemory::new(),
            mode: Mutex::new(Mode::Works),
            calls: AtomicUsize::new(0),
        })
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn gate(&self) -> object_store::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mode = *self.mode.lock().unwrap();
        match mode {
            Mode::Works => Ok(()),
            Mode::Fails => Err(object_store::Error::Generic {
                store: "test",
                source: "injected failure".into(),
            }),
            Mode::Hangs => std::future::pending().await,
        }
    }

    async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .inner
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("test bucket")
    }
}

#[async_trait]
impl ObjectStore for Bucket {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.gate().await?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.gate().await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.gate().await?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.gate().await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.gate().await?;
        self.inner.copy_opts(from, to, options).await
    }
}

const HOUR: Duration = Duration::from_secs(3600);

const KEY: &[u8] = b"the fleet's MAC key, 32 bytes long";

fn tier(bucket: &Arc<Bucket>, timeout: Duration, queue_bytes: u64) -> Shared {
    Shared::new(
        bucket.clone(),
        "/fleet/cache/",
        timeout,
        queue_bytes,
        Seal::new(KEY),
        SharedSeries::default(),
    )
}

fn entry(body: &'static [u8]) -> Arc<Entry> {
    let now = unix_now();
    Arc::new(Entry {
        body: Bytes::from_static(body),
        mime: "image/png".into(),
        etag: "\"e\"".into(),
        stored: now,
        expires: now + 600,
        negative: 0,
        upstream_etag: String::new(),
        upstream_last_modified: String::new(),
    })
}

impl Shared {
    /// Waits until every queued write has finished (landed, failed or timed out).
    async fn drained(&self) {
        while self.core.queued.load(Ordering::Acquire) > 0 {
            tokio::task::yield_now().await;
        }
    }
}

const GROUP: &str = "o|http://h/a.png";
const VARIANT: &str = "v2|http://h/a.png|w=10|out=source|q=80,75,60";

#[tokio::test]
async fn objects_land_at_the_spec_layout_and_read_back_verified() {
    let bucket = Bucket::new();
    let shared = tier(&bucket, HOUR, 1 << 20);
    shared.put_later(GROUP, GROUP, &entry(b"original"));
    shared.put_later(GROUP, VARIANT, &entry(b"variant"));
    shared.drained().await;
    let g = layout::hash(GROUP);
    let mut expected = vec![
        format!("fleet/cache/{}/{g}/o", &g[..2]),
        format!("fleet/cache/{}/{g}/v-{}", &g[..2], layout::hash(VARIANT)),
    ];
    expected.sort();
    assert_eq!(bucket.keys().await, expected);
    assert_eq!(
        &shared.get(GROUP, GROUP).await.unwrap().body[..],
        b"original"
    );
    assert_eq!(
        &shared.get(GROUP, VARIANT).await.unwrap().body[..],
        b"variant"
    );
    assert!(shared
        .get("o|http://h/b.png", "o|http://h/b.png")
        .await
        .is_none());
    assert_eq!(shared.stats().errors().map(|(_, n)| n), [0; 4]);
}

#[tokio::test]
async fn damaged_forged_swapped_and_expired_objects_are_misses() {
    let bucket = Bucket::new();
    let shared = tier(&bucket, HOUR, 1 << 20);
    let path = shared.core.path(GROUP, GROUP);
    let seal = Seal::new(KEY);
    let good = seal.seal(entry(b"original").encode(GROUP));
    let mut flipped = good.clone();
    let body_end = flipped.len() - crate::cache::seal::TAG_LEN - 1;
    flipped[body_end] ^= 1;
    let mut expired = (*entry(b"original")).clone();
    expired.expires = unix_now() - 1;
    let mut html = (*entry(b"<script>alert(1)</script>")).clone();
    html.mime = "text/html".into();
    for (what, bytes) in [
        ("flipped byte", flipped),
        ("truncated", good[..good.len() - 3].to_vec()),
        (
            "swapped: another key's sealed object",
            seal.seal(entry(b"original").encode("o|http://h/other.png")),
        ),
        ("forged: checksum right, no MAC", html.encode(GROUP)),
        (
            "sealed with a rotated-away key",
            Seal::new(b"last year's key, 32 bytes or more").seal(entry(b"old").encode(GROUP)),
        ),
        ("not an entry", b"<Error>NoSuchKey</Error>".to_vec()),
        ("expired", seal.seal(expired.encode(GROUP))),
    ] {
        bucket.inner.put(&path, bytes.into()).await.unwrap();
        assert!(shared.get(GROUP, GROUP).await.is_none(), "{what}");
    }
    assert_eq!(
        shared.unverified(),
        6,
        "all but the expired one are counted"
    );
    bucket.inner.put(&path, good.into()).await.unwrap();
    assert!(
        shared.get(GROUP, GROUP).await.is_some(),
        "and an intact one is a hit"
    );
    assert_eq!(
        shared.stats().errors().map(|(_, n)| n),
        [0; 4],
        "none is an error"
    );
}

#[tokio::test]
async fn an_object_larger_than_any_write_is_not_read_whole() {
    let bucket = Bucket::new();
    let shared = tier(&bucket, HOUR, 16);
    let huge = vec![0u8; (HEADER_ROOM + 1024) as usize];
    let path = shared.core.path(GROUP, GROUP);
    bucket.inner.put(&path, huge.into()).await.unwrap();
    assert!(shared.get(GROUP, GROUP).await.is_none());
}

#[tokio::test]
async fn five_failures_skip_the_bucket_then_one_probe_goes_through() {
    let bucket = Bucket::new();
    let shared = tier(&bucket, HOUR, 1 << 20);
    bucket.set(Mode::Fails);
    for _ in 0..FAILURES_TO_SKIP {
        assert!(shared.get(GROUP, GROUP).await.is_none());
    }
    assert_eq!(bucket.calls(), FAILURES_TO_SKIP as usize);
    bucket.set(Mode::Works);
    for _ in 0..3 {
        assert!(shared.get(GROUP, GROUP).await.is_none());
    }
    shared.put_later(GROUP, GROUP, &entry(b"x"));
    shared.drained().await;
    assert_eq!(
        bucket.calls(),
        FAILURES_TO_SKIP as usize,
        "skipped: no call reached it"
    );
    assert_eq!(
        shared.stats().errors(),
        [("get", 5), ("put", 0), ("delete", 0), ("skipped", 4)]
    );
    // The window's end, without waiting for it: the breaker's clock is its own unit's.
    shared
        .core
        .breaker
        .record(false, Instant::now() - SKIP_WINDOW);
    assert!(
        shared.get(GROUP, GROUP).await.is_none(),
        "the probe: absent"
    );
    assert_eq!(bucket.calls(), FAILURES_TO_SKIP as usize + 1);
    shared.put_later(GROUP, GROUP, &entry(b"x"));
    shared.drained().await;
    assert!(
        shared.get(GROUP, GROUP).await.is_some(),
        "closed again after the probe"
    );
}

#[tokio::test]
async fn a_hanging_bucket_is_a_miss_after_the_timeout() {
    let bucket = Bucket::new();
    let shared = tier(&bucket, Duration::from_millis(20), 1 << 20);
    bucket.set(Mode::Hangs);
    assert!(shared.get(GROUP, GROUP).await.is_none());
    shared.put_later(GROUP, GROUP, &entry(b"x"));
    shared.drained().await;
    assert_eq!(
        shared.stats().errors(),
        [("get", 1), ("put", 1), ("delete", 0), ("skipped", 0)]
    );
}

#[tokio::test]
async fn a_full_queue_drops_the_write_and_counts_it() {
    let bucket = Bucket::new();
    bucket.set(Mode::Hangs);
    let shared = tier(&bucket, HOUR, 10);
    shared.put_later(GROUP, GROUP, &entry(b"0123456789abc")); // larger than the whole queue
    assert_eq!(shared.dropped_writes(), 1);
    shared.put_later(GROUP, GROUP, &entry(b"01234")); // fits, and hangs in the bucket
    shared.put_later(GROUP, VARIANT, &entry(b"012345")); // 5 + 6 > 10
    assert_eq!(shared.dropped_writes(), 2);
}

#[tokio::test]
async fn purge_deletes_one_sources_prefix_only() {
    let bucket = Bucket::new();
    let shared = tier(&bucket, HOUR, 1 << 20);
    let other = "o|http://h/b.png";
    shared.put_later(GROUP, GROUP, &entry(b"a"));
    shared.put_later(GROUP, VARIANT, &entry(b"a-variant"));
    shared.put_later(other, other, &entry(b"b"));
    shared.drained().await;
    assert_eq!(shared.purge(GROUP).await, Ok(2));
    let g = layout::hash(other);
    assert_eq!(
        bucket.keys().await,
        vec![format!("fleet/cache/{}/{g}/o", &g[..2])]
    );
    assert_eq!(shared.purge(GROUP).await, Ok(0));
}

fn cache_with(bucket: &Arc<Bucket>, memory: bool, dir: Option<&std::path::Path>) -> Cache {
    let mut config = Config::default();
    config.cache.memory_bytes = config::Bytes(if memory { 1 << 20 } else { 0 });
    config.cache.disk_bytes = config::Bytes(0);
    let mut cache = Cache::open(&config, &crate::metrics::Metrics::new()).unwrap();
    if let Some(dir) = dir {
        cache.disk = Some(crate::cache::disk::Disk::open(dir, 1 << 20).unwrap());
    }
    cache.shared = Some(Arc::new(tier(bucket, HOUR, 1 << 20)));
    cache
}

async fn ask(cache: &Cache, body: &'static [u8]) -> Result<crate::cache::Hit, Error> {
    cache
        .get_or_fill(GROUP, GROUP, move |_| async move {
            Ok(Filled::Store((*entry(body)).clone(), String::new()))
        })
        .await
        .1
}

#[tokio::test]
async fn a_replica_answers_from_the_bucket_and_promotes_into_disk_and_memory() {
    let bucket = Bucket::new();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = cache_with(&bucket, true, Some(dir_a.path()));
    let b = cache_with(&bucket, true, Some(dir_b.path()));
    assert_eq!(ask(&a, b"from the origin").await.unwrap().tier, Tier::Miss);
    a.shared.as_ref().unwrap().drained().await;

    let hit = ask(&b, b"never filled").await.unwrap();
    assert_eq!(
        (hit.tier, &hit.entry.body[..]),
        (Tier::Shared, &b"from the origin"[..])
    );
    assert!(hit.timing.starts_with("shared_get;dur="), "{}", hit.timing);
    assert_eq!(ask(&b, b"never filled").await.unwrap().tier, Tier::Memory);
    let on_disk = b
        .disk
        .as_ref()
        .unwrap()
        .get(GROUP, GROUP)
        .expect("promoted to disk");
    assert_eq!(&on_disk.body[..], b"from the origin");
}

#[tokio::test]
async fn a_slow_bucket_does_not_touch_memory_or_disk_hits() {
    let bucket = Bucket::new();
    let dir = tempfile::tempdir().unwrap();
    let with_memory = cache_with(&bucket, true, None);
    let with_disk = cache_with(&bucket, false, Some(dir.path()));
    for cache in [&with_memory, &with_disk] {
        bucket.set(Mode::Works);
        ask(cache, b"body").await.unwrap();
        cache.shared.as_ref().unwrap().drained().await;
        // From here every bucket call would hang for the hour of the timeout.
        bucket.set(Mode::Hangs);
        let before = bucket.calls();
        let hit = tokio::time::timeout(Duration::from_secs(60), ask(cache, b"refilled"))
            .await
            .expect("a local hit never waits for the bucket")
            .unwrap();
        assert!(
            matches!(hit.tier, Tier::Memory | Tier::Disk),
            "{:?}",
            hit.tier
        );
        assert_eq!(&hit.entry.body[..], b"body");
        assert_eq!(bucket.calls(), before, "the bucket was not asked");
    }
}

#[tokio::test]
async fn a_failing_bucket_is_a_miss_filled_from_the_origin() {
    let bucket = Bucket::new();
    bucket.set(Mode::Fails);
    let cache = cache_with(&bucket, false, None);
    for _ in 0..8 {
        let hit = ask(&cache, b"origin").await.unwrap();
        assert_eq!(
            (hit.tier, &hit.entry.body[..]),
            (Tier::Miss, &b"origin"[..])
        );
    }
    cache.shared.as_ref().unwrap().drained().await;
    let [(_, get), (_, put), _, (_, skipped)] = cache.shared_stats().unwrap().errors();
    assert!(
        get + put >= 5 && get >= 1 && skipped >= 1,
        "{get} {put} {skipped}"
    );
}
