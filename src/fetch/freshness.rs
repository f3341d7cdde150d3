//! How long an upstream response stays fresh (RFC 9111 §4.2.1), read from its headers.
//! imgrelay is a shared cache, so `s-maxage` wins over `max-age`; `no-store`, `no-cache` and
//! `private` leave nothing fresh. Pure; the caller clamps to `cache.min_ttl..cache.max_ttl`.

use http::{header, HeaderMap};
use std::time::{Duration, SystemTime};

/// Remaining freshness of a response received at `now`, or `None` when the origin said
/// nothing (the caller then falls back to `cache.min_ttl`).
pub fn remaining(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let age = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let mut max_age = None;
    let mut s_maxage = None;
    for directive in headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let (name, value) = directive
            .trim()
            .split_once('=')
            .unwrap_or((directive.trim(), ""));
        let secs = || value.trim().trim_matches('"').parse::<u64>().ok();
        match name.trim().to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" | "private" => return Some(Duration::ZERO),
            "max-age" => max_age = secs(),
            "s-maxage" => s_maxage = secs(),
            _ => {}
        }
    }
    if let Some(secs) = s_maxage.or(max_age) {
        return Some(Duration::from_secs(secs.saturating_sub(age)));
    }
    let date = |name| {
        headers
            .get(name)
            .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok())
    };
    if !headers.contains_key(header::EXPIRES) {
        return None;
    }
    // An invalid Expires (such as "0") means already expired.
    let expires = date(header::EXPIRES).unwrap_or(SystemTime::UNIX_EPOCH);
    let base = date(header::DATE).unwrap_or(now);
    let lifetime = expires.duration_since(base).unwrap_or(Duration::ZERO);
    Some(lifetime.saturating_sub(Duration::from_secs(age)))
}

/// The `max-age` imgrelay promises downstream: the remaining freshness clamped to the
/// configured bounds.
pub fn clamp(remaining: Option<Duration>, min: Duration, max: Duration) -> Duration {
    remaining.unwrap_or(min).clamp(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn cache_control_rules() {
        let now = SystemTime::now();
        let secs = |p: &[(&'static str, &str)]| remaining(&h(p), now).map(|d| d.as_secs());
        assert_eq!(secs(&[("cache-control", "public, max-age=600")]), Some(600));
        assert_eq!(
            secs(&[("cache-control", "max-age=600, s-maxage=60")]),
            Some(60)
        );
        assert_eq!(
            secs(&[("cache-control", "max-age=600"), ("age", "100")]),
            Some(500)
        );
        assert_eq!(
            secs(&[("cache-control", "max-age=60"), ("age", "100")]),
            Some(0)
        );
        assert_eq!(secs(&[("cache-control", "no-store")]), Some(0));
        assert_eq!(
            secs(&[
                ("cache-control", "max-age=600"),
                ("cache-control", "private")
            ]),
            Some(0)
        );
        assert_eq!(secs(&[]), None);
    }

    #[test]
    fn expires_relative_to_date() {
        let now = SystemTime::now();
        let date = httpdate::fmt_http_date(now);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7200));
        let got = remaining(&h(&[("date", &date), ("expires", &later)]), now).unwrap();
        assert!((7199..=7200).contains(&got.as_secs()), "{got:?}");
        assert_eq!(
            remaining(&h(&[("expires", "0")]), now),
            Some(Duration::ZERO)
        );
        // max-age beats Expires
        let got = remaining(
            &h(&[("expires", &later), ("cache-control", "max-age=5")]),
            now,
        );
        assert_eq!(got, Some(Duration::from_secs(5)));
    }

    #[test]
    fn clamped_to_bounds() {
        let (min, max) = (Duration::from_secs(3600), Duration::from_secs(30 * 86_400));
        assert_eq!(clamp(None, min, max), min);
        assert_eq!(clamp(Some(Duration::ZERO), min, max), min);
        assert_eq!(
            clamp(Some(Duration::from_secs(7200)), min, max).as_secs(),
            7200
        );
        assert_eq!(
            clamp(Some(Duration::from_secs(u32::MAX as u64)), min, max),
            max
        );
    }
}
