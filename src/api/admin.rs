//! Admin endpoints guarded by `server.admin_token`: `POST /purge?url=` drops an original and all
//! its variants from every tier, the shared bucket included, and asks each of `server.peers`
//! and each `cdn.purge_urls` endpoint to drop them too. With no token configured they do not
//! exist (404), so a default install exposes nothing.

use super::{common_headers, text, Response};
use crate::{cache, error::Error, fanout, fetch::source, AppState};
use bytes::Bytes;
use http::{header, HeaderMap, StatusCode};
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

/// `POST /purge?url={source}[&scope=local]`. Without a scope the source leaves the shared
/// tier and this replica's tiers, then every peer's (`server.peers`, forwarded with
/// `scope=local`), then the CDN's (`cdn.purge_urls`): in that order, so neither a peer nor the
/// CDN can refill itself from a copy not yet purged. With `scope=local` (a forwarded purge)
/// only this replica's memory and disk tiers. The answer is 200 when this replica's tiers,
/// every peer and every CDN endpoint purged the source, else 502, with one line per endpoint
/// (and one for this replica's disk tier when it failed) in the body; what could be purged was
/// purged either way. A shared tier that failed ends the purge there (502, code
/// `shared_purge_failed`): peers would refill from the bucket's copy.
pub async fn purge(
    state: &AppState,
    uri: &http::Uri,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    authorize(state, headers)?;
    let (raw, local) = purge_params(uri.query().unwrap_or_default())?;
    let url = source::parse(&raw)?;
    let mut outcomes = Vec::new();
    let mut disk_failed = None;
    let body = if local {
        state.cache.purge_local(&url).await?;
        format!("purged {url} on this replica only\n")
    } else {
        match state.cache.purge(&url).await {
            Ok(()) => {}
            // This replica's disk only: the fleet's purge goes on, and the answer says so.
            Err(e @ Error::DiskPurge { .. }) => {
                tracing::error!(
                    detail = e.detail().unwrap_or_default(),
                    "purge: this replica's disk tier was not purged"
                );
                disk_failed = Some(e);
            }
            Err(e) => return Err(e),
        }
        let xkey = cache::layout::hash(&cache::original_key(&url));
        outcomes = fanout::peers(&state.config, url.as_str()).await;
        outcomes.extend(fanout::cdn(&state.config, &xkey).await);
        if outcomes.is_empty() && disk_failed.is_none() {
            "purged\n".to_string()
        } else {
            let mut body = match &disk_failed {
                None => format!("purged {url} locally (xkey {xkey})\n"),
                Some(e) => format!(
                    "purged {url} locally except on disk (xkey {xkey})\n\
                     disk of this replica: failed: {e}\n"
                ),
            };
            for o in &outcomes {
                body.push_str(&o.to_string());
                body.push('\n');
            }
            body
        }
    };
    let mut r = text(StatusCode::OK, "");
    *r.body_mut() = Full::new(Bytes::from(body));
    if disk_failed.is_some() || !outcomes.iter().all(fanout::Outcome::ok) {
        *r.status_mut() = StatusCode::BAD_GATEWAY;
    }
    common_headers(r.headers_mut(), state);
    Ok(r)
}

/// The source and whether the purge stays on this replica. Other parameters, repeated ones and
/// scopes other than `local` are refused: a misspelt scope must not purge the whole fleet.
fn purge_params(query: &str) -> Result<(String, bool), Error> {
    let (mut url, mut scope) = (None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*k {
            "url" => &mut url,
            "scope" => &mut scope,
            other => return Err(Error::BadRequest(format!("unknown parameter `{other}`"))),
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(Error::BadRequest(format!("duplicate parameter `{k}`")));
        }
    }
    let url = url.ok_or_else(|| Error::BadRequest("missing parameter `url`".into()))?;
    match scope.as_deref() {
        None => Ok((url, false)),
        Some(fanout::LOCAL_SCOPE) => Ok((url, true)),
        Some(_) => Err(Error::BadRequest(format!(
            "`scope` must be `{}` or absent",
            fanout::LOCAL_SCOPE
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_params_take_a_source_and_an_optional_local_scope() {
        let src = "http://a.example/p.jpg?x=1&y=2";
        let enc: String = form_urlencoded::byte_serialize(src.as_bytes()).collect();
        assert_eq!(
            purge_params(&format!("url={enc}")).unwrap(),
            (src.to_string(), false)
        );
        assert_eq!(
            purge_params(&format!("scope=local&url={enc}")).unwrap(),
            (src.to_string(), true)
        );
        for bad in [
            "",
            "scope=local",
            "url=a&url=b",
            "url=a&scope=fleet",
            "url=a&scope=local&scope=local",
            "url=a&scop=local",
        ] {
            assert!(
                matches!(purge_params(bad), Err(Error::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
