//! Host-name patterns (`allowed_hosts`, `denied_hosts`, `allowed_referers`, `skip_hosts`,
//! `[[upstream.rules]]`) and the canonical spelling of a host name they compare.
//!
//! Pure. Configuration parses them; the fetcher, the API's referer check and the rewriter
//! match with them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, str::FromStr};

/// A host-name pattern of `allowed_hosts`, `denied_hosts`, `allowed_referers`, `skip_hosts`
/// and `[[upstream.rules]]`: an exact name, or `*.suffix` for any name under `suffix` (not
/// `suffix` itself). Case-insensitive; a trailing dot is ignored on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    Suffix(String),
}

/// The canonical form of a host name for comparisons: lower case, no trailing dot, no brackets.
pub fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.')
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

impl HostPattern {
    pub fn matches(&self, host: &str) -> bool {
        let host = normalize_host(host);
        match self {
            HostPattern::Exact(name) => host == *name,
            HostPattern::Suffix(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }

    /// Whether any pattern of `list` matches `host`.
    pub fn any(list: &[HostPattern], host: &str) -> bool {
        list.iter().any(|p| p.matches(host))
    }
}

impl FromStr for HostPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (wild, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let name = normalize_host(name);
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'));
        if !ok {
            return Err(format!("`{s}` is not a host name or `*.suffix` pattern"));
        }
        Ok(if wild {
            HostPattern::Suffix(name)
        } else {
            HostPattern::Exact(name)
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(n) => f.write_str(n),
            HostPattern::Suffix(n) => write!(f, "*.{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let exact: HostPattern = "Static.1sapp.com.".parse().unwrap();
        assert!(exact.matches("static.1sapp.com"));
        assert!(exact.matches("STATIC.1SAPP.COM."));
        assert!(!exact.matches("x.static.1sapp.com"));
        let wild: HostPattern = "*.example.com".parse().unwrap();
        assert!(wild.matches("img.example.com"));
        assert!(wild.matches("a.b.Example.COM."));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("badexample.com"));
        assert!(!wild.matches(".example.com"));
        assert_eq!(wild.to_string().parse::<HostPattern>().unwrap(), wild);
        for bad in ["", "*.", "a b", "http://x.com/", "*"] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad:?}");
        }
    }
}
