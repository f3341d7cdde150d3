//! `srcset` values: candidates are in-bounds, ordered, non-overlapping ranges on character
//! boundaries; a URL is never empty and holds no whitespace; replacing every URL by itself
//! gives the value back; a list `widths` writes parses back to its pairs.
#![no_main]

use imgrelay::fuzz::srcset;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let candidates = srcset::parse(value);
    let mut last = 0;
    for c in &candidates {
        assert!(
            last <= c.url.start && c.url.start < c.url.end,
            "{value:?}: {c:?}"
        );
        assert!(c.url.end <= c.descriptors.start && c.descriptors.start <= c.descriptors.end);
        assert!(c.descriptors.end <= value.len());
        let url = &value[c.url.clone()];
        let _ = &value[c.descriptors.clone()];
        assert!(
            !url.bytes().any(|b| b.is_ascii_whitespace()),
            "{value:?}: {url:?}"
        );
        last = c.descriptors.end.max(c.url.end);
    }
    let same = srcset::replace_urls(value, |u| Some(u.to_string()));
    assert_eq!(same.as_deref(), (!candidates.is_empty()).then_some(value));

    // URLs as the rewriter writes them (no whitespace, no trailing comma) round-trip.
    let pairs: Vec<(String, u32)> = candidates
        .iter()
        .map(|c| &value[c.url.clone()])
        .filter(|u| !u.ends_with(',') && !u.starts_with(','))
        .enumerate()
        .map(|(i, u)| (u.to_string(), 100 * (i as u32 + 1)))
        .collect();
    let written = srcset::widths(&pairs);
    let parsed: Vec<(String, String)> = srcset::parse(&written)
        .into_iter()
        .map(|c| {
            (
                written[c.url].to_string(),
                written[c.descriptors].to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = pairs
        .iter()
        .map(|(u, w)| (u.clone(), format!("{w}w")))
        .collect();
    assert_eq!(parsed, want, "{written:?}");
});
