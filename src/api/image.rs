//! `GET|HEAD /?…`: the image endpoint. Applies the request-level rules (referer, signing),
//! then asks the cache for the original (`/?{url}`, or `/?url=` without transform parameters)
//! or for the variant, whose fill renders it from the (cached) original on the blocking pool.
//! Parsing lives in `request`/`transform`, fetching in `fetch`, pixels in `image`, tiers and
//! coalescing in `cache`; this file decides what to fill with and shapes the answer.
//! `output=json` (metadata instead of pixels) is filled by `info` and answered here.

use super::{common_headers, Body, Report, Response};
use crate::{
    cache::{self, unix_now, Entry, Filled, Hit, Tier},
    config::HostPattern,
    error::Error,
    fetch::{freshness, source, Fetch, Validators},
    image::format::ImageFormat,
    image::{self, decode, geometry, Job},
    metrics::{Route, Stage},
    request::ImageRequest,
    sign,
    transform::{accept_bucket, Format, Output, Transform},
    AppState,
};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::Full;
use std::{
    fmt::Write,
    sync::Arc,
    time::{Duration, Instant},
};
use url::Url;

/// Handles one image request; `method` is GET or HEAD. Tells `report` which route it was and,
/// once the cache was asked, where the answer came from (counted here, once per request).
pub async fn get(
    state: &Arc<AppState>,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    report: &mut Report,
) -> Result<Response, Error> {
    check_referer(state, headers)?;
    let request = ImageRequest::parse(uri.query())?;
    if request.is_info()? {
        let url = source::parse(request.source())?;
        check_signing(state, &request, uri, &url)?;
        let (tier, served) = super::info::get(state, &url).await;
        state.metrics.cache_result(tier.as_str());
        report.cache = Some(tier);
        let xkey = cache::layout::hash(&cache::original_key(&url));
        return Ok(respond(state, method, headers, &served?, false, &xkey));
    }
    if !request.is_transform() {
        report.route = Route::Original;
    }
    let transform = match &request {
        ImageRequest::Params { params, .. } if request.is_transform() => Some(
            Transform::from_params(params, state.config.limits.max_output_px)?,
        ),
        _ => None,
    };
    let url = source::parse(request.source())?;
    check_signing(state, &request, uri, &url)?;

    let (tier, served) = match transform {
        None => {
            let (tier, hit) = original(state, &url).await;
            (tier, hit.map(|hit| (hit, false)))
        }
        Some(t) => {
            let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
            variant(state, &url, t, accept_bucket(accept)).await
        }
    };
    state.metrics.cache_result(tier.as_str());
    report.cache = Some(tier);
    match served {
        Ok((hit, vary)) => {
            let xkey = cache::layout::hash(&cache::original_key(&url));
            Ok(respond(state, method, headers, &hit, vary, &xkey))
        }
        Err(e) => fallback(state, request.default_url(), e),
    }
}

/// One timed stage of a fill, observed in the stage histogram and written into `Server-Timing`
/// at the same point, so the two always agree on what a stage is.
pub(super) fn stage(state: &AppState, timing: &mut String, stage: Stage, took: Duration) {
    state.metrics.stage(stage, took);
    if !timing.is_empty() {
        timing.push_str(", ");
    }
    let ms = (took.as_secs_f64() * 1e4).round() / 10.0;
    let _ = write!(timing, "{};dur={ms:.1}", stage.as_str());
}

/// The original of `url`, from a tier or from the origin.
pub(super) async fn original(state: &Arc<AppState>, url: &Url) -> (Tier, Result<Hit, Error>) {
    let group = cache::original_key(url);
    let (st, u) = (state.clone(), url.clone());
    state
        .cache
        .get_or_fill(&group, &group, move |stale| fill_original(st, u, stale))
        .await
}

