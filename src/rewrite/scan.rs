//! A cheap look ahead of the tag finders: which targets a piece of HTML can possibly hold.
//!
//! Most short HTML spans of a Markdown post (`</p>`, `<span>`, a paragraph of text) hold no
//! image at all, so one `memchr` sweep decides whether they need a pass at all. The sweep also
//! gates the handlers, as it gated `lol_html`'s selectors (whose set it decides when
//! `lol_html` reads a span): a `style` is only a target when the span holds a CSS `url(`, and
//! a tag named like a target only by `lol_html`'s name hash needs the target in the span.
//! It may say yes wrongly (`<abbr` looks like `<a`), and no wrongly only for a `style`
//! attribute spelled in mixed case from its second letter on (`STyle`), which the rewriter
//! has always left alone.

/// Which handlers a piece of HTML may need (a small bit set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Targets(u16);

impl Targets {
    pub const IMG: Targets = Targets(1);
    pub const SOURCE: Targets = Targets(1 << 1);
    pub const VIDEO: Targets = Targets(1 << 2);
    pub const META: Targets = Targets(1 << 3);
    pub const LINK: Targets = Targets(1 << 4);
    pub const A: Targets = Targets(1 << 5);
    pub const STYLE: Targets = Targets(1 << 6);
    pub const NOSCRIPT: Targets = Targets(1 << 7);

    pub fn has(self, t: Targets) -> bool {
        self.0 & t.0 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    fn add(&mut self, t: Targets) {
        self.0 |= t.0;
    }
}

/// Tag names that start a target, and what they need.
const TAGS: &[(&[u8], Targets)] = &[
    (b"img", Targets::IMG),
    (b"source", Targets::SOURCE),
    (b"video", Targets::VIDEO),
    (b"meta", Targets::META),
    (b"link", Targets::LINK),
    (b"a", Targets::A),
    (b"noscript", Targets::NOSCRIPT),
];

/// The targets `html` may hold.
pub fn targets(html: &[u8]) -> Targets {
    let mut t = Targets::default();
    for at in memchr::memchr_iter(b'<', html) {
        let name = &html[at + 1..];
        let first = name.first().map(u8::to_ascii_lowercase);
        if !matches!(first, Some(b'i' | b's' | b'v' | b'm' | b'l' | b'a' | b'n')) {
            continue;
        }
        for &(tag, target) in TAGS {
            let ends = name
                .get(tag.len())
                .is_none_or(|&b| b.is_ascii_whitespace() || b == b'>' || b == b'/');
            if name.len() >= tag.len() && name[..tag.len()].eq_ignore_ascii_case(tag) && ends {
                t.add(target);
            }
        }
    }
    if has_css_url(html)
        && (memchr::memmem::find(html, b"tyle").is_some()
            || memchr::memmem::find(html, b"TYLE").is_some())
    {
        t.add(Targets::STYLE);
    }
    t
}

/// Whether `html` holds a CSS `url(` (any case), or `url&` that an entity such as `&#40;` may
/// turn into one once the attribute value is decoded. A `style` without it has nothing to
/// rewrite, and a `[style]` selector would make `lol_html` lex every tag of the span.
pub fn has_css_url(html: &[u8]) -> bool {
    memchr::memchr2_iter(b'(', b'&', html)
        .any(|at| at >= 3 && html[at - 3..at].eq_ignore_ascii_case(b"url"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_table() {
        let cases: &[(&str, &[Targets])] = &[
            ("</p>", &[]),
            ("<span class=\"x\">text</span>", &[]),
            ("plain text, no tags", &[]),
            ("<img src=x>", &[Targets::IMG]),
            ("<IMG\nsrc=x>", &[Targets::IMG]),
            ("<imgx>", &[]),
            ("<a href=x>", &[Targets::A]),
            ("<a>", &[Targets::A]),
            ("<abbr>", &[]),
            ("<picture><source srcset=x></picture>", &[Targets::SOURCE]),
            ("<video poster=x>", &[Targets::VIDEO]),
            ("<meta property=og:image>", &[Targets::META]),
            ("<link rel=preload>", &[Targets::LINK]),
            ("<noscript>", &[Targets::NOSCRIPT]),
            ("<div STYLE=\"background:URL(x)\">", &[Targets::STYLE]),
            ("<div Style=\"background:url(x)\">", &[Targets::STYLE]),
            ("<div style=\"background:url&#40;x)\">", &[Targets::STYLE]),
            ("<div style=\"color:red\">", &[]),
            ("<p>lifestyle url(x)</p>", &[Targets::STYLE]),
            ("<p>lifestyle</p>", &[]),
            ("<", &[]),
            ("<img", &[Targets::IMG]),
        ];
        for (html, want) in cases {
            let got = targets(html.as_bytes());
            let mut expect = Targets::default();
            for w in *want {
                expect.add(*w);
            }
            assert_eq!(got, expect, "{html}");
        }
    }
}
