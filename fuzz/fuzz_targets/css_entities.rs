//! The rewriter's `url(…)` finder and character-reference decoder: `url(…)` ranges are
//! in-bounds, ordered, non-empty and on character boundaries; decoding never panics and
//! undoes what escaping writes, whatever the quote.
#![no_main]

use imgrelay::fuzz::{css_urls, decode_entities, escape_attribute};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut last = 0;
    for r in css_urls(text) {
        assert!(
            last <= r.start && r.start < r.end && r.end <= text.len(),
            "{text:?}: {r:?}"
        );
        let url = &text[r.clone()];
        assert!(!url.contains('\\'), "{text:?}: {url:?}");
        last = r.end;
    }
    let _ = decode_entities(text);
    for quote in ['"', '\''] {
        let escaped = escape_attribute(text, quote);
        assert!(!escaped.contains(quote), "{escaped:?}");
        assert_eq!(decode_entities(&escaped), text, "{escaped:?}");
    }
});
