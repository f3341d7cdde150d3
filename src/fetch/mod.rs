//! The upstream client: source rules → per-host limit → guarded connection → redirects →
//! bounded body → sniffed type. Everything imgrelay reads from the network enters here.
//!
//! Limits are enforced while reading, never trusted from headers: a declared length over
//! `upstream.max_bytes` is refused before the body, an endless body is cut at the limit, and
//! `upstream.timeout` covers the whole exchange, redirects and body included. Upstream response
//! headers stop here (only freshness is read from them).

pub mod connector;
pub mod freshness;
pub mod per_host;
pub mod policy;
pub mod source;
pub mod tls;

use crate::{
    config::{Config, HostPattern},
    error::Error,
    image::format::ImageFormat,
    metrics::{Metrics, Upstream},
};
use bytes::{Bytes, BytesMut};
use connector::{ConnectError, GuardedConnector, Resolve};
use http::{header, HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use per_host::HostLimiter;
use policy::AddressPolicy;
use source::SourceRules;
use std::{sync::Arc, time::Duration, time::SystemTime};
use url::Url;

/// A source image, read whole and recognised.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Bytes,
    pub format: ImageFormat,
    /// Remaining freshness the origin declared, if it declared any.
    pub fresh_for: Option<Duration>,
    /// Where the bytes finally came from (after redirects).
    pub url: Url,
    /// The origin's validators, for revalidating a stale copy later.
    pub upstream_etag: Option<String>,
    pub upstream_last_modified: Option<String>,
}

/// The outcome of a fetch that may be conditional.
#[derive(Debug, Clone)]
pub enum Fetch {
    Full(Fetched),
    /// The origin answered 304 to our validators: the stale copy is fresh again.
    NotModified {
        fresh_for: Option<Duration>,
    },
}

/// Validators of a stale copy (`If-None-Match`, `If-Modified-Since`).
#[derive(Debug, Clone, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Fixed headers for the origins of one `[[upstream.rules]]` entry.
#[derive(Debug, Clone)]
struct OriginRule {
    host: HostPattern,
    headers: HeaderMap,
}

/// Cheap to clone; one per process.
#[derive(Debug, Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client<HttpsConnector<GuardedConnector>, Empty<Bytes>>,
    rules: SourceRules,
    origin_rules: Vec<OriginRule>,
    limiter: Arc<HostLimiter>,
    user_agent: HeaderValue,
    timeout: Duration,
    max_bytes: u64,
    max_redirects: u32,
    metrics: Metrics,
}

impl Fetcher {
    /// Builds the client. `resolver` is the system resolver in production and a fixed table in
    /// tests; each fetch counts its outcome into `metrics`. Fails if `upstream.ca_file` cannot
    /// be loaded or the TLS provider cannot be set up.
    pub fn new(
        config: &Config,
        resolver: Arc<dyn Resolve>,
        metrics: &Metrics,
    ) -> std::io::Result<Self> {
        let up = &config.upstream;
        let policy = AddressPolicy {
            allow_private: config.security.allow_private,
            allow_networks: config.security.allow_networks.clone(),
        };
        let guarded = GuardedConnector::new(resolver, policy, up.connect_timeout.0)
            .with_pins(up.resolve.clone());
        let tls = tls::client_config(&up.ca_file).map_err(|e| {
            std::io::Error::new(e.kind(), format!("upstream.ca_file {:?}: {e}", up.ca_file))
        })?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(guarded);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(up.per_host_concurrency)
            .build(https);
        let origin_rules = up
            .rules
            .iter()
            .map(|r| {
                let mut headers = HeaderMap::new();
                for (name, value) in &r.headers {
                    // Validated in Config::validate; an invalid pair cannot reach here.
                    if let (Ok(n), Ok(v)) = (
                        HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(value),
                    ) {
                        headers.insert(n, v);
                    }
                }
                if let Some(v) = r
                    .referer
                    .as_deref()
                    .and_then(|r| HeaderValue::from_str(r).ok())
                {
                    headers.insert(header::REFERER, v);
                }
                OriginRule {
                    host: r.host.clone(),
                    headers,
                }
            })
            .collect();
        Ok(Fetcher {
            inner: Arc::new(Inner {
                client,
                rules: SourceRules::new(config),
                origin_rules,
                limiter: HostLimiter::new(up.per_host_concurrency),
                user_agent: HeaderValue::from_str(&up.user_agent)
                    .unwrap_or_else(|_| HeaderValue::from_static("imgrelay")),
                timeout: up.timeout.0,
                max_bytes: up.max_bytes.0,
                max_redirects: up.max_redirects,
                metrics: metrics.clone(),
            }),
        })
    }

