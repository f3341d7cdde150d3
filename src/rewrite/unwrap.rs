//! Foreign proxy wrappers (`rewrite.unwrap`, SPEC §3): a URL such as
//! `https://cors.zfour.workers.dev/?http://static.1sapp.com/a.jpeg` is reduced to the original
//! it wraps before anything else happens, so imgrelay proxies the original and never a proxy.
//!
//! Pure string work, no I/O. A rule's prefix matches whatever the scheme (`http:`, `https:` or
//! protocol-relative) and whatever the case of the scheme and host, since authors copy wrapped
//! URLs in all those spellings. Nested wrappers are unwrapped up to [`MAX_DEPTH`] times.

use super::syntax::schemeless;
use crate::config::{UnwrapMode, UnwrapRule};

/// Wrappers inside wrappers are rare; more than this is a loop or an attack.
pub const MAX_DEPTH: usize = 4;

/// The part of `u` (a URL from `//` on, see [`schemeless`]) after `p` (a prefix from `//` on),
/// comparing case-insensitively.
fn strip_prefix<'u>(u: &'u str, p: &str) -> Option<&'u str> {
    let head = u.get(..p.len())?;
    head.eq_ignore_ascii_case(p).then(|| &u[p.len()..])
}

/// What `rule` makes of `rest`, the part of a URL after its prefix.
fn inner(rule: &UnwrapRule, rest: &str) -> Option<String> {
    let inner = match rule.mode {
        UnwrapMode::Rest => rest.to_string(),
        UnwrapMode::ParamUrl => {
            let query = match rule.prefix.ends_with('?') {
                true => rest,
                false => rest.split_once('?').map_or("", |(_, q)| q),
            };
            let query = query.split_once('#').map_or(query, |(q, _)| q);
            let value = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "url")?
                .1
                .into_owned();
            // wsrv.nl conventions: `ssl:` means https, no scheme means http.
            if let Some(host) = value.strip_prefix("ssl:") {
                format!("https://{}", host.trim_start_matches('/'))
            } else if schemeless(&value).is_some() || value.contains("://") {
                value
            } else {
                format!("http://{value}")
            }
        }
        UnwrapMode::Path => {
            let path = rest.split(['?', '#']).next().unwrap_or_default();
            format!("https://{path}")
        }
    };
    (!inner.trim().is_empty()).then_some(inner)
}

/// `url` with every known wrapper removed (the first matching rule each round).
pub fn unwrap(rules: &[UnwrapRule], url: &str) -> Option<String> {
    Unwrapper::new(rules).apply(url)
}

/// The rules, each with its prefix from `//` on worked out once (a prefix without `//` can
/// match nothing and is dropped): what [`unwrap`] does for every reference of a rewrite.
#[derive(Debug, Clone, Default)]
pub struct Unwrapper {
    rules: Vec<(String, UnwrapRule)>,
}

impl Unwrapper {
    pub fn new(rules: &[UnwrapRule]) -> Unwrapper {
        let rules = rules
            .iter()
            .filter_map(|r| Some((schemeless(&r.prefix)?.to_string(), r.clone())))
            .collect();
        Unwrapper { rules }
    }

    /// See [`unwrap`].
    pub fn apply(&self, url: &str) -> Option<String> {
        let mut current: Option<String> = None;
        for _ in 0..MAX_DEPTH {
            let Some(now) = schemeless(current.as_deref().unwrap_or(url)) else {
                break;
            };
            match self
                .rules
                .iter()
                .find_map(|(p, r)| inner(r, strip_prefix(now, p)?))
            {
                Some(inner) => current = Some(inner),
                None => break,
            }
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rewrite;

    fn defaults(url: &str) -> Option<String> {
        unwrap(&Rewrite::default().unwrap, url)
    }

    #[test]
    fn each_mode_of_the_default_list() {
        let cases = [
            // rest: the remainder verbatim, query and all
            (
                "https://cors.zfour.workers.dev/?http://static.1sapp.com/qupost/img/a.jpeg",
                Some("http://static.1sapp.com/qupost/img/a.jpeg"),
            ),
            (
                "https://cors.zfour.workers.dev/?http://mmbiz.qpic.cn/a/640?wx_fmt=png&x=1",
                Some("http://mmbiz.qpic.cn/a/640?wx_fmt=png&x=1"),
            ),
            // any scheme, any case
            (
                "HTTP://CORS.zfour.Workers.dev/?https://h/a.png",
                Some("https://h/a.png"),
            ),
            (
                "//cors.zfour.workers.dev/?https://h/a.png",
                Some("https://h/a.png"),
            ),
            // param:url, percent-decoded, anywhere in the query
            (
                "https://wsrv.nl/?w=300&url=https%3A%2F%2Fh%2Fa.jpg%3Fx%3D1%26y%3D2",
                Some("https://h/a.jpg?x=1&y=2"),
            ),
            (
                "https://images.weserv.nl/?url=h.example/a.jpg",
                Some("http://h.example/a.jpg"),
            ),
            (
                "https://images.weserv.nl/?url=ssl:h.example/a.jpg",
                Some("https://h.example/a.jpg"),
            ),
            ("https://wsrv.nl/?w=300", None),
            // path: host and path follow, https, the wrapper's query dropped
            (
                "https://i2.wp.com/blog.example/wp-content/a.jpg?resize=640%2C480&ssl=1",
                Some("https://blog.example/wp-content/a.jpg"),
            ),
            ("http://i0.wp.com/h/a.png", Some("https://h/a.png")),
            // nested wrappers
            (
                "https://cors.zfour.workers.dev/?https://i1.wp.com/h/a.png?w=1",
                Some("https://h/a.png"),
            ),
            // not wrapped
            ("https://static.1sapp.com/a.jpeg", None),
            ("https://cors.zfour.workers.dev/", None),
            ("https://cors.zfour.workers.dev/?", None),
            ("/relative/?http://x", None),
        ];
        for (url, want) in cases {
            assert_eq!(defaults(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn a_wrapper_loop_ends() {
        let rules = vec![UnwrapRule {
            prefix: "https://loop.example/".into(),
            mode: UnwrapMode::Path,
        }];
        let url = "https://loop.example/loop.example/loop.example/loop.example/loop.example/x";
        assert_eq!(
            unwrap(&rules, url).as_deref(),
            Some("https://loop.example/x")
        );
    }
}
