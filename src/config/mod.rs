//! Configuration: every key of `proxy.toml` as a typed value with its default, and the checks
//! that must pass before the server binds a socket.
//!
//! Two stages (SPEC §8): [`load`] layers the raw TOML table (file → `IMGRELAY_*` environment →
//! flags), then serde turns it into a typed [`Config`] (unknown keys rejected, every error
//! naming its key) and [`Config::validate`] checks the ranges and relations serde cannot. This
//! module never opens sockets and never reads the cache directory.

mod ca;
mod cache;
mod host;
mod load;
mod rewrite;
mod secret;
mod units;
mod validate;

pub use ca::load_ca_file;
pub use cache::{Cache, SharedCache};
pub use host::{normalize_host, HostPattern};
pub use load::{load, ConfigError};
pub use rewrite::{Placeholder, Rewrite, UnwrapMode, UnwrapRule};
pub use secret::Secret;
pub use units::{Bytes, Dur};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

/// The whole configuration. Field names are the key paths of SPEC §8.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: Server,
    pub cache: Cache,
    pub security: Security,
    pub upstream: Upstream,
    pub limits: Limits,
    pub transform: Transform,
    pub rewrite: Rewrite,
    pub log: Log,
    pub cdn: Cdn,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub listen: SocketAddr,
    /// The origin that `rewrite` writes into articles.
    pub public_url: String,
    /// Operator listener for `/metrics`, `/healthz` and `/readyz`; when set, the main listener
    /// answers 404 for `/metrics`. Empty = all three on the main listener.
    pub admin_listen: String,
    /// Bearer token for `/rewrite` and `/purge`; empty = those endpoints are off.
    pub admin_token: Secret,
    pub cors_origin: String,
    /// Open connections on `listen` at once; more wait in the backlog.
    pub max_connections: usize,
    /// Open connections on `admin_listen` at once, a budget of its own: a full public
    /// listener never keeps the operator's `/healthz` and `/metrics` waiting.
    pub admin_max_connections: usize,
    pub header_timeout: Dur,
    pub grace_period: Dur,
    /// The other replicas' base URLs (absolute http(s)); `/purge` forwards to each of them.
    pub peers: Vec<String>,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            admin_listen: String::new(),
            admin_token: Secret::default(),
            cors_origin: "*".into(),
            max_connections: 10_000,
            admin_max_connections: 64,
            header_timeout: Dur(Duration::from_secs(10)),
            grace_period: Dur(Duration::from_secs(10)),
            peers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    pub allow_private: bool,
    pub allow_networks: Vec<IpNet>,
    /// Empty = any port.
    pub allowed_ports: Vec<u16>,
    /// Empty = any public host.
    pub allowed_hosts: Vec<HostPattern>,
    pub denied_hosts: Vec<HostPattern>,
    /// Inbound hotlink protection; empty = any (and requests without `Referer` always pass).
    pub allowed_referers: Vec<HostPattern>,
    pub signing_keys: Vec<Secret>,
    pub open_proxy: bool,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            allow_private: false,
            allow_networks: Vec::new(),
            allowed_ports: vec![80, 443],
            allowed_hosts: Vec::new(),
            denied_hosts: Vec::new(),
            allowed_referers: Vec::new(),
            signing_keys: Vec::new(),
            open_proxy: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Upstream {
    pub connect_timeout: Dur,
    pub timeout: Dur,
    pub max_redirects: u32,
    pub max_bytes: Bytes,
    pub per_host_concurrency: usize,
    pub user_agent: String,
    pub rules: Vec<UpstreamRule>,
    /// A PEM bundle of CA certificates trusted besides the webpki roots (origins behind a
    /// private CA); empty = the webpki roots only.
    pub ca_file: PathBuf,
    /// `"host:port" = "ip:port"`: connect to that address instead of resolving the host (as
    /// curl's `--connect-to`); TLS still checks the certificate against the host, and the
    /// pinned address still passes every address rule.
    pub resolve: BTreeMap<String, SocketAddr>,
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream {
            connect_timeout: Dur(Duration::from_secs(5)),
            timeout: Dur(Duration::from_secs(20)),
            max_redirects: 5,
            max_bytes: Bytes(32 << 20),
            per_host_concurrency: 8,
            user_agent: concat!("imgrelay/", env!("CARGO_PKG_VERSION")).into(),
            rules: Vec::new(),
            ca_file: PathBuf::new(),
            resolve: BTreeMap::new(),
        }
    }
}

