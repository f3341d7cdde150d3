//! Admin endpoints guarded by `server.admin_token`: `POST /purge?url=` drops an original and all
//! its variants from every tier, the shared bucket included, and asks each `cdn.purge_urls`
//! endpoint to drop them too. With no token configured they do not exist (404), so a default
//! install exposes nothing.

use super::{common_headers, text, Response};
use crate::{cache, cdn, error::Error, fetch::source, AppState};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body_util::Full;
use subtle::ConstantTimeEq;

/// `Authorization: Bearer {server.admin_token}`, compared in constant time; the admin endpoints
/// do not exist (404) while no token is set.
pub fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Error> {
    let token = state.config.server.admin_token.expose();
    if token.is_empty() {
        return Err(Error::NotFound);
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match given {
        Some(t) if bool::from(t.as_bytes().ct_eq(token.as_bytes())) => Ok(()),
        _ => Err(Error::Unauthorized),
    }
}

/// `POST /purge?url={source}`. The local tiers are always purged; the answer is 200 when every
/// CDN endpoint accepted the purge too, else 502, with one line per endpoint in the body.
pub async fn purge(
    state: &AppState,
    uri: &http::Uri,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    authorize(state, headers)?;
    let raw = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "url")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| Error::BadRequest("missing parameter `url`".into()))?;
    let url = source::parse(&raw)?;
    state.cache.purge(&url).await?;
    let xkey = cache::layout::hash(&cache::original_key(&url));
    let outcomes = cdn::purge(&state.config, &xkey).await;
    let mut r = if outcomes.is_empty() {
        text(StatusCode::OK, "purged\n")
    } else {
        let mut body = format!("purged {url} locally (xkey {xkey})\n");
        for o in &outcomes {
            body.push_str(&o.to_string());
            body.push('\n');
        }
        let mut r = text(StatusCode::OK, "");
        *r.body_mut() = Full::new(Bytes::from(body));
        if !outcomes.iter().all(cdn::Outcome::ok) {
            *r.status_mut() = StatusCode::BAD_GATEWAY;
        }
        r
    };
    common_headers(r.headers_mut(), state);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
