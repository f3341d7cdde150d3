//! The CDN side of `/purge` (SPEC §2.5, §7): `PURGE` with `xkey: {g}` to each of
//! `cdn.purge_urls`, so the CDN drops every variant of a source it holds. Sent through
//! [`fanout`](crate::fanout): each endpoint once, all at the same time, each within
//! [`fanout::TIMEOUT`]; failures are reported, never retried here.

use crate::{config::Config, fanout};
use http::{Method, Request};
use http_body_util::Empty;

pub use fanout::Outcome;

/// Sends `PURGE` with `xkey: {xkey}` to every `cdn.purge_urls` endpoint (each URL as given,
/// `/` when it has no path) and returns one outcome per endpoint, in the configured order.
pub async fn purge(config: &Config, xkey: &str) -> Vec<Outcome> {
    fanout::send_all(config, "cdn", &config.cdn.purge_urls, |endpoint| {
        let uri: http::Uri = endpoint.parse().map_err(|_| "invalid URL".to_string())?;
        let purge = Method::from_bytes(b"PURGE").map_err(|e| e.to_string())?;
        Request::builder()
            .method(purge)
            .uri(uri)
            .header("xkey", xkey)
            .body(Empty::new())
            .map_err(|e| e.to_string())
    })
    .await
}
