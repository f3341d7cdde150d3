//! `GET|HEAD /?…`: the image endpoint. Applies the request-level rules (referer, signing,
//! admission), fetches the original, and either passes it through (`/?{url}`, or `/?url=`
//! without transform parameters) or runs the image pipeline on the blocking pool; then shapes
//! the answer (SPEC §2.4). Parsing lives in `request`/`transform`, fetching in `fetch`, pixels
//! in `image`.

use super::{common_headers, Body, Response};
use crate::{
    error::Error,
    fetch::{freshness, policy::HostPattern, source, Fetched},
    image::{self, decode, geometry, Job, Timings},
    request::ImageRequest,
    sign,
    transform::{negotiate, Format, Output, Transform},
    AppState,
};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::Full;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
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
    let transform = match &request {
        ImageRequest::Params { params, .. } if request.is_transform() => Some(
            Transform::from_params(params, state.config.limits.max_output_px)?,
        ),
        _ => None,
    };
    let url = source::parse(request.source())?;
    check_signing(state, &request, uri, &url)?;

    let _slot = state.work.admit()?;
    let started = Instant::now();
    let fetched = match state.fetcher.fetch(&url).await {
        Ok(f) => f,
        Err(e) => return fallback(state, request.default_url(), e),
    };
    let fetch = started.elapsed();
    let answer = match transform {
        None => Ok(Answer::original(fetched, fetch)),
        Some(t) => render(state, fetched, t, headers, fetch).await,
    };
    match answer {
        Ok(a) => Ok(a.into_response(state, method, headers)),
        Err(e) => fallback(state, request.default_url(), e),
    }
}

/// What the endpoint serves, before the HTTP shaping.
struct Answer {
    body: Bytes,
    mime: &'static str,
    fresh_for: Option<Duration>,
    vary_accept: bool,
    fetch: Duration,
    timings: Option<Timings>,
}

impl Answer {
    fn original(f: Fetched, fetch: Duration) -> Answer {
        Answer {
            mime: f.format.mime(),
            body: f.body,
            fresh_for: f.fresh_for,
            vary_accept: false,
            fetch,
            timings: None,
        }
    }

    fn into_response(self, state: &AppState, method: &Method, req: &HeaderMap) -> Response {
        let c = &state.config.cache;
        let max_age = freshness::clamp(self.fresh_for, c.min_ttl.0, c.max_ttl.0);
        let cache_control = format!(
            "public, max-age={}, stale-while-revalidate={}, stale-if-error={}",
            max_age.as_secs(),
            c.stale_while_revalidate.0.as_secs(),
            c.stale_if_error.0.as_secs()
        );
        let tag = etag(&self.body);
        let fresh = not_modified(req, &tag);
        let length = self.body.len();
        let body: Body = if fresh || method == Method::HEAD {
            Full::new(Bytes::new())
        } else {
            Full::new(self.body)
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut timing = format!("fetch;dur={:.1}", ms(self.fetch));
        if let Some(t) = self.timings {
            timing.push_str(&format!(
                ", decode;dur={:.1}, resize;dur={:.1}, encode;dur={:.1}",
                ms(t.decode),
                ms(t.resize),
                ms(t.encode)
            ));
        }
        let mut r = Response::new(body);
        let h = r.headers_mut();
        let value = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
        h.insert(header::ETAG, value(tag));
        h.insert(header::CACHE_CONTROL, value(cache_control));
        if self.vary_accept {
            h.insert(header::VARY, HeaderValue::from_static("Accept"));
        }
        h.insert("x-cache", HeaderValue::from_static("MISS"));
        h.insert("server-timing", value(timing));
        common_headers(h, state);
        if fresh {
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            return r;
        }
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.mime));
        h.insert(header::CONTENT_LENGTH, value(length.to_string()));
        r
    }
}

