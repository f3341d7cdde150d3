//! `GET|HEAD /?…`: the image endpoint. Today it serves the pass-through forms
//! (`/?{url}` and `/?url=` without transform parameters): the source's bytes unchanged, with
//! imgrelay's own headers. Parsing lives in `request`, fetching in `fetch`; this file only
//! applies the request-level rules (referer, signing) and shapes the answer.

use super::{common_headers, Body, Response};
use crate::{
    error::Error,
    fetch::{freshness, policy::HostPattern, source, Fetched},
    request::ImageRequest,
    AppState,
};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::Full;
use std::{sync::Arc, time::Instant};
use url::Url;

/// Handles one image request; `method` is GET or HEAD.
pub async fn get(
    state: &Arc<AppState>,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    check_referer(state, headers)?;
    let request = ImageRequest::parse(uri.query())?;
    if request.is_transform() {
        return Err(Error::NotImplemented(
            "resizing and re-encoding are not available yet",
        ));
    }
    let url = source::parse(request.source())?;
    check_signing(state, &url)?;

    let started = Instant::now();
    let fetched = match state.fetcher.fetch(&url).await {
        Ok(f) => f,
        Err(e) => return fallback(state, request.default_url(), e),
    };
    let fetch_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(image_response(state, method, headers, fetched, fetch_ms))
}

/// `security.allowed_referers`: the proxy's own hotlink protection. No `Referer` passes.
fn check_referer(state: &AppState, headers: &HeaderMap) -> Result<(), Error> {
    let allowed = &state.config.security.allowed_referers;
    let Some(referer) = headers.get(header::REFERER) else {
        return Ok(());
    };
    if allowed.is_empty() {
        return Ok(());
    }
    let host = referer
        .to_str()
        .ok()
        .and_then(|r| Url::parse(r).ok())
        .and_then(|u| u.host_str().map(str::to_string));
    match host {
        Some(h) if HostPattern::any(allowed, &h) => Ok(()),
        _ => Err(Error::RefererNotAllowed),
    }
}

/// With signing keys set, the unsigned forms serve only sources in `allowed_hosts` (SPEC §2.1).
fn check_signing(state: &AppState, url: &Url) -> Result<(), Error> {
    if state.config.security.signing_keys.is_empty()
        || state.fetcher.rules().explicitly_allowed(url)
    {
        Ok(())
    } else {
        Err(Error::BadSignature)
    }
}

/// `default=`: on a fetch failure, redirect to the fallback, which must pass the same source
/// rules (so imgrelay is no open redirect). Request errors are never replaced.
fn fallback(state: &AppState, default: Option<&str>, err: Error) -> Result<Response, Error> {
    let upstream_failure = matches!(
        err,
        Error::Unreachable { .. }
            | Error::UpstreamNotFound
            | Error::UpstreamStatus(_)
            | Error::UpstreamTimeout
            | Error::BadRedirect(_)
            | Error::NotAnImage
            | Error::SourceTooLarge
    );
    let Some(default) = default.filter(|_| upstream_failure) else {
        return Err(err);
    };
    let target = source::parse(default)?;
    state.fetcher.rules().check(&target)?;
    check_signing(state, &target)?;
    let location = HeaderValue::from_str(target.as_str())
        .map_err(|_| Error::BadSource("invalid default URL"))?;
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::FOUND;
    r.headers_mut().insert(header::LOCATION, location);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    common_headers(r.headers_mut(), state);
    Ok(r)
}

/// A strong validator: 128 bits of xxh3 over the exact bytes served.
pub fn etag(body: &[u8]) -> String {
    format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(body))
}

/// `If-None-Match` (RFC 9110 §13.1.2): `*` or any listed tag, compared weakly.
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

fn image_response(
    state: &AppState,
    method: &Method,
    req: &HeaderMap,
    fetched: Fetched,
    fetch_ms: f64,
) -> Response {
    let c = &state.config.cache;
    let max_age = freshness::clamp(fetched.fresh_for, c.min_ttl.0, c.max_ttl.0);
    let cache_control = format!(
        "public, max-age={}, stale-while-revalidate={}, stale-if-error={}",
        max_age.as_secs(),
        c.stale_while_revalidate.0.as_secs(),
        c.stale_if_error.0.as_secs()
    );
    let tag = etag(&fetched.body);
    let fresh = not_modified(req, &tag);
    let length = fetched.body.len();
    let body: Body = if fresh || method == Method::HEAD {
        Full::new(Bytes::new())
    } else {
        Full::new(fetched.body)
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    let value = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
    h.insert(header::ETAG, value(tag));
    h.insert(header::CACHE_CONTROL, value(cache_control));
    h.insert("x-cache", HeaderValue::from_static("MISS"));
    h.insert("server-timing", value(format!("fetch;dur={fetch_ms:.1}")));
    common_headers(h, state);
    if fresh {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return r;
    }
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(fetched.format.mime()),
    );
    h.insert(header::CONTENT_LENGTH, value(length.to_string()));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let tag = etag(b"abc");
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, &tag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{tag}")).unwrap(),
        );
        assert!(not_modified(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!not_modified(&h, &tag));
    }

    #[test]
    fn etag_is_strong_and_content_addressed() {
        assert_eq!(etag(b"abc"), etag(b"abc"));
        assert_ne!(etag(b"abc"), etag(b"abd"));
        assert!(etag(b"").starts_with('"') && !etag(b"").starts_with("W/"));
        assert_eq!(etag(b"abc").len(), 34);
    }
}
