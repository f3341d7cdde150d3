//! Request parsing: the query of `GET /?…` → `ImageRequest` → `Transform`, and the source URL.
//!
//! Beyond "no panic": a transform that parses writes (`Display`) one canonical query that
//! parses back to the same transform and is its own canonical form; the URL the rewriter and
//! `imgrelay sign` build from it (signed) verifies and parses back to the same source and
//! transform; a source URL that parses re-parses from its own serialisation to itself.
#![no_main]

use imgrelay::fuzz::{parse_source, transform_url, verify, ImageRequest, Secret, Transform};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

/// `limits.max_output_px` by default.
const MAX_PX: u32 = 8192;

fn transform_of(query: &str) -> Transform {
    let params: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    Transform::from_params(&params, MAX_PX)
        .unwrap_or_else(|e| panic!("canonical {query:?} does not parse: {e}"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(request) = ImageRequest::parse(Some(query)) else {
        return;
    };
    if let Ok(url) = parse_source(request.source()) {
        let again = parse_source(url.as_str())
            .unwrap_or_else(|e| panic!("{url} does not parse again: {e}"));
        assert_eq!(again, url, "source URL is not canonical");
    }
    let ImageRequest::Params { source, params } = &request else {
        return;
    };
    let Ok(t) = Transform::from_params(params, MAX_PX) else {
        return;
    };
    let canonical = t.to_string();
    let back = transform_of(&canonical);
    assert_eq!(back, t, "{canonical:?} parses to another transform");
    assert_eq!(back.to_string(), canonical, "canonical form is not stable");

    let key = Secret("fuzz-key-0123456789abcdef0123456789".into());
    let url = transform_url(
        "https://img.example/p",
        std::slice::from_ref(&key),
        source,
        &t,
    );
    let target = url.strip_prefix("https://img.example").unwrap_or_default();
    verify(std::slice::from_ref(&key), target).unwrap_or_else(|e| panic!("{url}: {e}"));
    let (_, query) = target.split_once('?').unwrap_or_default();
    let unsigned = query.rsplit_once("&s=").map_or(query, |(q, _)| q);
    match ImageRequest::parse(Some(unsigned)) {
        Ok(ImageRequest::Params { source: s, params }) => {
            assert_eq!(&s, source, "{url}");
            let t2 =
                Transform::from_params(&params, MAX_PX).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(t2, t, "{url}");
        }
        other => panic!("{url} parses as {other:?}"),
    }
});