/// Fetches (or revalidates) an original. Admission to the work queue comes first, so an
/// overloaded server refuses before it opens a connection upstream.
async fn fill_original(
    state: Arc<AppState>,
    url: Url,
    stale: Option<Arc<Entry>>,
) -> Result<Filled, Error> {
    let _slot = state.work.admit()?;
    let c = &state.config.cache;
    let ttl = |fresh_for| freshness::clamp(fresh_for, c.min_ttl.0, c.max_ttl.0).as_secs();
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let validators = stale
        .as_ref()
        .filter(|e| e.negative == 0)
        .map(|e| Validators {
            etag: nonempty(&e.upstream_etag),
            last_modified: nonempty(&e.upstream_last_modified),
        })
        .unwrap_or_default();
    let started = Instant::now();
    let fetched = state.fetcher.fetch_if_changed(&url, &validators).await;
    let mut timing = String::new();
    stage(&state, &mut timing, Stage::Fetch, started.elapsed());
    let now = unix_now();
    match fetched {
        Ok(Fetch::Full(f)) => Ok(Filled::Store(
            Entry {
                etag: etag(&f.body),
                mime: f.format.mime().to_string(),
                stored: now,
                expires: now + ttl(f.fresh_for),
                negative: 0,
                upstream_etag: f.upstream_etag.unwrap_or_default(),
                upstream_last_modified: f.upstream_last_modified.unwrap_or_default(),
                body: f.body,
            },
            timing,
        )),
        Ok(Fetch::NotModified { fresh_for }) => {
            let mut e = stale
                .map(|s| (*s).clone())
                .ok_or_else(|| Error::UpstreamStatus {
                    status: StatusCode::NOT_MODIFIED,
                    detail: "answered 304 to a request without validators".into(),
                })?;
            e.stored = now;
            e.expires = now + ttl(fresh_for);
            Ok(Filled::Store(e, timing))
        }
        Err(e) if e.is_negative_cacheable() => Ok(Filled::Store(
            Entry {
                body: Bytes::new(),
                mime: String::new(),
                etag: String::new(),
                stored: now,
                expires: now + c.negative_ttl.0.as_secs(),
                negative: e.status().as_u16(),
                upstream_etag: String::new(),
                upstream_last_modified: String::new(),
            },
            timing,
        )),
        Err(e) => match stale {
            Some(s) if s.negative == 0 && now < s.expires + c.stale_if_error.0.as_secs() => {
                tracing::warn!(error = %e, detail = e.detail().unwrap_or(""), "origin failed; serving a stale copy");
                Ok(Filled::Stale(s))
            }
            _ => Err(e),
        },
    }
}

/// A variant of `url`: one key per canonical transform, resolved output bucket and default
/// qualities, so a changed default in `proxy.toml` is a new variant.
async fn variant(
    state: &Arc<AppState>,
    url: &Url,
    t: Transform,
    bucket: Option<Format>,
) -> (Tier, Result<(Hit, bool), Error>) {
    let vary = t.output == Output::Auto;
    let out = match (t.output, bucket) {
        (Output::Source, _) | (Output::Auto, None) => "source".to_string(),
        (Output::Auto, Some(f)) | (Output::Fixed(f), _) => f.to_string(),
    };
    let q = &state.config.transform.quality;
    let quality = t.quality.map_or_else(
        || format!("{},{},{}", q.jpeg, q.webp, q.avif),
        |q| q.to_string(),
    );
    let key = cache::variant_key(url, &format!("{t}|out={out}|q={quality}"));
    let group = cache::original_key(url);
    let (st, u) = (state.clone(), url.clone());
    let (tier, hit) = state
        .cache
        .get_or_fill(&group, &key, move |_stale| fill_variant(st, u, t, bucket))
        .await;
    (tier, hit.map(|hit| (hit, vary)))
}

/// Renders a variant from its original (cached or fetched), unless nothing would change.
async fn fill_variant(
    state: Arc<AppState>,
    url: Url,
    t: Transform,
    bucket: Option<Format>,
) -> Result<Filled, Error> {
    let original = original(&state, &url).await.1?;
    let src = original.entry.clone();
    let format = ImageFormat::sniff(&src.body).ok_or(Error::NotAnImage)?;
    let natural = image::natural_output(format);
    let output = match t.output {
        Output::Source => natural,
        Output::Auto => bucket.unwrap_or(natural),
        Output::Fixed(f) => f,
    };
    let (w, h) = probe_within_limits(&state, &src.body, format)?;
    // The result's size is known from the header: a format that cannot hold it is a 422
    // before any work (orientation may swap the sides; each format bounds both alike).
    let plan = geometry::plan(w, h, &t, state.config.limits.max_output_px);
    output.check_size(plan.canvas.0, plan.canvas.1)?;
    let same_format = natural == output && !matches!(format, ImageFormat::Bmp | ImageFormat::Ico);
    let unchanged = plan.is_identity(w, h) && t.blur.is_none() && t.sharp.is_none();
    let served_as_is =
        same_format && unchanged && t.quality.is_none() && !image::has_metadata(&src.body, format);

    let _slot = state.work.admit()?;
    let limits: image::Limits = (&state.config.limits).into();
    if served_as_is {
        // One file, one answer (SPEC §2.2): the source's bytes are served only once they have
        // decoded as a render of them would, so a corrupt file is a 422 here as it is there.
        let body = src.body.clone();
        let holds = image::footprint::check_bytes(&body, format, (w, h));
        let (checked, queued) = state
            .work
            .run(holds, move || {
                let started = Instant::now();
                decode::check(&body, format, &limits).map(|()| started.elapsed())
            })
            .await?;
        let mut timing = original.timing.clone();
        stage(&state, &mut timing, Stage::Queue, queued);
        stage(&state, &mut timing, Stage::Decode, checked);
        return Ok(derived(src.body.clone(), format.mime(), &src, timing));
    }
    let q = &state.config.transform.quality;
    let quality = t.quality.unwrap_or(match output {
        Format::Jpeg => q.jpeg,
        Format::Webp => q.webp,
        Format::Avif => q.avif,
        Format::Png | Format::Gif => 100,
    });
    let job = Job {
        source: format,
        transform: t,
        output,
        quality,
        limits,
    };
    let body = src.body.clone();
    let holds = image::footprint::job_bytes(&body, &job, (w, h));
    let (rendered, queued) = state
        .work
        .run(holds, move || image::render(&body, &job))
        .await?;
    let tm = rendered.timings;
    let mut timing = original.timing.clone();
    stage(&state, &mut timing, Stage::Queue, queued);
    stage(&state, &mut timing, Stage::Decode, tm.decode);
    stage(&state, &mut timing, Stage::Resize, tm.resize);
    stage(&state, &mut timing, Stage::Encode, tm.encode);
    Ok(derived(
        Bytes::from(rendered.body),
        output.mime(),
        &src,
        timing,
    ))
}

