//! What `/purge` sends beyond this process (SPEC §2.5, §7), one request to each configured
//! endpoint, all at the same time, each within [`TIMEOUT`], and what each answered:
//!
//! - to each of `cdn.purge_urls`, `PURGE` with `xkey: {g}`, so the CDN drops every variant of
//!   the source it holds ([`cdn`]), with `cdn.purge_token` as its authority;
//! - to each of `server.peers` (the other replicas' base URLs), `POST /purge?url=…&scope=local`
//!   with the same bearer token, so their memory and disk tiers drop it too ([`peers`]).
//!   `scope=local` tells the peer to purge its own tiers only: not to forward the purge again
//!   (no loops, however the peer lists are written), and not to purge the shared bucket or
//!   the CDN, which the receiving replica does itself.
//!
//! Nothing is retried here: a failure is reported to the caller (and logged), and the
//! operator's script decides. The endpoints come from the configuration, not from a request,
//! so the source rules (SSRF guard) do not apply; TLS trusts the webpki roots plus
//! `upstream.ca_file`.

use crate::config::Config;
use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use std::{fmt, io, time::Duration};

/// How long one endpoint may take to answer, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The header carrying `cdn.purge_token` on a `PURGE` (the shipped VCL compares it with the
/// variable `IMGRELAY_CDN__PURGE_TOKEN` of varnishd's environment).
pub const PURGE_TOKEN_HEADER: &str = "x-imgrelay-purge-token";

/// The `scope` value of a purge that stays on the replica that receives it.
pub const LOCAL_SCOPE: &str = "local";

/// What one endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What the endpoint is to the caller (`cdn`, `peer`): the first word of its report line.
    pub kind: &'static str,
    pub endpoint: String,
    /// The status the endpoint answered, or why there was none.
    pub result: Result<u16, String>,
}

impl Outcome {
    /// A 2xx answer: the endpoint did what it was asked.
    pub fn ok(&self) -> bool {
        matches!(self.result, Ok(s) if (200..300).contains(&s))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, endpoint) = (self.kind, &self.endpoint);
        match &self.result {
            Ok(status) if self.ok() => write!(f, "{kind} {endpoint}: purged ({status})"),
            Ok(status) => write!(f, "{kind} {endpoint}: failed: answered {status}"),
            Err(why) => write!(f, "{kind} {endpoint}: failed: {why}"),
        }
    }
}

/// Sends `PURGE` with `xkey: {xkey}` to every `cdn.purge_urls` endpoint (each URL as given,
/// `/` when it has no path) and returns one outcome per endpoint, in the configured order.
pub async fn cdn(config: &Config, xkey: &str) -> Vec<Outcome> {
    send_all(config, "cdn", &config.cdn.purge_urls, |endpoint| {
        let uri: http::Uri = endpoint.parse().map_err(|_| "invalid URL".to_string())?;
        let purge = Method::from_bytes(b"PURGE").map_err(|e| e.to_string())?;
        Request::builder()
            .method(purge)
            .uri(uri)
            .header("xkey", xkey)
            .header(PURGE_TOKEN_HEADER, config.cdn.purge_token.expose())
            .body(Empty::new())
            .map_err(|e| e.to_string())
    })
    .await
}

/// `POST {peer}/purge?url={source}&scope=local` to every `server.peers` entry; one outcome per
/// peer, in the configured order.
pub async fn peers(config: &Config, source: &str) -> Vec<Outcome> {
    let auth = format!("Bearer {}", config.server.admin_token.expose());
    let url: String = form_urlencoded::byte_serialize(source.as_bytes()).collect();
    send_all(config, "peer", &config.server.peers, |peer| {
        let target = format!(
            "{}/purge?url={url}&scope={LOCAL_SCOPE}",
            peer.trim_end_matches('/')
        );
        let uri: http::Uri = target.parse().map_err(|_| "invalid URL".to_string())?;
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::AUTHORIZATION, &auth)
            .header(header::CONTENT_LENGTH, "0")
            .body(Empty::new())
            .map_err(|e| e.to_string())
    })
    .await
}

/// Sends `request(endpoint)` to every endpoint at once and returns one outcome per endpoint, in
/// the order given. `request` builds the request for one endpoint (an error is that
/// endpoint's outcome).
async fn send_all(
    config: &Config,
    kind: &'static str,
    endpoints: &[String],
    request: impl Fn(&str) -> Result<Request<Empty<Bytes>>, String>,
) -> Vec<Outcome> {
    if endpoints.is_empty() {
        return Vec::new();
    }
    let outcome = |endpoint: &String, result| Outcome {
        kind,
        endpoint: endpoint.clone(),
        result,
    };
    let client = match client(config) {
        Ok(c) => c,
        Err(e) => {
            let why = format!("no HTTP client: {e}");
            return endpoints
                .iter()
                .map(|u| outcome(u, Err(why.clone())))
                .collect();
        }
    };
    let tasks: Vec<_> = endpoints
        .iter()
        .map(|endpoint| tokio::spawn(bounded(client.clone(), request(endpoint))))
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for (task, endpoint) in tasks.into_iter().zip(endpoints) {
        let result = task
            .await
            .unwrap_or_else(|e| Err(format!("task failed: {e}")));
        let o = outcome(endpoint, result);
        if o.ok() {
            tracing::info!(kind, endpoint = %o.endpoint, "purge sent");
        } else {
            tracing::warn!(kind, endpoint = %o.endpoint, outcome = %o, "purge failed");
        }
        out.push(o);
    }
    out
}

type FanoutClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Plain http, or https with the webpki roots and `upstream.ca_file`.
fn client(config: &Config) -> io::Result<FanoutClient> {
    let tls = crate::fetch::tls::client_config(&config.upstream.ca_file)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// One endpoint's request (or why it could not be built), answered within [`TIMEOUT`].
async fn bounded(
    client: FanoutClient,
    request: Result<Request<Empty<Bytes>>, String>,
) -> Result<u16, String> {
    tokio::time::timeout(TIMEOUT, send(&client, request?))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {TIMEOUT:?}")))
}

async fn send(client: &FanoutClient, request: Request<Empty<Bytes>>) -> Result<u16, String> {
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
