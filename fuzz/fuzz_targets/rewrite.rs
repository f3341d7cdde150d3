//! The whole article rewriter, HTML and Markdown, through `Rewriter::rewrite_document`.
//!
//! The first byte picks the kind (auto, HTML, Markdown), the configuration (the defaults, with
//! `srcset` widths and added attributes, or URLs only, signed) and whether a base URL resolves
//! relative references; the rest is the document. Asserted: no panic; rewriting the output
//! again changes nothing (idempotence); a document in which the rewriter found no image
//! reference, and one that cannot hold any (no `<`, `![`, `:` or `=`), comes out byte-identical.
#![no_main]

use imgrelay::fuzz::{Config, Kind, Rewriter, Secret};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use url::Url;

fn rewriters() -> &'static [Rewriter; 2] {
    static R: OnceLock<[Rewriter; 2]> = OnceLock::new();
    R.get_or_init(|| {
        let mut c = Config::default();
        c.server.public_url = "https://img.example".into();
        let defaults = Rewriter::new(&c);
        c.server.public_url = "https://img.example/relay/".into();
        c.rewrite.widths = Vec::new();
        c.rewrite.lazy = false;
        c.rewrite.decoding = false;
        c.rewrite.dimensions = false;
        c.security.signing_keys = vec![Secret("fuzz-key-0123456789abcdef0123456789".into())];
        [defaults, Rewriter::new(&c)]
    })
}

fn cannot_hold_images(doc: &[u8]) -> bool {
    !doc.iter().any(|b| matches!(b, b'<' | b':' | b'=')) && !doc.windows(2).any(|w| w == b"![")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, doc)) = data.split_first() else {
        return;
    };
    let kind = [Kind::Auto, Kind::Html, Kind::Markdown][usize::from(selector % 3)];
    let rw = &rewriters()[usize::from(selector / 3 % 2)];
    let base = (selector / 6 % 2 == 1)
        .then(|| Url::parse("https://blog.example/posts/a/").ok())
        .flatten();
    let Ok(once) = rw.rewrite_document(doc, kind, base.as_ref()) else {
        return;
    };
    if once.stats.rewritten == 0 && once.stats.skipped.is_empty() {
        assert!(
            once.bytes == doc,
            "no image found, yet the document changed"
        );
    }
    if cannot_hold_images(doc) {
        assert!(once.bytes == doc, "a document without images changed");
        assert_eq!(once.stats.rewritten, 0);
    }
    let twice = rw
        .rewrite_document(&once.bytes, kind, base.as_ref())
        .unwrap_or_else(|e| panic!("the output does not rewrite again: {e}"));
    assert!(
        twice.bytes == once.bytes,
        "not idempotent:\n once: {:?}\ntwice: {:?}",
        String::from_utf8_lossy(&once.bytes),
        String::from_utf8_lossy(&twice.bytes)
    );
    assert_eq!(
        twice.stats.rewritten, 0,
        "a second pass rewrote a reference"
    );
});