/// Resolves the output and runs the pipeline, unless nothing would change.
async fn render(
    state: &AppState,
    fetched: Fetched,
    t: Transform,
    req: &HeaderMap,
    fetch: Duration,
) -> Result<Answer, Error> {
    let natural = image::natural_output(fetched.format);
    let output = match t.output {
        Output::Source => natural,
        Output::Auto => negotiate(
            req.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
            natural,
        ),
        Output::Fixed(f) => f,
    };
    let vary_accept = t.output == Output::Auto;
    let (w, h) = decode::probe(&fetched.body, fetched.format)?;
    if u64::from(w) * u64::from(h) > state.config.limits.max_source_pixels {
        return Err(Error::TooManyPixels);
    }
    let same_format = image::natural_output(fetched.format) == output
        && !matches!(
            fetched.format,
            crate::fetch::sniff::ImageFormat::Bmp | crate::fetch::sniff::ImageFormat::Ico
        );
    let unchanged =
        geometry::plan(w, h, &t).is_identity(w, h) && t.blur.is_none() && t.sharp.is_none();
    if same_format
        && unchanged
        && t.quality.is_none()
        && !image::has_metadata(&fetched.body, fetched.format)
    {
        let mut a = Answer::original(fetched, fetch);
        a.vary_accept = vary_accept;
        return Ok(a);
    }

    let q = &state.config.transform.quality;
    let quality = t.quality.unwrap_or(match output {
        Format::Jpeg => q.jpeg,
        Format::Webp => q.webp,
        Format::Avif => q.avif,
        Format::Png | Format::Gif => 100,
    });
    let job = Job {
        source: fetched.format,
        transform: t,
        output,
        quality,
        limits: (&state.config.limits).into(),
    };
    let body = fetched.body.clone();
    let rendered = state
        .work
        .run(u64::from(w) * u64::from(h), move || {
            image::render(&body, &job)
        })
        .await?;
    Ok(Answer {
        body: Bytes::from(rendered.body),
        mime: output.mime(),
        fresh_for: fetched.fresh_for,
        vary_accept,
        fetch,
        timings: Some(rendered.timings),
    })
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

/// With signing keys set (SPEC §2.3): a request carrying `s` must verify; a transform must
/// carry one; the unsigned pass-through forms serve only sources in `allowed_hosts`.
fn check_signing(
    state: &AppState,
    request: &ImageRequest,
    uri: &http::Uri,
    url: &Url,
) -> Result<(), Error> {
    let keys = &state.config.security.signing_keys;
    if keys.is_empty() {
        return Ok(());
    }
    let signed = matches!(request, ImageRequest::Params { params, .. } if params.contains_key("s"));
    if signed {
        let target = uri.path_and_query().map_or("", |pq| pq.as_str());
        return sign::verify(keys, target);
    }
    if !request.is_transform() && state.fetcher.rules().explicitly_allowed(url) {
        return Ok(());
    }
    Err(Error::BadSignature)
}

/// `default=`: on a fetch or decode failure, redirect to the fallback, which must pass the
/// same source rules (so imgrelay is no open redirect). Request errors are never replaced.
fn fallback(state: &AppState, default: Option<&str>, err: Error) -> Result<Response, Error> {
    let replaceable = matches!(
        err,
        Error::Unreachable { .. }
            | Error::UpstreamNotFound
            | Error::UpstreamStatus(_)
            | Error::UpstreamTimeout
            | Error::BadRedirect(_)
            | Error::NotAnImage
            | Error::SourceTooLarge
            | Error::TooManyPixels
            | Error::TooManyFrames
            | Error::Undecodable(_)
    );
    let Some(default) = default.filter(|_| replaceable) else {
        return Err(err);
    };
    let target = source::parse(default)?;
    state.fetcher.rules().check(&target)?;
    if !state.config.security.signing_keys.is_empty()
        && !state.fetcher.rules().explicitly_allowed(&target)
    {
        return Err(Error::BadSignature);
    }
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
