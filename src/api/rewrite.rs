//! `POST /rewrite?base={article-url}`: the body (HTML or Markdown, at most [`MAX_BODY`]) comes
//! back rewritten as SPEC §3 says, with the same `Content-Type`.
//!
//! Off (404, as if the route did not exist) while `server.admin_token` is empty, because a
//! rewrite hands out signed URLs; otherwise `Authorization: Bearer {token}` is required,
//! compared in constant time. A rewrite is admitted like image work ([`crate::work`]): a place
//! in the queue before the body is read (503 when full), then a worker and a share of the
//! memory budget on the blocking pool. The body is read with a hard limit (a declared length
//! over it is refused before reading); a document over the rewriter's own bounds is a 413.

use super::{admin::authorize, common_headers, Response};
use crate::{
    error::Error,
    rewrite::{Kind, RewriteError, Rewriter},
    AppState,
};
use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;
use url::Url;

/// Largest document accepted.
pub const MAX_BODY: usize = 8 << 20;

pub async fn post<B>(state: &Arc<AppState>, req: Request<B>) -> Result<Response, Error>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    authorize(state, req.headers())?;
    let base = base_param(req.uri().query())?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Error::PayloadTooLarge);
    }
    // A place in the work queue, taken before the body is read: at most `transform.queue`
    // bodies are held; beyond it the answer is an immediate 503 with Retry-After.
    let _queued = state.work.admit()?;
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let kind = kind_of(content_type.as_ref());
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
            Ok(_) => Error::PayloadTooLarge,
            Err(e) => Error::BadRequest(format!("reading the body failed: {e}")),
        })?
        .to_bytes();
    let worker = state.clone();
    let (output, _queued) = state
        .work
        .run(Rewriter::memory_for(body.len()), move || {
            worker
                .rewriter
                .rewrite_document(&body, kind, base.as_ref())
                .map_err(|e| match e {
                    RewriteError::NotUtf8 => Error::BadRequest(e.to_string()),
                    RewriteError::TooLarge(why) => Error::DocumentTooLarge(why),
                    RewriteError::Html(detail) => Error::Internal(format!("rewrite: {detail}")),
                })
        })
        .await?;

    let stats = &output.stats;
    let skipped: usize = stats.skipped.values().sum();
    let mut r = Response::new(Full::new(Bytes::from(output.bytes)));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    let fallback = HeaderValue::from_static(match kind {
        Kind::Markdown => "text/markdown; charset=utf-8",
        _ => "text/html; charset=utf-8",
    });
    h.insert(header::CONTENT_TYPE, content_type.unwrap_or(fallback));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-imgrelay-rewritten", HeaderValue::from(stats.rewritten));
    h.insert("x-imgrelay-skipped", HeaderValue::from(skipped));
    common_headers(h, state);
    Ok(r)
}

fn base_param(query: Option<&str>) -> Result<Option<Url>, Error> {
    let Some(q) = query else { return Ok(None) };
    let mut base = None;
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        if k != "base" {
            return Err(Error::BadRequest(format!(
                "unknown parameter `{}`",
                k.chars().take(64).collect::<String>().escape_debug()
            )));
        }
        let url = Url::parse(&v)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::BadRequest("`base` must be an absolute http(s) URL".into()))?;
        if base.replace(url).is_some() {
            return Err(Error::BadRequest("duplicate parameter `base`".into()));
        }
    }
    Ok(base)
}

fn kind_of(content_type: Option<&HeaderValue>) -> Kind {
    let mime = content_type.and_then(|v| v.to_str().ok()).map(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    match mime.as_deref() {
        Some("text/html" | "application/xhtml+xml") => Kind::Html,
        Some("text/markdown" | "text/x-markdown") => Kind::Markdown,
        _ => Kind::Auto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_and_parameters() {
        assert_eq!(base_param(None).unwrap(), None);
        let b = base_param(Some("base=https%3A%2F%2Fblog.example%2Fp%2F")).unwrap();
        assert_eq!(b.unwrap().as_str(), "https://blog.example/p/");
        assert!(base_param(Some("base=/relative")).is_err());
        assert!(base_param(Some("base=https://a/&base=https://b/")).is_err());
        assert!(base_param(Some("other=1")).is_err());
        let ct = |s: &'static str| kind_of(Some(&HeaderValue::from_static(s)));
        assert_eq!(ct("text/html; charset=utf-8"), Kind::Html);
        assert_eq!(ct("Text/Markdown"), Kind::Markdown);
        assert_eq!(ct("application/octet-stream"), Kind::Auto);
        assert_eq!(kind_of(None), Kind::Auto);
    }
}
