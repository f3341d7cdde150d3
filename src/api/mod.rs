//! HTTP answers: the endpoint handlers (one family per file) and the headers every answer
//! carries (SPEC §2.4), including error answers (SPEC §2.6).
//!
//! Handlers return `Result<Response, Error>`; [`error_response`] is the single place an
//! [`Error`] becomes bytes on the wire, so every error looks the same and leaks nothing.

pub mod admin;
pub mod health;
pub mod image;
mod info;
pub mod metrics;
pub mod rewrite;

use crate::{cache::Tier, error::Error, metrics::Route, AppState};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body_util::Full;

pub type Body = Full<Bytes>;
pub type Response = http::Response<Body>;

/// Methods served on the image and health endpoints.
pub const ALLOW: &str = "GET, HEAD, OPTIONS";
/// Methods served on `/rewrite` (and `/purge`).
pub const ALLOW_POST: &str = "POST, OPTIONS";

/// What a handler learnt about its request that the server reports (metrics, access line).
#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub route: Route,
    /// Where an image answer (or its error) came from, once the cache was asked.
    pub cache: Option<Tier>,
}

impl Report {
    pub fn new(route: Route) -> Report {
        Report { route, cache: None }
    }
}

/// Headers on every answer, success or error: CORS for `<img crossorigin>` and canvas users,
/// and the lock-down headers that make a proxied file inert if a browser opens it directly.
pub fn common_headers(h: &mut HeaderMap, state: &AppState) {
    let origin = HeaderValue::from_str(&state.config.server.cors_origin)
        .unwrap_or_else(|_| HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
}

/// A small `text/plain` answer.
pub fn text(status: StatusCode, body: &'static str) -> Response {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The one rendering of an error: status, one-line reason, stable code, caching rule.
pub fn error_response(err: &Error, state: &AppState) -> Response {
    let mut r = Response::new(Full::new(Bytes::from(format!("{err}\n"))));
    *r.status_mut() = err.status();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert("x-imgrelay-error", HeaderValue::from_static(err.code()));
    let cache = if err.is_negative_cacheable() {
        // A cacheable verdict on the source, given only to a Referer that passed the hotlink
        // rule: a cache in front keys it on Referer as it does images.
        if !state.config.security.allowed_referers.is_empty() {
            h.insert(header::VARY, HeaderValue::from_static("Referer"));
        }
        format!(
            "public, max-age={}",
            state.config.cache.negative_ttl.0.as_secs()
        )
    } else {
        "no-store".to_string()
    };
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cache).unwrap_or(HeaderValue::from_static("no-store")),
    );
    match err {
        Error::MethodNotAllowed(allow) => {
            h.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        Error::Unauthorized => {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        Error::Overloaded { retry_after } => {
            let secs = retry_after.as_secs().max(1).to_string();
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&secs).unwrap_or(HeaderValue::from_static("1")),
            );
        }
        _ => {}
    }
    common_headers(h, state);
    r
}

/// CORS preflight: 204 with what a browser needs to send the real GET.
pub fn preflight(req_headers: &HeaderMap, state: &AppState) -> Response {
    preflight_allowing(req_headers, state, ALLOW)
}

/// CORS preflight for an endpoint serving the methods in `allow`.
pub fn preflight_allowing(
    req_headers: &HeaderMap,
    state: &AppState,
    allow: &'static str,
) -> Response {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static(allow));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(allow),
    );
    if let Some(asked) = req_headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    common_headers(h, state);
    r
}
