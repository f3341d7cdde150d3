//! Source URL rules (SPEC §4): which URLs imgrelay will even try. Pure.
//!
//! The first request and every redirect hop pass [`SourceRules::check`]; the connector then
//! judges the addresses. Port and address denials are reported as [`Error::Unreachable`] so a
//! client cannot tell a filtered destination from a dead one (SPEC §2.6).

use crate::config::HostPattern;
use crate::{config::Config, error::Error};
use url::Url;

/// Parses a source as given by a client: an absolute URL, or wsrv's shorthands `//host/p`,
/// `host/p` and `host:8080/p`, which mean `http://…`.
pub fn parse(raw: &str) -> Result<Url, Error> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Error::BadSource("missing source URL"));
    }
    let absolute = if raw.starts_with("//") {
        format!("http:{raw}")
    } else if has_scheme(raw) {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let url = Url::parse(&absolute).map_err(|_| Error::BadSource("source is not a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::BadSource("only http and https sources are allowed"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::BadSource(
            "userinfo is not allowed in the source URL",
        ));
    }
    if url.host().is_none() {
        return Err(Error::BadSource("source URL has no host"));
    }
    Ok(url)
}

/// `scheme:` at the start, where what follows is not a port number (`host:8080/p`).
fn has_scheme(raw: &str) -> bool {
    let Some((scheme, rest)) = raw.split_once(':') else {
        return false;
    };
    let is_scheme = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme && !rest.starts_with(|c: char| c.is_ascii_digit())
}

/// The host and port rules of `[security]`.
#[derive(Debug, Clone)]
pub struct SourceRules {
    allowed_ports: Vec<u16>,
    allowed_hosts: Vec<HostPattern>,
    denied_hosts: Vec<HostPattern>,
}

impl SourceRules {
    pub fn new(config: &Config) -> Self {
        SourceRules {
            allowed_ports: config.security.allowed_ports.clone(),
            allowed_hosts: config.security.allowed_hosts.clone(),
            denied_hosts: config.security.denied_hosts.clone(),
        }
    }

    /// Whether `allowed_hosts` lists the host (used for the unsigned forms when signing is on).
    pub fn explicitly_allowed(&self, url: &Url) -> bool {
        url.host_str()
            .is_some_and(|h| HostPattern::any(&self.allowed_hosts, h))
    }

    /// Host lists and port. `Err(HostNotAllowed)` for the operator's lists,
    /// `Err(Unreachable)` for a disallowed port (a denied destination).
    pub fn check(&self, url: &Url) -> Result<(), Error> {
        let host = url.host_str().unwrap_or_default();
        if HostPattern::any(&self.denied_hosts, host)
            || (!self.allowed_hosts.is_empty() && !HostPattern::any(&self.allowed_hosts, host))
        {
            return Err(Error::HostNotAllowed);
        }
        let port = url.port_or_known_default().unwrap_or(0);
        if !self.allowed_ports.is_empty() && !self.allowed_ports.contains(&port) {
            return Err(Error::Unreachable {
                detail: format!("port {port} not in security.allowed_ports"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wsrv_shorthands_mean_http() {
        for (raw, want) in [
            (
                "//static.1sapp.com/a.jpeg",
                "http://static.1sapp.com/a.jpeg",
            ),
            ("static.1sapp.com/a.jpeg", "http://static.1sapp.com/a.jpeg"),
            ("host:8080/p.png", "http://host:8080/p.png"),
            ("https://h/p.png?x=1&y=2", "https://h/p.png?x=1&y=2"),
            ("HTTP://H/p", "http://h/p"),
        ] {
            assert_eq!(parse(raw).unwrap().as_str(), want, "{raw}");
        }
    }

    #[test]
    fn refuses_other_schemes_userinfo_and_garbage() {
        for raw in [
            "file:///etc/passwd",
            "file:/etc/passwd",
            "gopher://h/1",
            "ftp://h/a.jpg",
            "data:image/png;base64,AAAA",
            "javascript:alert(1)",
            "http://allowed@127.0.0.1/",
            "http://127.0.0.1%2F@allowed/",
            "http://user:pass@h/a.jpg",
            "",
            "http://",
            "http://[::1/",
        ] {
            assert!(matches!(parse(raw), Err(Error::BadSource(_))), "{raw}");
        }
    }

    #[test]
    fn host_lists_and_ports() {
        let mut c = Config::default();
        c.security.allowed_hosts = vec!["*.example.com".parse().unwrap(), "a.org".parse().unwrap()];
        c.security.denied_hosts = vec!["bad.example.com".parse().unwrap()];
        let rules = SourceRules::new(&c);
        let check = |u: &str| rules.check(&parse(u).unwrap());
        assert!(check("http://img.example.com/x.jpg").is_ok());
        assert!(check("https://A.ORG./x.jpg").is_ok());
        assert!(matches!(
            check("http://bad.example.com/x"),
            Err(Error::HostNotAllowed)
        ));
        assert!(matches!(
            check("http://other.net/x"),
            Err(Error::HostNotAllowed)
        ));
        assert!(matches!(
            check("http://a.org:8080/x"),
            Err(Error::Unreachable { .. })
        ));
        assert!(check("https://a.org:443/x").is_ok());
    }
}