/// Shapes a served entry into the answer of SPEC §2.4. `xkey` is the surrogate key shared by a
/// source's original and all its variants (SPEC §7), so a CDN can purge them together.
fn respond(
    state: &AppState,
    method: &Method,
    req: &HeaderMap,
    hit: &Hit,
    vary: bool,
    xkey: &str,
) -> Response {
    let c = &state.config.cache;
    let e = &hit.entry;
    let now = unix_now();
    let max_age = freshness::clamp(Some(e.remaining(now)), c.min_ttl.0, c.max_ttl.0);
    let cache_control = format!(
        "public, max-age={}, stale-while-revalidate={}, stale-if-error={}",
        max_age.as_secs(),
        c.stale_while_revalidate.0.as_secs(),
        c.stale_if_error.0.as_secs()
    );
    let fresh = not_modified(req, &e.etag);
    let body: Body = if fresh || method == Method::HEAD {
        Full::new(Bytes::new())
    } else {
        Full::new(e.body.clone())
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
    h.insert(header::ETAG, value(&e.etag));
    h.insert(header::CACHE_CONTROL, value(&cache_control));
    // No `Age`: imgrelay is the origin of its own URLs and `max-age` is already what is left
    // of the freshness; a cache in front would subtract the elapsed time a second time.
    let hotlink = !state.config.security.allowed_referers.is_empty();
    match (vary, hotlink) {
        (true, true) => h.insert(header::VARY, HeaderValue::from_static("Accept, Referer")),
        (true, false) => h.insert(header::VARY, HeaderValue::from_static("Accept")),
        (false, true) => h.insert(header::VARY, HeaderValue::from_static("Referer")),
        (false, false) => None,
    };
    h.insert("x-cache", HeaderValue::from_static(hit.tier.as_str()));
    h.insert("xkey", value(xkey));
    if !hit.timing.is_empty() {
        h.insert("server-timing", value(&hit.timing));
    }
    common_headers(h, state);
    if fresh {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return r;
    }
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, value(&e.mime));
    h.insert(header::CONTENT_LENGTH, value(&e.body.len().to_string()));
    r
}

/// `security.allowed_referers`: the proxy's own hotlink protection. No `Referer` passes. The
/// verdict depends on the `Referer` header alone, and every answer then says `Vary: Referer`
/// (see [`respond`]): a cache in front stores a copy per `Referer` value it was asked with, so
/// it can only ever hand a copy to a request imgrelay would have answered the same way. The
/// host is read as a browser reads the URL (WHATWG: userinfo, backslashes, IDN, case, port);
/// a Referer that is not an http(s) URL (`null`, an app's `android-app://…`) names no site.
fn check_referer(state: &AppState, headers: &HeaderMap) -> Result<(), Error> {
    let allowed = &state.config.security.allowed_referers;
    let Some(referer) = headers.get(header::REFERER) else {
        return Ok(());
    };
    if allowed.is_empty() {
        return Ok(());
    }
    let host = std::str::from_utf8(referer.as_bytes())
        .ok()
        .and_then(|r| Url::parse(r).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
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
            | Error::UpstreamStatus { .. }
            | Error::UpstreamTimeout
            | Error::BadRedirect(_)
            | Error::NotAnImage
            | Error::SourceTooLarge
            | Error::TooManyPixels
            | Error::TooManyFrames
            | Error::Undecodable(_)
            | Error::Decode { .. }
            | Error::Panicked { .. }
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

/// The source's size from its header, refused past `limits.max_source_pixels` before any pixel
/// is decoded.
pub(super) fn probe_within_limits(
    state: &AppState,
    body: &[u8],
    format: ImageFormat,
) -> Result<(u32, u32), Error> {
    let (w, h) = decode::probe(body, format)?;
    if u64::from(w) * u64::from(h) > state.config.limits.max_source_pixels {
        return Err(Error::TooManyPixels);
    }
    Ok((w, h))
}

/// An entry made from the original `src` (a variant, metadata): stored now, fresh as long as
/// the original, with no upstream validators of its own.
pub(super) fn derived(body: Bytes, mime: &str, src: &Entry, timing: String) -> Filled {
    Filled::Store(
        Entry {
            etag: etag(&body),
            body,
            mime: mime.to_string(),
            stored: unix_now(),
            expires: src.expires,
            negative: 0,
            upstream_etag: String::new(),
            upstream_last_modified: String::new(),
        },
        timing,
    )
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
