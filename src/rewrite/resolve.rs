//! One image reference in, one decision out: the imgrelay URL it becomes, or why it stays.
//!
//! Pure. The order is SPEC §3's: trim, leave `data:`/`blob:`/`#` and URLs already on
//! `server.public_url` alone, unwrap foreign proxies, make the reference absolute (a
//! protocol-relative one takes the base's scheme, else https; a relative one needs a base),
//! leave `rewrite.skip_hosts` alone, then build the canonical (and, with keys, signed) variant
//! URL that [`crate::request::variant_url`] builds. It never touches markup; callers own
//! escaping.
//!
//! It runs for every reference and every `srcset` width, so the common case skips work that
//! cannot change the answer: an `http(s)://` URL whose host and path `url` would keep as
//! written is not parsed (`plain_http`; anything else is), and a source is percent-encoded
//! once for all its widths ([`Resolver::encode`], [`Resolver::variant_into`]) with the
//! constant parts of the URL prepared at construction. Tests hold both to `url` and
//! `variant_url` on tables of inputs.
//!
//! `memo` remembers a document's resolved references; [`super::syntax`] reads URL spellings
//! (schemes, plain `http(s)` URLs, image-file links) without a parser.

mod memo;

use super::syntax::{has_scheme, plain_http, scheme_of, schemeless};
pub use memo::{Memo, Resolved};

use super::unwrap;
use crate::{
    config::{Config, HostPattern, Secret, SvgMode},
    request::write_transform_url,
    transform::{Output, Transform},
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
    /// A raw-HTML value in Markdown that goes on over a line break. Written on one line, it
    /// would move where Markdown's blocks begin and end (a tag complete on its first line
    /// starts an HTML block that takes in the lines after it); inside a blockquote or list,
    /// its lines also carry the container's prefix, which is not part of the value.
    Wrapped,
    /// A raw-HTML value in Markdown that holds, or with the `>` after it makes, the text that
    /// ends an HTML block begun by a comment, `<?`, `<![CDATA[` or `<pre>`/`<script>`/`<style>`/
    /// `<textarea>` (`-->`, `?>`, `]]>`, `</pre>` …). An HTML parser may read the same bytes as
    /// a value where Markdown reads the block's end; the imgrelay URL would take that end away,
    /// and the block would go on into the lines after it.
    BlockEnd,
    /// A Markdown reference definition that an image uses and a link uses too: written over,
    /// the link would point at the image proxy.
    LinkedDefinition,
}

impl Skip {
    /// Every reason, in declaration order (`ALL[why as usize] == why`).
    pub const ALL: [Skip; 11] = [
        Skip::Empty,
        Skip::Inline,
        Skip::AlreadyProxied,
        Skip::Relative,
        Skip::SkipHost,
        Skip::Scheme,
        Skip::Svg,
        Skip::Invalid,
        Skip::Wrapped,
        Skip::BlockEnd,
        Skip::LinkedDefinition,
    ];

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
            Skip::Wrapped => "Markdown raw HTML value across lines",
            Skip::BlockEnd => "Markdown raw HTML value ending an HTML block",
            Skip::LinkedDefinition => "Markdown reference definition a link uses too",
        }
    }
}

/// The URL side of the rewriter: built once from the configuration.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// `public_url` from `//` on, and its authority (lowercase): what a proxied URL starts with.
    ours: Option<String>,
    our_authority: String,
    keys: Vec<Secret>,
    unwrap: unwrap::Unwrapper,
    skip_hosts: Vec<HostPattern>,
    public_url: String,
    /// `rewrite.output`, the format of every URL written.
    output: Output,
    /// `rewrite.thumbnail`: the transform of card images, if set.
    thumbnail: Option<Transform>,
    svg: bool,
}

impl Resolver {
    pub fn new(config: &Config) -> Resolver {
        let public_url = config.server.public_url.trim_end_matches('/').to_string();
        let ours = schemeless(&public_url).map(str::to_string);
        let our_authority = ours.as_deref().map_or("", |o| {
            let o = &o[2..];
            &o[..o.find(['/', '?']).unwrap_or(o.len())]
        });
        Resolver {
            our_authority: our_authority.to_ascii_lowercase(),
            ours,
            keys: config.security.signing_keys.clone(),
            unwrap: unwrap::Unwrapper::new(&config.rewrite.unwrap),
            skip_hosts: config.rewrite.skip_hosts.clone(),
            public_url,
            output: config.rewrite.output,
            // Validated at load; a configuration built in code that fails it writes no cards.
            thumbnail: config
                .rewrite
                .thumbnail_transform(config.limits.max_output_px)
                .ok()
                .flatten(),
            svg: config.transform.svg == SvgMode::Rasterize,
        }
    }

