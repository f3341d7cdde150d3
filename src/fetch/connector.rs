//! The guarded connector: the only code that opens upstream TCP connections.
//!
//! It resolves the host itself (names through a [`Resolve`], IP literals parsed directly, since
//! hyper-util's `HttpConnector` would never show them to a resolver), judges **every** address
//! with [`AddressPolicy`], and dials only addresses that passed. A host with any denied address
//! is refused whole, so a DNS answer mixing a public and a private record cannot be raced.
//! `upstream.resolve` pins a `host:port` to a fixed address, which replaces name resolution
//! only: the pinned address is judged like any other. TLS is layered on top by hyper-rustls;
//! this module knows nothing of HTTP.

use super::policy::AddressPolicy;
use crate::config::normalize_host;
use http::Uri;
use hyper_util::rt::TokioIo;
use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    future::Future,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::net::TcpStream;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Name resolution, replaceable so that tests can map names to loopback without touching DNS
/// or `/etc/hosts`.
pub trait Resolve: Send + Sync + fmt::Debug {
    fn resolve(&self, host: String, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>>;
}

/// The operating system's resolver (getaddrinfo on a blocking thread, via tokio).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: String, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// A fixed table of names; any other name fails as NXDOMAIN would. For tests and for
/// deployments that pin origins.
#[derive(Debug, Default, Clone)]
pub struct StaticResolver(pub HashMap<String, Vec<IpAddr>>);

impl StaticResolver {
    pub fn with(mut self, name: &str, ips: &[IpAddr]) -> Self {
        self.0.insert(normalize_host(name), ips.to_vec());
        self
    }
}

impl Resolve for StaticResolver {
    fn resolve(&self, host: String, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        let found = self.0.get(&normalize_host(&host)).cloned();
        Box::pin(async move {
            let ips =
                found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host"))?;
            Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect())
        })
    }
}

/// Why a connection was not made. `Denied` and `Resolve` must end in the same client answer.
#[derive(Debug)]
pub enum ConnectError {
    /// An address of the host is in a denied range (reason for the log).
    Denied(SocketAddr, &'static str),
    /// The name did not resolve, or resolved to nothing.
    Resolve(io::Error),
    /// Every checked address refused or reset.
    Io(io::Error),
    /// `upstream.connect_timeout` ran out.
    Timeout,
    /// The URI has no host.
    NoHost,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Denied(addr, why) => write!(f, "destination {addr} denied ({why})"),
            ConnectError::Resolve(e) => write!(f, "cannot resolve: {e}"),
            ConnectError::Io(e) => write!(f, "connect failed: {e}"),
            ConnectError::Timeout => f.write_str("connect timeout"),
            ConnectError::NoHost => f.write_str("no host in URI"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// A `tower::Service<Uri>` for hyper-util's client that enforces [`AddressPolicy`].
#[derive(Debug, Clone)]
pub struct GuardedConnector {
    resolver: Arc<dyn Resolve>,
    policy: Arc<AddressPolicy>,
    connect_timeout: Duration,
    /// `upstream.resolve`: `host:port` (host normalised) → the address dialled instead.
    pins: Arc<HashMap<String, SocketAddr>>,
}

impl GuardedConnector {
    pub fn new(
        resolver: Arc<dyn Resolve>,
        policy: AddressPolicy,
        connect_timeout: Duration,
    ) -> Self {
        GuardedConnector {
            resolver,
            policy: Arc::new(policy),
            connect_timeout,
            pins: Arc::default(),
        }
    }

    /// Pins `host:port` keys to addresses (`upstream.resolve`); keys are validated `host:port`.
    pub fn with_pins(mut self, pins: BTreeMap<String, SocketAddr>) -> Self {
        let pins = pins
            .into_iter()
            .filter_map(|(key, addr)| {
                let (host, port) = key.rsplit_once(':')?;
                Some((format!("{}:{port}", normalize_host(host)), addr))
            })
            .collect();
        self.pins = Arc::new(pins);
        self
    }

    /// Resolves and judges; returns only addresses that may be dialled.
    async fn checked_addrs(&self, uri: &Uri) -> Result<Vec<SocketAddr>, ConnectError> {
        let host = uri.host().ok_or(ConnectError::NoHost)?;
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let host = normalize_host(host);
        let addrs = if let Some(pinned) = self.pins.get(&format!("{host}:{port}")) {
            vec![*pinned]
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else if host == "localhost" || host.ends_with(".localhost") {
            // RFC 6761: these names are loopback by definition, whatever a resolver says.
            vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
            ]
        } else {
            self.resolver
                .resolve(host, port)
                .await
                .map_err(ConnectError::Resolve)?
        };
        if addrs.is_empty() {
            return Err(ConnectError::Resolve(io::Error::new(
                io::ErrorKind::NotFound,
                "no addresses",
            )));
        }
        for addr in &addrs {
            self.policy
                .check(addr.ip())
                .map_err(|why| ConnectError::Denied(*addr, why))?;
        }
        Ok(addrs)
    }

    async fn connect(self, uri: Uri) -> Result<TokioIo<TcpStream>, ConnectError> {
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let addrs = tokio::time::timeout_at(deadline, self.checked_addrs(&uri))
            .await
            .map_err(|_| ConnectError::Timeout)??;
        let mut last = None;
        for addr in addrs {
            match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
                Err(_) => return Err(ConnectError::Timeout),
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(TokioIo::new(stream));
                }
                Ok(Err(e)) => last = Some(e),
            }
        }
        Err(ConnectError::Io(
            last.unwrap_or_else(|| io::Error::other("no address")),
        ))
    }
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = BoxFuture<Result<Self::Response, ConnectError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(to: &str, allow: &[&str]) -> GuardedConnector {
        let policy = AddressPolicy {
            allow_private: false,
            allow_networks: allow.iter().map(|n| n.parse().unwrap()).collect(),
        };
        let pins = BTreeMap::from([("IMG.test:443".to_string(), to.parse().unwrap())]);
        GuardedConnector::new(
            Arc::new(StaticResolver::default()),
            policy,
            Duration::from_secs(1),
        )
        .with_pins(pins)
    }

    #[tokio::test]
    async fn a_pin_replaces_resolution_and_is_judged_like_any_address() {
        let uri: Uri = "https://img.test/a.png".parse().unwrap();
        // Judged only: nothing is dialled before the check passes.
        for to in [
            "10.0.0.7:443",
            "127.0.0.1:443",
            "169.254.169.254:443",
            "[::ffff:10.1.2.3]:443",
        ] {
            let err = pinned(to, &[]).checked_addrs(&uri).await.unwrap_err();
            assert!(matches!(err, ConnectError::Denied(..)), "{to}: {err}");
        }
        let ok = pinned("127.0.0.1:8443", &["127.0.0.0/8"]);
        let addrs = ok.checked_addrs(&uri).await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:8443".parse().unwrap()]);
        // Another port of the same host is not pinned: it resolves (and here fails to).
        let other: Uri = "https://img.test:8443/a.png".parse().unwrap();
        let err = ok.checked_addrs(&other).await.unwrap_err();
        assert!(matches!(err, ConnectError::Resolve(_)), "{err}");
    }
}