    pub fn rules(&self) -> &SourceRules {
        &self.inner.rules
    }

    /// Fetches `url` (already parsed by [`source::parse`]) within `upstream.timeout`, sending
    /// the validators of a stale copy when there is one (empty validators: a plain GET).
    /// Counts one upstream outcome, unless the source host is refused before any dialling
    /// (a request rejection, counted by the server).
    pub async fn fetch_if_changed(
        &self,
        url: &Url,
        validators: &Validators,
    ) -> Result<Fetch, Error> {
        let mut denied = false;
        let result = match self.inner.rules.check(url) {
            Err(Error::HostNotAllowed) => return Err(Error::HostNotAllowed),
            Err(e) => {
                denied = true;
                Err(e)
            }
            Ok(()) => tokio::time::timeout(
                self.inner.timeout,
                self.follow(url.clone(), validators, &mut denied),
            )
            .await
            .unwrap_or(Err(Error::UpstreamTimeout)),
        };
        self.inner.metrics.upstream(outcome(&result, denied));
        result
    }

    /// Follows redirects; sets `denied` when a destination (an address or a redirect hop) is
    /// refused, since that error is deliberately the same as an unreachable host's.
    async fn follow(
        &self,
        mut url: Url,
        validators: &Validators,
        denied: &mut bool,
    ) -> Result<Fetch, Error> {
        let mut seen = Vec::new();
        for _ in 0..=self.inner.max_redirects {
            let host = url.host_str().unwrap_or_default().to_string();
            let permit = self.inner.limiter.acquire(&host).await;
            let response = self
                .inner
                .client
                .request(self.upstream_request(&url, &host, validators)?)
                .await
                .map_err(|e| {
                    let (e, refused) = client_error(e, &url);
                    *denied = refused;
                    e
                })?;
            let status = response.status();
            if is_redirect(status) {
                drop(permit);
                let next = redirect_target(&url, response.headers())
                    .and_then(|next| self.inner.rules.check(&next).map(|()| next))
                    .inspect_err(|e| *denied = matches!(e, Error::Unreachable { .. }))?;
                seen.push(url);
                if seen.contains(&next) {
                    return Err(Error::BadRedirect("redirect loop"));
                }
                url = next;
                continue;
            }
            let fresh_for = freshness::remaining(response.headers(), SystemTime::now());
            match status {
                StatusCode::NOT_MODIFIED
                    if validators.etag.is_some() || validators.last_modified.is_some() =>
                {
                    return Ok(Fetch::NotModified { fresh_for });
                }
                StatusCode::NOT_FOUND | StatusCode::GONE => return Err(Error::UpstreamNotFound),
                s if s.is_success() => {}
                status => {
                    return Err(Error::UpstreamStatus {
                        status,
                        detail: format!("{} answered {status}", host_port(&url)),
                    })
                }
            }
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_string)
            };
            let (upstream_etag, upstream_last_modified) =
                (header(header::ETAG), header(header::LAST_MODIFIED));
            let body = self.read_body(response).await?;
            drop(permit);
            let format = ImageFormat::sniff(&body).ok_or(Error::NotAnImage)?;
            return Ok(Fetch::Full(Fetched {
                body,
                format,
                fresh_for,
                url,
                upstream_etag,
                upstream_last_modified,
            }));
        }
        Err(Error::BadRedirect("too many redirects"))
    }

    fn upstream_request(
        &self,
        url: &Url,
        host: &str,
        validators: &Validators,
    ) -> Result<Request<Empty<Bytes>>, Error> {
        let mut req = Request::get(url.as_str())
            .body(Empty::new())
            .map_err(|_| Error::BadSource("source is not a valid URL"))?;
        let h = req.headers_mut();
        h.insert(header::USER_AGENT, self.inner.user_agent.clone());
        h.insert(header::ACCEPT, HeaderValue::from_static("image/*"));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        let conditional = [
            (header::IF_NONE_MATCH, &validators.etag),
            (header::IF_MODIFIED_SINCE, &validators.last_modified),
        ];
        for (name, value) in conditional {
            if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                h.insert(name, v);
            }
        }
        if let Some(rule) = self
            .inner
            .origin_rules
            .iter()
            .find(|r| r.host.matches(host))
        {
            for (name, value) in &rule.headers {
                h.insert(name, value.clone());
            }
        }
        Ok(req)
    }

    async fn read_body(
        &self,
        response: http::Response<hyper::body::Incoming>,
    ) -> Result<Bytes, Error> {
        let max = self.inner.max_bytes;
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max) {
            return Err(Error::SourceTooLarge);
        }
        // Trust the declared length for the first allocation only up to 1 MiB.
        let mut buf = BytesMut::with_capacity(declared.unwrap_or(64 << 10).min(1 << 20) as usize);
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Unreachable {
                detail: format!("upstream body: {e}"),
            })?;
            if let Ok(data) = frame.into_data() {
                if (buf.len() + data.len()) as u64 > max {
                    return Err(Error::SourceTooLarge);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    }
}