    /// Whether `url` already points at imgrelay (any scheme spelling of `server.public_url`).
    pub fn is_proxied(&self, url: &str) -> bool {
        let (ours, theirs) = (self.ours.as_deref(), schemeless(url));
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

    /// The source an imgrelay URL (one [`Resolver::is_proxied`] accepts) serves, as
    /// [`Resolver::encode`] writes it; `None` for another URL or one without `url=`.
    pub fn proxied_source(&self, url: &str) -> Option<String> {
        let url = url.trim_matches(|c: char| c <= ' ');
        if !self.is_proxied(url) {
            return None;
        }
        let (_, query) = url.split_once('?')?;
        let (_, source) = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "url")?;
        Some(self.encode(&source)).filter(|s| !s.is_empty())
    }

    /// The absolute, unwrapped original that `reference` (already entity-decoded) points at.
    pub fn source(&self, reference: &str, base: Option<&Url>) -> Result<String, Skip> {
        let mut out = String::new();
        self.source_into(reference, base, &mut out).map(|()| out)
    }

    /// [`Resolver::source`] appended to `out` (which is left as it was on a skip).
    pub fn source_into(
        &self,
        reference: &str,
        base: Option<&Url>,
        out: &mut String,
    ) -> Result<(), Skip> {
        // A browser's URL parser strips leading and trailing C0 controls and spaces (not only
        // whitespace: `&#x1;https://…` loads `https://…`), and drops every tab and line break
        // inside the URL.
        let r = reference.trim_matches(|c: char| c <= ' ');
        let unbroken;
        let r = if r.contains(['\t', '\n', '\r']) {
            unbroken = r.replace(['\t', '\n', '\r'], "");
            unbroken.as_str()
        } else {
            r
        };
        if r.is_empty() {
            return Err(Skip::Empty);
        }
        if r.starts_with('#') || has_scheme(r, "data") || has_scheme(r, "blob") {
            return Err(Skip::Inline);
        }
        if self.is_proxied(r) {
            return Err(Skip::AlreadyProxied);
        }
        let unwrapped = self.unwrap.apply(r);
        let r = match unwrapped.as_deref() {
            Some(inner) if self.is_proxied(inner.trim()) => return Err(Skip::AlreadyProxied),
            Some(inner) => inner.trim(),
            None => r,
        };
        let start = out.len();
        if has_scheme(r, "http") || has_scheme(r, "https") {
            out.push_str(r);
        } else if r.starts_with("//") {
            let scheme = base
                .map(Url::scheme)
                .filter(|s| matches!(*s, "http" | "https"))
                .unwrap_or("https");
            out.push_str(scheme);
            out.push(':');
            out.push_str(r);
        } else if scheme_of(r).is_some() {
            return Err(Skip::Scheme);
        } else {
            let base = base.ok_or(Skip::Relative)?;
            out.push_str(base.join(r).map_err(|_| Skip::Invalid)?.as_str());
        }
        let checked = self.check(&out[start..]);
        if checked.is_err() {
            out.truncate(start);
        }
        checked
    }

    /// The checks an absolute URL passes before imgrelay proxies it: a host, not on
    /// `skip_hosts`, not imgrelay itself, not an SVG unless SVGs are rasterized.
    fn check(&self, absolute: &str) -> Result<(), Skip> {
        // A host equal to ours needs the parsed URL to tell whether it is proxied.
        let plain = plain_http(absolute).filter(|(host, _)| *host != self.our_authority);
        let parsed;
        let (host, path, proxied) = match plain {
            Some((host, path)) => (host, path, false),
            None => {
                parsed = Url::parse(absolute).map_err(|_| Skip::Invalid)?;
                let host = parsed
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or(Skip::Invalid)?;
                (host, parsed.path(), self.is_proxied(parsed.as_str()))
            }
        };
        if HostPattern::any(&self.skip_hosts, host) {
            return Err(Skip::SkipHost);
        }
        if proxied {
            return Err(Skip::AlreadyProxied);
        }
        let svg =
            path.len() >= 4 && path.as_bytes()[path.len() - 4..].eq_ignore_ascii_case(b".svg");
        if !self.svg && svg {
            return Err(Skip::Svg);
        }
        Ok(())
    }

