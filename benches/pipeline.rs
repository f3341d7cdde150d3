//! Criterion benches of the image pipeline per stage and format, and of the cache's entry
//! codec and disk tier, on the checked-in fixtures (`tests/fixtures`). `cargo bench --bench
//! pipeline` shows where a transform's time goes.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use imgrelay::{
    cache::{disk::Disk, Entry},
    image::format::ImageFormat,
    image::{decode, encode, geometry, resize, Job, Limits},
    transform::{Format, Transform},
};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

fn fit_512() -> Transform {
    Transform {
        w: Some(512),
        h: Some(512),
        enlarge: true,
        ..Transform::default()
    }
}

fn stages(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("decode");
    for (name, format) in [
        ("photo.jpg", ImageFormat::Jpeg),
        ("art-rgba.png", ImageFormat::Png),
        ("lossy.webp", ImageFormat::Webp),
    ] {
        let bytes = fixture(name);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| decode::still(black_box(bytes), format, &limits).expect("decode"))
        });
    }
    g.finish();

    // What a transform served as the source's own bytes pays to check them (one answer per
    // file): a JPEG's scans read at 1/8, a PNG decoded whole.
    let mut g = c.benchmark_group("check");
    for (name, format) in [
        ("photo.jpg", ImageFormat::Jpeg),
        ("art-rgba.png", ImageFormat::Png),
    ] {
        let bytes = fixture(name);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| decode::check(black_box(bytes), format, &limits).expect("check"))
        });
    }
    g.finish();

    let px = decode::still(&fixture("photo.jpg"), ImageFormat::Jpeg, &limits).expect("decode");
    let t = Transform {
        w: Some(200),
        ..Transform::default()
    };
    let plan = geometry::plan(px.width, px.height, &t, 8192);
    let mut g = c.benchmark_group("resize");
    g.throughput(Throughput::Bytes(px.data.len() as u64));
    g.bench_function("480x300_to_200_lanczos3", |b| {
        b.iter(|| resize::apply(px.clone(), &plan, [255; 4]).expect("resize"))
    });
    g.finish();

    let small = resize::apply(px.clone(), &plan, [255; 4]).expect("resize");
    let mut g = c.benchmark_group("encode_200px");
    for format in [Format::Jpeg, Format::Png, Format::Webp, Format::Avif] {
        g.bench_function(format.to_string(), |b| {
            b.iter(|| encode::still(black_box(&small), format, 75).expect("encode"))
        });
    }
    g.finish();

    let bytes = fixture("photo.jpg");
    let job = Job {
        source: ImageFormat::Jpeg,
        transform: fit_512(),
        output: Format::Jpeg,
        quality: 80,
        limits: Limits::default(),
    };
    c.bench_function("render/photo.jpg_fit512_jpeg", |b| {
        b.iter(|| imgrelay::image::render(black_box(&bytes), &job).expect("render"))
    });
}

/// Large real images from the load harness's corpus (`target/bench-corpus`, built by
/// `benches/load/run.sh`), stage by stage, when it is there: where a 5120×2880 → 512 job spends
/// its time. Skipped without the corpus (the fixtures above are small).
fn corpus_stages(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-corpus");
    let limits = Limits::default();
    for (name, format) in [
        ("Kay-5120x2880.png", ImageFormat::Png),
        ("Shell-5120x2880.jpg", ImageFormat::Jpeg),
        ("Flow-5120x2880.jpg", ImageFormat::Jpeg),
        ("PastelHills-3200x2000.jpg", ImageFormat::Jpeg),
        ("SafeLanding-1622x2880.jpg", ImageFormat::Jpeg),
    ] {
        let Ok(bytes) = std::fs::read(dir.join(name)) else {
            eprintln!("corpus_stages: {name} missing, run benches/load/run.sh once");
            continue;
        };
        let mut g = c.benchmark_group(format!("corpus/{name}"));
        g.sample_size(10);
        g.bench_function("decode_for_fit512", |b| {
            b.iter(|| {
                decode::still_for(black_box(&bytes), format, &limits, &fit_512()).expect("decode")
            })
        });
        let decode::Decoded { px, full, .. } =
            decode::still_for(&bytes, format, &limits, &fit_512()).expect("decode");
        let plan = geometry::plan(full.0, full.1, &fit_512(), 8192)
            .for_decoded(full, (px.width, px.height));
        g.bench_function("resize_to_512", |b| {
            b.iter(|| resize::apply(px.clone(), &plan, [255; 4]).expect("resize"))
        });
        let small = resize::apply(px.clone(), &plan, [255; 4]).expect("resize");
        let out = imgrelay::image::natural_output(format);
        g.bench_function(format!("encode_{out}"), |b| {
            b.iter(|| encode::still(black_box(&small), out, 80).expect("encode"))
        });
        g.finish();
    }
}

fn cache(c: &mut Criterion) {
    let entry = Entry {
        body: Bytes::from(fixture("photo.jpg")),
        mime: "image/jpeg".into(),
        etag: "\"0123456789abcdef0123456789abcdef\"".into(),
        stored: 1_700_000_000,
        expires: 1_800_000_000,
        negative: 0,
        upstream_etag: String::new(),
        upstream_last_modified: String::new(),
    };
    let key = "o|http://static.example.com/qupost/img/2021/10/14/a.jpeg";
    let encoded = entry.encode(key);
    let mut g = c.benchmark_group("cache_entry");
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("encode", |b| b.iter(|| black_box(&entry).encode(key)));
    g.bench_function("decode_verify", |b| {
        b.iter(|| Entry::decode(black_box(&encoded), key).expect("valid"))
    });
    g.finish();

    let dir = tempfile::tempdir().expect("tempdir");
    let disk = Disk::open(dir.path(), 1 << 30).expect("disk");
    disk.put(key, key, &entry).expect("put");
    let mut g = c.benchmark_group("cache_disk");
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("get", |b| b.iter(|| disk.get(key, key).expect("hit")));
    g.bench_function("put", |b| {
        b.iter(|| disk.put(key, key, &entry).expect("put"))
    });
    g.finish();
}

criterion_group!(benches, stages, corpus_stages, cache);
criterion_main!(benches);
