//! One image reference in, one decision out: the imgrelay URL it becomes, or why it stays.
//!
//! Pure. The order is SPEC §3's: trim, leave `data:`/`blob:`/`#` and URLs already on
//! `server.public_url` alone, unwrap foreign proxies, make the reference absolute (a
//! protocol-relative one takes the base's scheme, else https; a relative one needs a base),
//! leave `rewrite.skip_hosts` alone, then build the canonical (and, with keys, signed) variant
//! URL with [`crate::request::variant_url`]. It never touches markup; callers own escaping.

use super::unwrap;
use crate::{
    config::{Config, Secret, SvgMode, UnwrapRule},
    fetch::policy::HostPattern,
    request::variant_url,
};
use url::Url;

/// Why a reference was left as it was (the CLI's summary counts these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    Empty,
    /// `data:`, `blob:` or a `#fragment`: nothing to fetch.
    Inline,
    /// Already an imgrelay URL.
    AlreadyProxied,
    /// Relative, and no base to resolve it against.
    Relative,
    /// On a `rewrite.skip_hosts` host.
    SkipHost,
    /// A scheme imgrelay does not fetch (`file:`, `ftp:`, `javascript:` …).
    Scheme,
    /// SVG, which imgrelay refuses unless `transform.svg = "rasterize"`.
    Svg,
    /// Not a URL (no host, bad syntax, not UTF-8).
    Invalid,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Empty => "empty",
            Skip::Inline => "inline data",
            Skip::AlreadyProxied => "already proxied",
            Skip::Relative => "relative without base",
            Skip::SkipHost => "skip_hosts",
            Skip::Scheme => "other scheme",
            Skip::Svg => "svg",
            Skip::Invalid => "invalid URL",
        }
    }
}

/// The URL side of the rewriter: built once from the configuration.
#[derive(Debug, Clone)]
pub struct Resolver {
    public_url: String,
    keys: Vec<Secret>,
    unwrap: Vec<UnwrapRule>,
    skip_hosts: Vec<HostPattern>,
    output: String,
    svg: bool,
}

impl Resolver {
    pub fn new(config: &Config) -> Resolver {
        Resolver {
            public_url: config.server.public_url.trim_end_matches('/').to_string(),
            keys: config.security.signing_keys.clone(),
            unwrap: config.rewrite.unwrap.clone(),
            skip_hosts: config.rewrite.skip_hosts.clone(),
            output: config.rewrite.output.clone(),
            svg: config.transform.svg == SvgMode::Rasterize,
        }
    }

    /// Whether `url` already points at imgrelay (any scheme spelling of `server.public_url`).
    pub fn is_proxied(&self, url: &str) -> bool {
        let (ours, theirs) = (schemeless(&self.public_url), schemeless(url));
        match (ours, theirs) {
            (Some(ours), Some(theirs)) => {
                theirs
                    .get(..ours.len())
                    .is_some_and(|h| h.eq_ignore_ascii_case(ours))
                    && matches!(theirs.as_bytes().get(ours.len()), None | Some(b'/' | b'?'))
            }
            _ => false,
        }
    }

    /// The absolute, unwrapped original that `reference` (already entity-decoded) points at.
    pub fn source(&self, reference: &str, base: Option<&Url>) -> Result<String, Skip> {
        let r = reference.trim_matches(|c: char| c.is_ascii_whitespace());
        if r.is_empty() {
            return Err(Skip::Empty);
        }
        if r.starts_with('#') || has_scheme(r, "data") || has_scheme(r, "blob") {
            return Err(Skip::Inline);
        }
        if self.is_proxied(r) {
            return Err(Skip::AlreadyProxied);
        }
        let unwrapped = unwrap::unwrap(&self.unwrap, r);
        let r = unwrapped.as_deref().map_or(r, str::trim);
        if self.is_proxied(r) {
            return Err(Skip::AlreadyProxied);
        }
        let absolute = if has_scheme(r, "http") || has_scheme(r, "https") {
            r.to_string()
        } else if r.starts_with("//") {
            let scheme = base
                .map(Url::scheme)
                .filter(|s| matches!(*s, "http" | "https"))
                .unwrap_or("https");
            format!("{scheme}:{r}")
        } else if scheme_of(r).is_some() {
            return Err(Skip::Scheme);
        } else {
            let base = base.ok_or(Skip::Relative)?;
            base.join(r).map_err(|_| Skip::Invalid)?.to_string()
        };
        let parsed = Url::parse(&absolute).map_err(|_| Skip::Invalid)?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(Skip::Invalid)?;
        if HostPattern::any(&self.skip_hosts, host) {
            return Err(Skip::SkipHost);
        }
        if self.is_proxied(parsed.as_str()) {
            return Err(Skip::AlreadyProxied);
        }
        if !self.svg && parsed.path().to_ascii_lowercase().ends_with(".svg") {
            return Err(Skip::Svg);
        }
        Ok(absolute)
    }

    /// The imgrelay URL of `source` at `width` (none = the original size).
    pub fn variant(&self, source: &str, width: Option<u32>) -> String {
        variant_url(&self.public_url, &self.keys, source, width, &self.output)
    }

    /// `variant(source(reference))`.
    pub fn rewrite(&self, reference: &str, base: Option<&Url>) -> Result<String, Skip> {
        self.source(reference, base).map(|s| self.variant(&s, None))
    }
}

/// `url` from `//` on, when it is http(s) (any case) or protocol-relative.
pub(super) fn schemeless(url: &str) -> Option<&str> {
    if has_scheme(url, "https") {
        Some(&url[6..])
    } else if has_scheme(url, "http") {
        Some(&url[5..])
    } else {
        url.starts_with("//").then_some(url)
    }
}

