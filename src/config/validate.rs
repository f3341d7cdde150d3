//! The second stage of configuration: ranges and relations serde's types cannot express,
//! checked before any socket is bound. Each failure names its key.

use super::{Config, ConfigError};
use std::net::SocketAddr;

/// The shortest `cdn.purge_token`: 128 bits of a hex or base64 secret.
const MIN_PURGE_TOKEN: usize = 32;

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(key, message)
}

/// `s` parsed, when it is an absolute http(s) URL with a host.
fn http_url(s: &str) -> Option<url::Url> {
    url::Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

impl Config {
    /// Ranges and relations that serde's types cannot express. Runs before any socket is bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        http_url(&s.public_url)
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
        if s.admin_max_connections == 0 {
            return Err(invalid(
                "server.admin_max_connections",
                "must be at least 1",
            ));
        }
        if s.header_timeout.0.is_zero() {
            return Err(invalid("server.header_timeout", "must be more than 0s"));
        }
        self.validate_peers()?;

        let c = &self.cache;
        if c.min_ttl > c.max_ttl {
            return Err(invalid("cache.min_ttl", "must not exceed cache.max_ttl"));
        }
        self.validate_shared(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))?;

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
                http_url(r).ok_or_else(|| {
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
        if !u.ca_file.as_os_str().is_empty() {
            super::load_ca_file(&u.ca_file).map_err(|e| {
                invalid("upstream.ca_file", format!("{}: {e}", u.ca_file.display()))
            })?;
        }
        for pin in u.resolve.keys() {
            let valid = pin
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(invalid(
                    "upstream.resolve",
                    format!("`{pin}` is not host:port"),
                ));
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
        if t.memory_bytes.0 < 1 << 20 {
            return Err(invalid("transform.memory_bytes", "must be at least 1MiB"));
        }

        let r = &self.rewrite;
        if let Some(w) = r.widths.iter().find(|&&w| w == 0 || w > l.max_output_px) {
            return Err(invalid(
                "rewrite.widths",
                format!("{w} is outside 1..=limits.max_output_px"),
            ));
        }
        r.thumbnail_transform(l.max_output_px)
            .map_err(|e| invalid("rewrite.thumbnail", format!("{e}")))?;
        if !r.info_from.is_empty() && http_url(&r.info_from).is_none() {
            return Err(invalid(
                "rewrite.info_from",
                "must be an absolute http(s) URL of a running imgrelay (or \"\")",
            ));
        }

        tracing_subscriber::EnvFilter::try_new(&self.log.level).map_err(|_| {
            invalid(
                "log.level",
                "is not a level or filter (e.g. \"info\", \"imgrelay=debug\")",
            )
        })?;

        for u in &self.cdn.purge_urls {
            http_url(u).ok_or_else(|| {
                invalid(
                    "cdn.purge_urls",
                    format!("{u:?} is not an absolute http(s) URL"),
                )
            })?;
        }
        let token = self.cdn.purge_token.expose();
        if !self.cdn.purge_urls.is_empty() && token.len() < MIN_PURGE_TOKEN {
            return Err(invalid(
                "cdn.purge_token",
                format!(
                    "must be at least {MIN_PURGE_TOKEN} bytes when cdn.purge_urls is set \
                     (the CDN purges only for a request carrying it)"
                ),
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "cdn.purge_token",
                "must be printable ASCII without spaces (it is sent as a header)",
            ));
        }
        Ok(())
    }

    /// `server.peers`: base URLs that `/purge` appends `/purge?…` to, reached with the admin
    /// token (so one must be set, and a URL may not carry credentials of its own).
    fn validate_peers(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        for p in &s.peers {
            let ok = http_url(p).is_some_and(|u| {
                u.username().is_empty()
                    && u.password().is_none()
                    && u.query().is_none()
                    && u.fragment().is_none()
            });
            if !ok {
                return Err(invalid(
                    "server.peers",
                    format!(
                        "{p:?} is not a replica's base URL (absolute http(s), no credentials, \
                         query or fragment), e.g. \"http://10.0.0.12:8080\""
                    ),
                ));
            }
        }
        if !s.peers.is_empty() && s.admin_token.is_empty() {
            return Err(invalid(
                "server.peers",
                "needs server.admin_token: purges are forwarded to the peers with it",
            ));
        }
        Ok(())
    }

    /// `[cache.shared]`; `has_env` tells whether an environment variable is set and not empty
    /// (the credentials are read from there).
    pub(super) fn validate_shared(
        &self,
        has_env: impl Fn(&str) -> bool,
    ) -> Result<(), ConfigError> {
        let s = &self.cache.shared;
        if !s.is_on() {
            return Ok(());
        }
        let url = url::Url::parse(&s.url).ok().filter(|u| {
            u.scheme() == "s3"
                && u.host_str().is_some_and(|b| !b.is_empty())
                && u.query().is_none()
                && u.fragment().is_none()
        });
        let Some((_, prefix)) = url.and_then(|_| s.bucket_and_prefix()) else {
            return Err(invalid(
                "cache.shared.url",
                "must be empty or s3://bucket or s3://bucket/prefix",
            ));
        };
        if !prefix.is_empty() && object_store::path::Path::parse(&prefix).is_err() {
            return Err(invalid(
                "cache.shared.url",
                format!("`{prefix}` is not a usable key prefix (empty, `.` or `..` segments?)"),
            ));
        }
        if !s.endpoint.is_empty() {
            let endpoint = url::Url::parse(&s.endpoint)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| {
                    invalid(
                        "cache.shared.endpoint",
                        "must be empty or an absolute http(s) URL such as http://127.0.0.1:9000",
                    )
                })?;
            if endpoint.scheme() == "http" && !s.allow_http {
                return Err(invalid(
                    "cache.shared.allow_http",
                    "must be true for an http:// endpoint",
                ));
            }
        }
        if s.region.trim().is_empty() {
            return Err(invalid("cache.shared.region", "must not be empty"));
        }
        if s.timeout.0.is_zero() || s.timeout.0 > std::time::Duration::from_secs(60) {
            return Err(invalid("cache.shared.timeout", "must be within 1ms..=60s"));
        }
        for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            if !has_env(var) {
                return Err(invalid(
                    "cache.shared.url",
                    format!("the shared tier needs {var} in the environment"),
                ));
            }
        }
        if s.key.expose().len() < 32 {
            let why = if s.key.is_empty() {
                "is required"
            } else {
                "is too short"
            };
            return Err(invalid(
                "cache.shared.key",
                format!(
                    "{why} with [cache.shared]: at least 32 bytes, the same on every replica \
                     (the MAC that keeps forged bucket objects from being served)"
                ),
            ));
        }
        Ok(())
    }
}