fn is_redirect(s: StatusCode) -> bool {
    matches!(s.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The next hop, re-checked like a source. A hop to a forbidden scheme, to userinfo or to a
/// disallowed port is a denied destination, answered like an unreachable one.
fn redirect_target(from: &Url, headers: &HeaderMap) -> Result<Url, Error> {
    let location = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(Error::BadRedirect("redirect without Location"))?;
    let next = from
        .join(location)
        .map_err(|_| Error::BadRedirect("redirect to an invalid URL"))?;
    let denied = |why: &str| Error::Unreachable {
        detail: format!("redirect hop denied: {why}"),
    };
    if !matches!(next.scheme(), "http" | "https") {
        return Err(denied("scheme"));
    }
    if !next.username().is_empty() || next.password().is_some() || next.host().is_none() {
        return Err(denied("userinfo or no host"));
    }
    Ok(next)
}

/// Maps a client failure; a denied destination and a failed resolution become the same error.
/// The detail (logged, never sent) is the whole chain of causes: a TLS failure names its own,
/// such as an unknown issuer or a certificate not valid for the name. The flag tells a denied
/// destination from the rest for the upstream metric only.
fn client_error(e: hyper_util::client::legacy::Error, url: &Url) -> (Error, bool) {
    let (mut e, denied) = client_cause(e);
    if let Error::Unreachable { detail } = &mut e {
        *detail = format!("{}: {detail}", host_port(url));
    }
    (e, denied)
}

/// `host:port` of `url` (the port the scheme implies when none is written), for log details.
fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// [`client_error`] before the host is named.
fn client_cause(e: hyper_util::client::legacy::Error) -> (Error, bool) {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut chain = Vec::new();
    while let Some(c) = cause {
        if let Some(ce) = c.downcast_ref::<ConnectError>() {
            return match ce {
                ConnectError::Timeout => (Error::UpstreamTimeout, false),
                other => (
                    Error::Unreachable {
                        detail: other.to_string(),
                    },
                    matches!(other, ConnectError::Denied(..)),
                ),
            };
        }
        let text = c.to_string();
        if !chain.iter().any(|seen: &String| seen.contains(&text)) {
            chain.push(text);
        }
        cause = c.source();
    }
    (
        Error::Unreachable {
            detail: chain.join(": "),
        },
        false,
    )
}

/// The `outcome` label of a finished fetch.
fn outcome(result: &Result<Fetch, Error>, denied: bool) -> Upstream {
    match result {
        Ok(Fetch::Full(_)) => Upstream::Ok,
        Ok(Fetch::NotModified { .. }) => Upstream::NotModified,
        Err(_) if denied => Upstream::Denied,
        Err(Error::UpstreamNotFound) => Upstream::NotFound,
        Err(Error::UpstreamTimeout) => Upstream::Timeout,
        Err(Error::SourceTooLarge) => Upstream::TooLarge,
        Err(Error::NotAnImage) => Upstream::NotImage,
        Err(_) => Upstream::Error,
    }
}