    /// The imgrelay URL of `source` at `width` (none = the original size).
    #[cfg(test)]
    pub(crate) fn variant(&self, source: &str, width: Option<u32>) -> String {
        let mut url = String::new();
        self.variant_into(&self.encode(source), width, &mut url);
        url
    }

    /// `source` percent-encoded as the `url=` parameter (`form_urlencoded`), once for all
    /// its variants ([`Resolver::variant_into`]).
    pub fn encode(&self, source: &str) -> String {
        let mut out = String::with_capacity(source.len() + source.len() / 2);
        self.encode_into(source, &mut out);
        out
    }

    /// [`Resolver::encode`] appended to `out`.
    pub fn encode_into(&self, source: &str, out: &mut String) {
        out.extend(form_urlencoded::byte_serialize(source.as_bytes()));
    }

    /// Appends the imgrelay URL of the source that [`Resolver::encode`] made `encoded` to
    /// `out`, at `width` (none = the original size): [`crate::request::transform_url`]'s URL.
    pub fn variant_into(&self, encoded: &str, width: Option<u32>, out: &mut String) {
        let t = Transform {
            w: width,
            output: self.output,
            ..Transform::default()
        };
        write_transform_url(out, &self.public_url, &self.keys, encoded, &t);
    }

    /// Whether `rewrite.thumbnail` is set, so card keys get their own transform.
    pub fn has_thumbnail(&self) -> bool {
        self.thumbnail.is_some()
    }

    /// Appends the imgrelay URL of a card image (`rewrite.thumbnail`; without it, the
    /// original size, as [`Resolver::variant_into`]).
    pub fn thumbnail_into(&self, encoded: &str, out: &mut String) {
        match &self.thumbnail {
            Some(t) => write_transform_url(out, &self.public_url, &self.keys, encoded, t),
            None => self.variant_into(encoded, None, out),
        }
    }

    /// [`Resolver::variant_into`] escaped for an attribute value quoted with `quote`.
    pub fn variant_escaped_into(
        &self,
        encoded: &str,
        width: Option<u32>,
        quote: char,
        out: &mut String,
    ) {
        let mut raw = String::with_capacity(self.public_url.len() + encoded.len() + 64);
        self.variant_into(encoded, width, &mut raw);
        super::entities::escape_into(out, &raw, quote);
    }
}

/// Appends `n` in decimal.
pub(super) fn push_u32(out: &mut String, n: u32) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn resolver() -> Resolver {
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
            (
                "https://h.example/a\n\tb.jpg",
                None,
                Ok("https://h.example/ab.jpg"),
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
            ("\u{1}\u{b} \u{1f}", None, Err(Skip::Empty)),
            (
                "\u{1}https://h.example/a.jpg\u{0}",
                None,
                Ok("https://h.example/a.jpg"),
            ),
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
    fn encoding_is_form_urlencoded() {
        let r = resolver();
        let all: String = (0..=0x7fu8)
            .map(char::from)
            .chain("é图 \u{1f600}".chars())
            .collect();
        for s in [all.as_str(), "", "https://h/a b.jpg?x=1&y=*-._~"] {
            let want: String = form_urlencoded::byte_serialize(s.as_bytes()).collect();
            assert_eq!(r.encode(s), want);
        }
    }

    #[test]
    fn variants_are_what_transform_url_builds() {
        let key = Secret("imgrelay-test-key-0123456789abcdef".into());
        for public in [
            "https://img.example/",
            "http://127.0.0.1:8080",
            "https://h/r&q'/",
        ] {
            for output in ["", "auto", "webp", "jpeg"] {
                for keys in [Vec::new(), vec![key.clone()]] {
                    let mut c = Config::default();
                    c.server.public_url = public.into();
                    c.rewrite.output = output.parse().unwrap();
                    c.security.signing_keys = keys.clone();
                    let r = Resolver::new(&c);
                    for source in ["https://h/a.jpg?x=1&y=2", "http://h/\u{56fe} a.png@s_2,w_8"] {
                        for width in [None, Some(640), Some(u32::MAX)] {
                            let t = Transform {
                                w: width,
                                output: c.rewrite.output,
                                ..Transform::default()
                            };
                            let want = crate::request::transform_url(public, &keys, source, &t);
                            assert_eq!(r.variant(source, width), want);
                            for q in ['"', '\''] {
                                let mut escaped = String::from("x");
                                r.variant_escaped_into(&r.encode(source), width, q, &mut escaped);
                                let want = super::super::entities::escape(&want, q);
                                assert_eq!(escaped, format!("x{want}"), "{public} {q}");
                            }
                        }
                    }
                }
            }
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
}
