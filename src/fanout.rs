//! One request to each of a list of the operator's own endpoints, all at the same time, each
//! within [`TIMEOUT`], and what each answered: the send loop behind `/purge`'s messages to the
//! CDN (`cdn`) and to the other replicas (`peers`). Nothing is retried here: a failure is
//! reported to the caller (and logged), and the operator's script decides.
//!
//! The endpoints come from the configuration, not from a request, so the source rules (SSRF
//! guard) do not apply; TLS trusts the webpki roots plus `upstream.ca_file`.

use crate::config::Config;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use std::{fmt, io, time::Duration};

/// How long one endpoint may take to answer, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

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

/// Sends `request(endpoint)` to every endpoint at once and returns one outcome per endpoint, in
/// the order given. `request` builds the request for one endpoint (an error is that
/// endpoint's outcome).
pub async fn send_all(
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
