//! The article rewriter against bare `lol_html` on the same bytes, in one criterion run
//! (`Throughput::Bytes`): the posts of `tests/fixtures/corpus` (a copy of `../shared/corpus`),
//! read at start.
//!
//! - `lol_html/no_handlers`: every post through an `HtmlRewriter` without handlers. Without
//!   selectors `lol_html` only scans for tag names and never lexes attributes: a floor.
//! - `lol_html/target_selectors_noop`: the same with the rewriter's selectors and handlers
//!   that do nothing: what locating the targets costs, the reference of the rewriter's target.
//! - `imgrelay/rewrite`: the full rewrite of each post (front matter, pulldown-cmark over the
//!   body, `lol_html` over each HTML span with the real handlers, unwrapping, URL building,
//!   splicing).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use imgrelay::{
    config::Config,
    rewrite::{Kind, Rewriter},
};
use std::path::Path;

/// The binary's allocator, so the figures are what `imgrelay rewrite` and `POST /rewrite` see.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let mut posts: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    posts.sort();
    posts
        .iter()
        .map(|p| std::fs::read(p).expect("readable post"))
        .collect()
}

/// Streams `post` through `lol_html` with `selectors` and no-op handlers.
fn bare(post: &[u8], selectors: &[&str]) -> usize {
    let mut settings = lol_html::Settings::new();
    for s in selectors {
        settings = settings.append_element_content_handler(lol_html::element!(s, |_el| Ok(())));
    }
    let mut out = 0usize;
    let mut r = lol_html::HtmlRewriter::new(settings, |c: &[u8]| out += c.len());
    r.write(post).expect("lol_html parses");
    r.end().expect("lol_html ends");
    out
}

fn rewrite(c: &mut Criterion) {
    let posts = corpus();
    let bytes: usize = posts.iter().map(Vec::len).sum();
    let rw = Rewriter::new(&Config::default());
    let targets = [
        "img",
        "picture source",
        "video[poster]",
        "meta[content]",
        "link[href]",
        "a[href]",
        "[style]",
        "noscript",
    ];
    let mut g = c.benchmark_group("corpus");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("lol_html/no_handlers", |b| {
        b.iter(|| posts.iter().map(|p| bare(black_box(p), &[])).sum::<usize>())
    });
    g.bench_function("lol_html/target_selectors_noop", |b| {
        b.iter(|| {
            posts
                .iter()
                .map(|p| bare(black_box(p), &targets))
                .sum::<usize>()
        })
    });
    g.bench_function("imgrelay/rewrite", |b| {
        b.iter(|| {
            posts
                .iter()
                .map(|p| {
                    rw.rewrite_document(black_box(p), Kind::Auto, None)
                        .expect("rewrites")
                        .bytes
                        .len()
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, rewrite);
criterion_main!(benches);
