//! Configuration: every key of `proxy.toml` as a typed value with its default, and the checks
//! that must pass before the server binds a socket.
//!
//! Two stages (SPEC §8): [`load`] layers the raw TOML table (file → `IMGRELAY_*` environment →
//! flags), then serde turns it into a typed [`Config`] (unknown keys rejected, every error
//! naming its key) and [`Config::validate`] checks the ranges and relations serde cannot. This
//! module never opens sockets and never reads the cache directory.

mod load;
mod units;

pub use load::{load, ConfigError};
pub use units::{Bytes, Dur};

use crate::fetch::policy::HostPattern;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::{collections::BTreeMap, fmt, net::SocketAddr, path::PathBuf, time::Duration};

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
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub listen: SocketAddr,
    /// The origin that `rewrite` writes into articles.
    pub public_url: String,
    /// Separate listener for `/metrics`; empty = served on the main listener.
    pub admin_listen: String,
    /// Bearer token for `/rewrite` and `/purge`; empty = those endpoints are off.
    pub admin_token: Secret,
    pub cors_origin: String,
    pub max_connections: usize,
    pub header_timeout: Dur,
    pub grace_period: Dur,
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
            header_timeout: Dur(Duration::from_secs(10)),
            grace_period: Dur(Duration::from_secs(10)),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cache {
    pub dir: PathBuf,
    pub memory_bytes: Bytes,
    pub disk_bytes: Bytes,
    pub negative_ttl: Dur,
    pub min_ttl: Dur,
    pub max_ttl: Dur,
    pub stale_while_revalidate: Dur,
    pub stale_if_error: Dur,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            dir: PathBuf::from("./cache"),
            memory_bytes: Bytes(256 << 20),
            disk_bytes: Bytes(4 << 30),
            negative_ttl: Dur(Duration::from_secs(60)),
            min_ttl: Dur(Duration::from_secs(3600)),
            max_ttl: Dur(Duration::from_secs(30 * 86_400)),
            stale_while_revalidate: Dur(Duration::from_secs(86_400)),
            stale_if_error: Dur(Duration::from_secs(7 * 86_400)),
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
}