fn has_scheme(url: &str, scheme: &str) -> bool {
    scheme_of(url).is_some_and(|s| s.eq_ignore_ascii_case(scheme))
}

/// The scheme of an absolute URL (`[a-zA-Z][a-zA-Z0-9+.-]*:`), if it has one.
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    (first.is_ascii_alphabetic()
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
    .then_some(scheme)
}

/// Whether a link target looks like an image file (lightbox links): the last path segment,
/// cut at image-service suffixes (`!custom`, `@s_2,w_820`), ends in a raster extension. Works
/// on the reference as written (absolute or relative), without parsing it as a URL.
pub fn looks_like_image(reference: &str) -> bool {
    let path = reference.split(['?', '#']).next().unwrap_or_default();
    let after_host = match path.find("//") {
        Some(i) => path[i + 2..].find('/').map_or("", |j| &path[i + 2 + j..]),
        None => path,
    };
    let last = after_host.rsplit('/').next().unwrap_or_default();
    let name = last.split(['!', '@']).next().unwrap_or_default();
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    matches!(
        ext.to_ascii_lowercase().as_str(),
        "jpg" | "jpeg" | "jfif" | "png" | "gif" | "webp" | "avif" | "bmp"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> Resolver {
        let mut c = Config::default();
        c.server.public_url = "https://img.example/".into();
        c.rewrite.skip_hosts = vec!["*.skip.example".parse().unwrap()];
        Resolver::new(&c)
    }

    #[test]
    fn references_table() {
        let r = resolver();
        let base = Url::parse("https://blog.example/2021/post/").unwrap();
        let http_base = Url::parse("http://blog.example/p").unwrap();
        let cases: &[(&str, Option<&Url>, Result<&str, Skip>)] = &[
            (
                "https://h.example/a.jpg",
                None,
                Ok("https://h.example/a.jpg"),
            ),
            (
                "  http://h.example/a.jpg\n",
                None,
                Ok("http://h.example/a.jpg"),
            ),
            ("//h.example/a.jpg", None, Ok("https://h.example/a.jpg")),
            (
                "//h.example/a.jpg",
                Some(&http_base),
                Ok("http://h.example/a.jpg"),
            ),
            ("/file/1/a", None, Err(Skip::Relative)),
            (
                "/file/1/a",
                Some(&base),
                Ok("https://blog.example/file/1/a"),
            ),
            (
                "img/a.png",
                Some(&base),
                Ok("https://blog.example/2021/post/img/a.png"),
            ),
            (
                "../a.png",
                Some(&base),
                Ok("https://blog.example/2021/a.png"),
            ),
            ("data:image/png;base64,AAAA", None, Err(Skip::Inline)),
            ("DATA:image/gif,x", Some(&base), Err(Skip::Inline)),
            ("blob:https://h/1", None, Err(Skip::Inline)),
            ("#top", Some(&base), Err(Skip::Inline)),
            ("", None, Err(Skip::Empty)),
            (
                "https://img.example/?url=x&output=webp",
                None,
                Err(Skip::AlreadyProxied),
            ),
            ("//img.example/?url=x", None, Err(Skip::AlreadyProxied)),
            (
                "https://img.example.evil/a.jpg",
                None,
                Ok("https://img.example.evil/a.jpg"),
            ),
            ("https://a.skip.example/a.jpg", None, Err(Skip::SkipHost)),
            ("file://quadrennial/a.docx", None, Err(Skip::Scheme)),
            ("javascript:alert(1)", Some(&base), Err(Skip::Scheme)),
            ("https://h.example/logo.SVG", None, Err(Skip::Svg)),
            ("http://", None, Err(Skip::Invalid)),
            ("http://exa mple/a.jpg", None, Err(Skip::Invalid)),
            (
                "https://cors.zfour.workers.dev/?http://static.1sapp.com/a.jpeg",
                None,
                Ok("http://static.1sapp.com/a.jpeg"),
            ),
            (
                "https://cors.zfour.workers.dev/?https://img.example/?url=x",
                None,
                Err(Skip::AlreadyProxied),
            ),
        ];
        for (reference, base, want) in cases {
            assert_eq!(
                r.source(reference, *base).as_deref().map_err(|e| *e),
                want.as_ref().map(|s| *s).map_err(|e| *e),
                "{reference}"
            );
        }
    }

    #[test]
    fn variants_carry_the_output_and_decode_back() {
        let r = resolver();
        let src = "http://h.example/a.jpg@s_2,w_820,h_547";
        let v = r.variant(src, Some(640));
        assert!(v.starts_with("https://img.example/?url="), "{v}");
        assert!(v.ends_with("&w=640&output=webp"), "{v}");
        let q = v.split_once('?').unwrap().1;
        let url = form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "url")
            .unwrap()
            .1;
        assert_eq!(url, src);
        assert!(r.is_proxied(&v));
    }

    #[test]
    fn image_links_are_told_by_their_extension() {
        for (url, want) in [
            ("https://upload.wikimedia.org/a/b/Cat.JPG", true),
            ("http://img.jandan.net/news/a.jpg!custom", true),
            ("https://img.ithome.com/a.jpg@s_2,w_820,h_547", true),
            ("https://h/a.png?imageView2/2/w/1120", true),
            ("https://h/post.html", false),
            ("https://h/download.exe", false),
            ("https://h/", false),
            ("https://h.png", false),
            ("/relative/a.gif", true),
            ("not a url", false),
        ] {
            assert_eq!(looks_like_image(url), want, "{url}");
        }
    }
}
