//! Configuration: every key of `proxy.toml` as a typed value with its default, and the checks
//! that must pass before the server binds a socket.
//!
//! Two stages (SPEC §8): [`load`] layers the raw TOML table (file → `IMGRELAY_*` environment →
//! flags), then serde turns it into a typed [`Config`] (unknown keys rejected, every error
//! naming its key) and [`Config::validate`] checks the ranges and relations serde cannot. This
//! module never opens sockets and never reads the cache directory.

mod host;
mod load;
mod units;
mod validate;

pub use host::{normalize_host, HostPattern};
pub use load::{load, ConfigError};
pub use units::{Bytes, Dur};

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
    /// `[cache.shared]`: the third tier, shared by a fleet of replicas.
    pub shared: SharedCache,
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
            shared: SharedCache::default(),
        }
    }
}

/// `[cache.shared]` (SPEC §7, §8): an S3-compatible bucket behind memory and disk. Credentials
/// are not configuration: they come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and
/// `AWS_SESSION_TOKEN` when set).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharedCache {
    /// `s3://bucket` or `s3://bucket/prefix`; empty = the tier is off.
    pub url: String,
    /// The S3-compatible server (`http://127.0.0.1:9000`); empty = AWS for `region`.
    pub endpoint: String,
    pub region: String,
    /// Allows an `http://` endpoint.
    pub allow_http: bool,
    /// Bound of every bucket call; past it the call is a miss.
    pub timeout: Dur,
    /// Bytes of answers waiting to be written to the bucket; a write past it is dropped.
    pub queue_bytes: Bytes,
}

impl Default for SharedCache {
    fn default() -> Self {
        SharedCache {
            url: String::new(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            allow_http: false,
            timeout: Dur(Duration::from_secs(2)),
            queue_bytes: Bytes(64 << 20),
        }
    }
}

impl SharedCache {
    pub fn is_on(&self) -> bool {
        !self.url.is_empty()
    }

    /// The bucket and the key prefix (without slashes at either end) of `url`, which
    /// [`Config::validate`] has checked.
    pub fn bucket_and_prefix(&self) -> Option<(String, String)> {
        let u = url::Url::parse(&self.url).ok()?;
        let bucket = u.host_str().filter(|b| !b.is_empty())?.to_string();
        Some((bucket, u.path().trim_matches('/').to_string()))
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
pub struct Rewrite {
    pub widths: Vec<u32>,
    pub sizes: String,
    pub unwrap: Vec<UnwrapRule>,
    pub skip_hosts: Vec<HostPattern>,
    pub front_matter_keys: Vec<String>,
    pub lazy: bool,
    pub decoding: bool,
    pub dimensions: bool,
    /// The `output=` of every URL the rewriter writes (`""` keeps the source format).
    #[serde(with = "output_key")]
    pub output: crate::transform::Output,
    /// The transform written into the URLs of `thumbnail_keys` (`"w=640&h=360&fit=cover"`;
    /// `""` = the same URL as every other image). Checked by `validate`.
    pub thumbnail: String,
    /// Front matter keys whose image is a card, written with `thumbnail`.
    pub thumbnail_keys: Vec<String>,
}

impl Rewrite {
    /// `thumbnail` as a transform (`None` when empty), its output `output` unless it names
    /// one: a card is written in the same format as every other image.
    pub fn thumbnail_transform(
        &self,
        max_output_px: u32,
    ) -> Result<Option<crate::transform::Transform>, crate::error::Error> {
        use crate::transform::{Output, Transform};
        if self.thumbnail.trim().is_empty() {
            return Ok(None);
        }
        let mut t = Transform::from_query(self.thumbnail.trim(), max_output_px)?;
        if t.output == Output::Source {
            t.output = self.output;
        }
        Ok(Some(t))
    }
}

/// `rewrite.output` as its keyword, parsed at load so a bad value names the key.
mod output_key {
    use crate::transform::Output;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(o: &Output, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(o)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Output, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|()| {
            serde::de::Error::custom(format!(
                "`{s}` is not one of webp, avif, jpg, png, gif, auto or \"\""
            ))
        })
    }
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
            output: crate::transform::Output::Fixed(crate::transform::Format::Webp),
            thumbnail: String::new(),
            thumbnail_keys: ["thumbnail", "cover"].map(String::from).to_vec(),
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
