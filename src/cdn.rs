//! The CDN side of `/purge` (SPEC §2.5, §7): `PURGE` with `xkey: {g}` to each of
//! `cdn.purge_urls`, so the CDN drops every variant of a source it holds. Each endpoint is
//! tried once, all at the same time, each within [`PURGE_TIMEOUT`]; what failed is reported to
//! the caller (and logged), never retried here: the operator's script decides.

use crate::config::Config;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use std::{fmt, io, time::Duration};

/// How long one endpoint may take to answer a purge, connection included.
pub const PURGE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one CDN endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub endpoint: String,
    /// The status the endpoint answered, or why there was none.
    pub result: Result<u16, String>,
}

impl Outcome {
    /// A 2xx answer: the CDN accepted the purge.
    pub fn ok(&self) -> bool {
        matches!(self.result, Ok(s) if (200..300).contains(&s))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(status) if self.ok() => write!(f, "cdn {}: purged ({status})", self.endpoint),
            Ok(status) => write!(f, "cdn {}: failed: answered {status}", self.endpoint),
            Err(why) => write!(f, "cdn {}: failed: {why}", self.endpoint),
        }
    }
}

/// Sends `PURGE` with `xkey: {xkey}` to every `cdn.purge_urls` endpoint (each URL as given,
/// `/` when it has no path) and returns one outcome per endpoint, in the configured order.
pub async fn purge(config: &Config, xkey: &str) -> Vec<Outcome> {
    let urls = &config.cdn.purge_urls;
    if urls.is_empty() {
        return Vec::new();
    }
    let client = match client(config) {
        Ok(c) => c,
        Err(e) => {
            let why = format!("no HTTP client: {e}");
            return urls
                .iter()
                .map(|u| Outcome {
                    endpoint: u.clone(),
                    result: Err(why.clone()),
                })
                .collect();
        }
    };
    let tasks: Vec<_> = urls
        .iter()
        .map(|endpoint| {
            let (client, endpoint, xkey) = (client.clone(), endpoint.clone(), xkey.to_string());
            tokio::spawn(async move {
                let result = tokio::time::timeout(PURGE_TIMEOUT, send(&client, &endpoint, &xkey))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {PURGE_TIMEOUT:?}")));
                Outcome { endpoint, result }
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for (task, endpoint) in tasks.into_iter().zip(urls) {
        let outcome = task.await.unwrap_or_else(|e| Outcome {
            endpoint: endpoint.clone(),
            result: Err(format!("task failed: {e}")),
        });
        if outcome.ok() {
            tracing::info!(endpoint = %outcome.endpoint, "CDN purge sent");
        } else {
            tracing::warn!(endpoint = %outcome.endpoint, outcome = %outcome, "CDN purge failed");
        }
        out.push(outcome);
    }
    out
}

type PurgeClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A client for the operator's own endpoints: plain http or https with the webpki roots and
/// `upstream.ca_file`. The source rules (SSRF guard) do not apply: these URLs come from the
/// configuration, not from a request.
fn client(config: &Config) -> io::Result<PurgeClient> {
    let tls = crate::fetch::tls::client_config(&config.upstream.ca_file)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(PURGE_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

async fn send(client: &PurgeClient, endpoint: &str, xkey: &str) -> Result<u16, String> {
    let uri: http::Uri = endpoint.parse().map_err(|_| "invalid URL".to_string())?;
    let purge = Method::from_bytes(b"PURGE").map_err(|e| e.to_string())?;
    let request = Request::builder()
        .method(purge)
        .uri(uri)
        .header("xkey", xkey)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let answer = client
        .request(request)
        .await
        .map_err(|e| format!("unreachable: {}", cause(&e)))?;
    let status = answer.status().as_u16();
    // Read the (short) body so the connection closes cleanly; its content is not needed.
    let _ = answer.into_body().collect().await;
    Ok(status)
}

/// The innermost cause of a client error ("Connection refused"), not hyper's wrapper text.
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}