impl Default for Transform {
    fn default() -> Self {
        Transform {
            workers: 0,
            queue: 64,
            timeout: Dur(Duration::from_secs(10)),
            svg: SvgMode::Refuse,
            quality: Quality::default(),
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
pub struct Rewrite {
    pub widths: Vec<u32>,
    pub sizes: String,
    pub unwrap: Vec<UnwrapRule>,
    pub skip_hosts: Vec<HostPattern>,
    pub front_matter_keys: Vec<String>,
    pub lazy: bool,
    pub decoding: bool,
    pub dimensions: bool,
    pub output: String,
}

impl Default for Rewrite {
    fn default() -> Self {
        let unwrap = |prefix: &str, mode| UnwrapRule {
            prefix: prefix.into(),
            mode,
        };
        Rewrite {
            widths: vec![320, 640, 960, 1280],
            sizes: "(max-width: 800px) 100vw, 800px".into(),
            unwrap: vec![
                unwrap("https://cors.zfour.workers.dev/?", UnwrapMode::Rest),
                unwrap("https://wsrv.nl/?", UnwrapMode::ParamUrl),
                unwrap("https://images.weserv.nl/?", UnwrapMode::ParamUrl),
                unwrap("https://i0.wp.com/", UnwrapMode::Path),
                unwrap("https://i1.wp.com/", UnwrapMode::Path),
                unwrap("https://i2.wp.com/", UnwrapMode::Path),
                unwrap("https://i3.wp.com/", UnwrapMode::Path),
            ],
            skip_hosts: Vec::new(),
            front_matter_keys: ["headimg", "thumbnail", "cover", "image", "banner"]
                .map(String::from)
                .to_vec(),
            lazy: true,
            decoding: true,
            dimensions: true,
            output: "webp".into(),
        }
    }
}

/// A foreign proxy wrapper to strip before rewriting (SPEC §3).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UnwrapRule {
    pub prefix: String,
    pub mode: UnwrapMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum UnwrapMode {
    /// The remainder after the prefix, verbatim.
    #[serde(rename = "rest")]
    Rest,
    /// The percent-decoded `url` query parameter.
    #[serde(rename = "param:url")]
    ParamUrl,
    /// Host and path follow the prefix; scheme https; the wrapper's query dropped.
    #[serde(rename = "path")]
    Path,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret string (token, signing key): never printed, in `Debug` or in `check-config`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "***" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// Any scalar: an all-digit token given through the environment arrives as a TOML integer.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            S(String),
            I(i64),
            F(f64),
            B(bool),
        }
        Ok(Secret(match Scalar::deserialize(d)? {
            Scalar::S(s) => s,
            Scalar::I(i) => i.to_string(),
            Scalar::F(f) => f.to_string(),
            Scalar::B(b) => b.to_string(),
        }))
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(key, message)
}

impl Config {
    /// Ranges and relations that serde's types cannot express. Runs before any socket is bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        url::Url::parse(&s.public_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| invalid("server.public_url", "must be an absolute http(s) URL"))?;
        if !s.admin_listen.is_empty() && s.admin_listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "server.admin_listen",
                "must be empty or an address like 127.0.0.1:9090",
            ));
        }
        http::HeaderValue::from_str(&s.cors_origin)
            .map_err(|_| invalid("server.cors_origin", "is not a valid header value"))?;
        if s.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be at least 1"));
        }
        if s.header_timeout.0.is_zero() {
            return Err(invalid("server.header_timeout", "must be more than 0s"));
        }

        let c = &self.cache;
        if c.min_ttl > c.max_ttl {
            return Err(invalid("cache.min_ttl", "must not exceed cache.max_ttl"));
        }

        for (i, k) in self.security.signing_keys.iter().enumerate() {
            if k.0.len() < 32 {
                return Err(invalid(
                    &format!("security.signing_keys[{i}]"),
                    "must be at least 32 bytes",
                ));
            }
        }
        if self.security.allowed_ports.contains(&0) {
            return Err(invalid("security.allowed_ports", "0 is not a port"));
        }

        let u = &self.upstream;
        for (key, d) in [
            ("upstream.connect_timeout", u.connect_timeout),
            ("upstream.timeout", u.timeout),
        ] {
            if d.0.is_zero() {
                return Err(invalid(key, "must be more than 0s"));
            }
        }
        if u.max_bytes.0 == 0 {
            return Err(invalid("upstream.max_bytes", "must be more than 0"));
        }
        if u.per_host_concurrency == 0 {
            return Err(invalid(
                "upstream.per_host_concurrency",
                "must be at least 1",
            ));
        }
        if u.max_redirects > 20 {
            return Err(invalid("upstream.max_redirects", "must be at most 20"));
        }
        http::HeaderValue::from_str(&u.user_agent)
            .map_err(|_| invalid("upstream.user_agent", "is not a valid header value"))?;
        for (i, rule) in u.rules.iter().enumerate() {
            let key = format!("upstream.rules[{i}]");
            if let Some(r) = &rule.referer {
                url::Url::parse(r)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        invalid(&format!("{key}.referer"), "must be an absolute http(s) URL")
                    })?;
            }
            for (name, value) in &rule.headers {
                http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    invalid(
                        &format!("{key}.headers"),
                        format!("`{name}` is not a header name"),
                    )
                })?;
                http::HeaderValue::from_str(value).map_err(|_| {
                    invalid(
                        &format!("{key}.headers.{name}"),
                        "is not a valid header value",
                    )
                })?;
            }
        }

        let l = &self.limits;
        for (key, zero) in [
            ("limits.max_source_pixels", l.max_source_pixels == 0),
            ("limits.max_output_px", l.max_output_px == 0),
            ("limits.max_frames", l.max_frames == 0),
            ("limits.max_animation_pixels", l.max_animation_pixels == 0),
        ] {
            if zero {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if l.max_url_bytes < 256 {
            return Err(invalid("limits.max_url_bytes", "must be at least 256"));
        }

        let t = &self.transform;
        for (key, q) in [
            ("transform.quality.jpeg", t.quality.jpeg),
            ("transform.quality.webp", t.quality.webp),
            ("transform.quality.avif", t.quality.avif),
        ] {
            if !(1..=100).contains(&q) {
                return Err(invalid(key, "must be within 1..=100"));
            }
        }
        if t.queue == 0 {
            return Err(invalid("transform.queue", "must be at least 1"));
        }

        let r = &self.rewrite;
        if let Some(w) = r.widths.iter().find(|&&w| w == 0 || w > l.max_output_px) {
            return Err(invalid(
                "rewrite.widths",
                format!("{w} is outside 1..=limits.max_output_px"),
            ));
        }
        if !matches!(
            r.output.as_str(),
            "webp" | "avif" | "jpg" | "png" | "gif" | "auto" | ""
        ) {
            return Err(invalid(
                "rewrite.output",
                "must be one of webp, avif, jpg, png, gif, auto",
            ));
        }

        tracing_subscriber::EnvFilter::try_new(&self.log.level).map_err(|_| {
            invalid(
                "log.level",
                "is not a level or filter (e.g. \"info\", \"imgrelay=debug\")",
            )
        })?;
        Ok(())
    }

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
        Err(invalid(
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