/// Fixed request headers for origins that insist on them (their own `Referer`, usually).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamRule {
    pub host: HostPattern,
    #[serde(default)]
    pub referer: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_source_pixels: u64,
    pub max_output_px: u32,
    pub max_frames: u32,
    pub max_animation_pixels: u64,
    pub max_url_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_source_pixels: 50_000_000,
            max_output_px: 8192,
            max_frames: 512,
            max_animation_pixels: 200_000_000,
            max_url_bytes: 8192,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Transform {
    /// 0 = one per core.
    pub workers: usize,
    pub queue: usize,
    pub timeout: Dur,
    pub svg: SvgMode,
    pub quality: Quality,
    /// Decoded pixels, frames and working buffers that running transforms may hold at once.
    pub memory_bytes: Bytes,
}

impl Default for Transform {
    fn default() -> Self {
        Transform {
            workers: 0,
            queue: 64,
            timeout: Dur(Duration::from_secs(10)),
            svg: SvgMode::Refuse,
            quality: Quality::default(),
            memory_bytes: Bytes(1 << 30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SvgMode {
    Refuse,
    Rasterize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quality {
    pub jpeg: u8,
    pub webp: u8,
    pub avif: u8,
}

impl Default for Quality {
    fn default() -> Self {
        Quality {
            jpeg: 80,
            webp: 75,
            avif: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
    /// One access line per request (SPEC §6); off leaves only the server's and origins' errors.
    pub access: bool,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: LogFormat::Text,
            level: "info".into(),
            access: true,
        }
    }
}

/// The CDN in front (SPEC §8 `[cdn]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cdn {
    /// Endpoints (absolute http(s) URLs) that receive `PURGE` with `xkey` on `/purge`.
    pub purge_urls: Vec<String>,
    /// Sent with every `PURGE` as `X-Imgrelay-Purge-Token`: the shipped VCL purges only for a
    /// request carrying the token it was started with (an address alone is no authority
    /// behind a TLS terminator on the same host). Required with `purge_urls`.
    pub purge_token: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// The open-proxy guard of SPEC §2.3: listening beyond loopback with nothing restricting
    /// what may be fetched turns imgrelay into anybody's image proxy.
    pub fn check_open_proxy(&self) -> Result<(), ConfigError> {
        let sec = &self.security;
        if self.server.listen.ip().is_loopback()
            || !sec.signing_keys.is_empty()
            || !sec.allowed_hosts.is_empty()
            || sec.open_proxy
        {
            return Ok(());
        }
        Err(ConfigError::new(
            "security.open_proxy",
            format!(
                "refusing to serve on {} as an open proxy: set security.signing_keys or \
                 security.allowed_hosts, or set security.open_proxy = true to allow it on purpose",
                self.server.listen
            ),
        ))
    }

    /// Worker threads for CPU work: `transform.workers`, or one per core.
    pub fn workers(&self) -> usize {
        match self.transform.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_loopback_is_not_an_open_proxy() {
        let c = Config::default();
        c.validate().unwrap();
        c.check_open_proxy().unwrap();
    }

    #[test]
    fn open_proxy_guard_refuses_public_listen_without_keys_or_hosts() {
        let mut c = Config::default();
        c.server.listen = "0.0.0.0:8080".parse().unwrap();
        let e = c.check_open_proxy().unwrap_err();
        assert_eq!(e.key, "security.open_proxy");
        assert!(e.message.contains("0.0.0.0:8080"));

        let mut with_hosts = c.clone();
        with_hosts.security.allowed_hosts = vec!["*.example.com".parse().unwrap()];
        with_hosts.check_open_proxy().unwrap();

        let mut with_keys = c.clone();
        with_keys.security.signing_keys = vec![Secret("k".repeat(32))];
        with_keys.check_open_proxy().unwrap();

        c.security.open_proxy = true;
        c.check_open_proxy().unwrap();
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = Config::default();
        c.security.signing_keys = vec![Secret("short".into())];
        assert_eq!(c.validate().unwrap_err().key, "security.signing_keys[0]");

        let mut c = Config::default();
        c.transform.quality.webp = 0;
        assert_eq!(c.validate().unwrap_err().key, "transform.quality.webp");

        let mut c = Config::default();
        c.cache.min_ttl = Dur(Duration::from_secs(100 * 86_400));
        assert_eq!(c.validate().unwrap_err().key, "cache.min_ttl");

        let mut c = Config::default();
        c.limits.max_url_bytes = 10;
        assert_eq!(c.validate().unwrap_err().key, "limits.max_url_bytes");
    }

    #[test]
    fn shared_tier_validation_names_the_key() {
        let creds = |name: &str| name.starts_with("AWS_");
        let shared = |f: &dyn Fn(&mut SharedCache)| {
            let mut c = Config::default();
            c.cache.shared.url = "s3://bucket/imgrelay/cache".into();
            c.cache.shared.endpoint = "http://127.0.0.1:9000".into();
            c.cache.shared.allow_http = true;
            c.cache.shared.key = Secret("k".repeat(32));
            f(&mut c.cache.shared);
            c
        };
        let good = shared(&|_| {});
        good.validate_shared(creds).unwrap();
        assert_eq!(
            good.cache.shared.bucket_and_prefix(),
            Some(("bucket".into(), "imgrelay/cache".into()))
        );
        let bare = shared(&|s| s.url = "s3://bucket".into());
        bare.validate_shared(creds).unwrap();
        assert_eq!(
            bare.cache.shared.bucket_and_prefix(),
            Some(("bucket".into(), String::new()))
        );
        Config::default().validate_shared(|_| false).unwrap();

        for (f, key) in [
            (
                &(|s: &mut SharedCache| s.url = "https://bucket/p".into())
                    as &dyn Fn(&mut SharedCache),
                "cache.shared.url",
            ),
            (&|s| s.url = "s3:///p".into(), "cache.shared.url"),
            (&|s| s.url = "bucket/p".into(), "cache.shared.url"),
            (&|s| s.url = "s3://bucket/a//b".into(), "cache.shared.url"),
            (
                &|s| s.endpoint = "127.0.0.1:9000".into(),
                "cache.shared.endpoint",
            ),
            (&|s| s.allow_http = false, "cache.shared.allow_http"),
            (&|s| s.region = " ".into(), "cache.shared.region"),
            (&|s| s.timeout = Dur(Duration::ZERO), "cache.shared.timeout"),
            (&|s| s.key = Secret::default(), "cache.shared.key"),
            (&|s| s.key = Secret("k".repeat(31)), "cache.shared.key"),
        ] {
            let c = shared(f);
            let e = c.validate_shared(creds).unwrap_err();
            assert_eq!(e.key, key, "{:?}: {}", c.cache.shared, e.message);
        }
        let e = good
            .validate_shared(|n| n != "AWS_SECRET_ACCESS_KEY")
            .unwrap_err();
        assert_eq!(e.key, "cache.shared.url");
        assert!(e.message.contains("AWS_SECRET_ACCESS_KEY"), "{}", e.message);
    }

    #[test]
    fn peers_are_base_urls_and_need_the_admin_token() {
        let with = |peers: &[&str], token: &str| {
            let mut c = Config::default();
            c.server.peers = peers.iter().map(|p| p.to_string()).collect();
            c.server.admin_token = Secret(token.into());
            c.validate()
        };
        with(
            &["http://10.0.0.12:8080", "https://r3.internal/imgrelay/"],
            "t",
        )
        .unwrap();
        with(&[], "").unwrap();
        for bad in [
            "10.0.0.12:8080",
            "ftp://10.0.0.12/",
            "http://user:pw@10.0.0.12/",
            "http://10.0.0.12/?scope=local",
            "http://10.0.0.12/#x",
            "",
        ] {
            let e = with(&[bad], "t").unwrap_err();
            assert_eq!(e.key, "server.peers", "{bad}: {}", e.message);
            assert!(e.message.contains(&format!("{bad:?}")), "{}", e.message);
        }
        let e = with(&["http://10.0.0.12:8080"], "").unwrap_err();
        assert_eq!(e.key, "server.peers");
        assert!(e.message.contains("server.admin_token"), "{}", e.message);
    }

    #[test]
    fn secrets_are_masked_in_debug_and_serialised_output() {
        let mut c = Config::default();
        c.server.admin_token = Secret("hunter2-hunter2".into());
        c.security.signing_keys = vec![Secret("x".repeat(40))];
        let shown = toml::to_string(&c).unwrap();
        assert!(!shown.contains("hunter2") && !shown.contains(&"x".repeat(40)));
        assert!(shown.contains("***"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
