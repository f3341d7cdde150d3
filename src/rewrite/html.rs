//! HTML: every span of markup goes through `lol_html`, whose selectors pick the elements of
//! SPEC §3 and whose attribute source locations tell where each value sits in the input. The
//! handlers record edits (byte ranges of the input and their replacements); `lol_html`'s own
//! output is discarded, so nothing is re-serialised.
//!
//! Targets: `img` (`src`, `srcset`, lazy attributes), `picture source`, `video[poster]`,
//! `og:image` / `twitter:image` metas, `link[rel=preload][as=image]`, `a[href]` to an image
//! file, CSS `url(…)` in `style`, and `<noscript>`, whose content the tokenizer sees as text:
//! that text is read again as an HTML fragment. Only an `img` that got a new URL gains
//! attributes (`srcset`/`sizes`, `width`/`height`, `loading`, `decoding`, `referrerpolicy`),
//! and only those it lacks.

use super::{
    css, entities,
    resolve::{Resolved, Skip},
    srcset,
    syntax::looks_like_image,
    Collector, Counts, Edits, RewriteError, Rewriter,
};
use aho_corasick::AhoCorasick;
use lol_html::{
    errors::RewritingError,
    html_content::{Element, TextChunk},
    ElementContentHandlers, HandlerResult, HtmlRewriter, MemorySettings, Selector, Settings,
};
use std::{
    borrow::Cow,
    cell::{Cell, RefCell},
    ops::Range,
};
use url::Url;

const IMAGE_META: &[&str] = &[
    "og:image",
    "og:image:url",
    "og:image:secure_url",
    "twitter:image",
    "twitter:image:src",
];
/// `<noscript>` inside a `<noscript>` fragment is not HTML anyone writes; stop there.
const MAX_NOSCRIPT_DEPTH: usize = 2;
/// Input is handed to `lol_html` in pieces of this size, as a stream would be.
const CHUNK: usize = 16 << 10;

/// One attribute as the source has it: byte ranges of its name and value (document offsets),
/// the quote around the value, and where the attribute ends (after the closing quote).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attr {
    name: Range<usize>,
    value: Option<Range<usize>>,
    quote: Option<u8>,
    end: usize,
}

/// The selectors of SPEC §3, parsed once per [`Rewriter`], and what any element they match
/// must have written in the span: its tag name after `<`, or the `style` attribute's name.
pub(super) struct Selectors {
    each: [Selector; 8],
    needles: AhoCorasick,
}

/// ASCII case-insensitive: `lol_html` compares tag and attribute names that way.
const NEEDLES: [&str; 8] = [
    "<img",
    "<source",
    "<video",
    "<meta",
    "<link",
    "<a",
    "style",
    "<noscript",
];

impl Selectors {
    pub(super) fn new() -> Selectors {
        let p = |s: &str| {
            s.parse::<Selector>()
                .unwrap_or_else(|e| unreachable!("static selector {s}: {e}"))
        };
        let needles = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(NEEDLES)
            .unwrap_or_else(|e| unreachable!("static needles: {e}"));
        Selectors {
            each: [
                p("img"),
                p("picture source"),
                p("video[poster]"),
                p("meta[content]"),
                p("link[href]"),
                p("a[href]"),
                p("[style]"),
                p("noscript"),
            ],
            needles,
        }
    }

    /// Whether any selector could match in `span`: most short spans of a Markdown post
    /// (`</p>`, `<span>`, `<br>`) cannot, and need no `lol_html` pass.
    fn may_match(&self, span: &[u8]) -> bool {
        self.needles.is_match(span)
    }
}

/// Whether an attribute called `raw` in the source is `name` (lowercase ASCII): HTML attribute
/// names are ASCII case-insensitive.
fn name_is(raw: &[u8], name: &str) -> bool {
    raw.eq_ignore_ascii_case(name.as_bytes())
}

/// Whether `s` holds text that ends a Markdown HTML block (see [`block_end_at`]).
fn holds_block_end(s: &[u8]) -> bool {
    (0..s.len()).any(|i| block_end_at(s, i))
}

/// Whether the text that ends a Markdown HTML block begun by a comment, a processing
/// instruction, a CDATA section or one of the raw-text tags (CommonMark's kinds 1, 2, 3 and 5,
/// whose end tags are matched without regard to case) ends at `s[i]`.
fn block_end_at(s: &[u8], i: usize) -> bool {
    const ENDS: [&[u8]; 7] = [
        b"-->",
        b"?>",
        b"]]>",
        b"</pre>",
        b"</script>",
        b"</style>",
        b"</textarea>",
    ];
    s.get(i) == Some(&b'>')
        && ENDS.iter().any(|e| {
            let head = &s[..=i];
            head.len() >= e.len() && head[head.len() - e.len()..].eq_ignore_ascii_case(e)
        })
}

/// The state one pass shares between its handlers.
struct Pass<'a> {
    rw: &'a Rewriter,
    doc: &'a [u8],
    base: Option<&'a Url>,
    /// Whether the span is raw HTML in a Markdown body, where a value that goes on over a line
    /// break or holds the end of an HTML block is left alone (see [`Skip::Wrapped`] and
    /// [`Skip::BlockEnd`]).
    markdown: bool,
    /// Whether the span is the content of a `<noscript>`: a copy of images shown otherwise.
    noscript: bool,
    out: RefCell<&'a mut Collector>,
}

impl Pass<'_> {
    /// Whether `a` is called `name` (see [`name_is`]).
    fn is(&self, a: &Attr, name: &str) -> bool {
        name_is(&self.doc[a.name.clone()], name)
    }

    /// The first attribute called `name`.
    fn find<'t>(&self, attrs: &'t [Attr], name: &str) -> Option<&'t Attr> {
        attrs.iter().find(|a| self.is(a, name))
    }

    /// The entity-decoded value of `a`, if it has one and it is UTF-8.
    fn value(&self, a: &Attr) -> Option<Cow<'_, str>> {
        let raw = self.doc.get(a.value.clone()?)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Some(entities::decode(s)),
            Err(_) => {
                self.out.borrow_mut().counts.skip(Skip::Invalid);
                None
            }
        }
    }

    /// Whether the value of `a`, an image reference, may be written over (see
    /// [`Pass::unwritable`]); a refusal is counted.
    fn writable(&self, a: &Attr) -> bool {
        let Some(why) = a.value.as_ref().and_then(|r| self.unwritable(r)) else {
            return true;
        };
        self.out.borrow_mut().counts.skip(why);
        false
    }

    /// Why the value at `range` may not be written over: in Markdown, when it goes on over a
    /// line break ([`Skip::Wrapped`]) or holds the end of an HTML block ([`Skip::BlockEnd`]).
    fn unwritable(&self, range: &Range<usize>) -> Option<Skip> {
        if !self.markdown {
            return None;
        }
        let raw = &self.doc[range.clone()];
        // the byte after the value too: an unquoted value's `>` may complete the end
        let with_next = &self.doc[range.start..self.doc.len().min(range.end + 1)];
        if raw.iter().any(|&b| b == b'\n' || b == b'\r') {
            Some(Skip::Wrapped)
        } else if holds_block_end(with_next) {
            Some(Skip::BlockEnd)
        } else {
            None
        }
    }

    /// The value of `a` decoded, with where its characters were written, if it has one and it
    /// is UTF-8 (see [`Pass::value`]).
    fn decoded(&self, a: &Attr) -> Option<entities::Decoded<'_>> {
        let raw = self.doc.get(a.value.clone()?)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Some(entities::decode_mapped(s)),
            Err(_) => {
                self.out.borrow_mut().counts.skip(Skip::Invalid);
                None
            }
        }
    }

    /// Replaces the URLs of the value of `a` (`urls`: decoded ranges of `value`, in order, and
    /// their imgrelay URLs); every other character keeps its spelling.
    fn set_urls(&self, a: &Attr, value: &entities::Decoded<'_>, urls: &[(Range<usize>, String)]) {
        let Some(range) = a.value.clone() else { return };
        let raw = &self.doc[range];
        // the raw value is UTF-8: `decoded` read it
        let raw = std::str::from_utf8(raw).unwrap_or_default();
        self.set_with(&mut self.out.borrow_mut().edits, a, |t, q| {
            let mut last = 0;
            for (r, url) in urls {
                let r = value.raw_range(r.clone());
                // an unquoted value may hold the quote it is now written in
                let kept = &raw[last..r.start];
                if a.quote.is_some() {
                    t.push_str(kept);
                } else {
                    t.push_str(&kept.replace('"', "&quot;"));
                }
                if value.open_reference_ends_at(r.start) {
                    t.push(';');
                }
                entities::escape_into(t, url, q);
                last = r.end;
            }
            let rest = &raw[last..];
            if a.quote.is_some() {
                t.push_str(rest);
            } else {
                t.push_str(&rest.replace('"', "&quot;"));
            }
        });
    }

    /// Replaces the value of `a` with what `write` appends, escaped for the quote it is
    /// given; an unquoted value is quoted with `"`.
    fn set_with(&self, edits: &mut Edits, a: &Attr, write: impl FnOnce(&mut String, char)) {
        let Some(range) = a.value.clone() else { return };
        edits.edit_with(range, |t| match a.quote {
            Some(q) => write(t, q as char),
            None => {
                t.push('"');
                write(t, '"');
                t.push('"');
            }
        });
    }

    /// A single-URL attribute; returns the source it now points at, percent-encoded as the
    /// `url=` parameter ([`super::Resolver::encode`]) for more variants of it.
    fn url(&self, a: &Attr) -> Option<String> {
        let v = self.value(a).filter(|_| self.writable(a))?;
        self.replace_with(a, &v, |counts, r| counts.outcome(r))
    }

    /// Resolves `reference` through the memo; when `keep` takes the answer (counting it as it
    /// sees fit), writes its imgrelay URL over the value of `a` and returns its `url=` encoding.
    fn replace_with(
        &self,
        a: &Attr,
        reference: &str,
        keep: impl for<'m> FnOnce(&mut Counts, Result<Resolved<'m>, Skip>) -> Option<Resolved<'m>>,
    ) -> Option<String> {
        let resolver = &self.rw.resolver;
        let mut out = self.out.borrow_mut();
        let Collector {
            edits,
            counts,
            memo,
            ..
        } = &mut **out;
        let r = keep(counts, memo.resolve(resolver, reference, self.base))?;
        self.set_with(edits, a, |t, q| {
            resolver.variant_escaped_into(r.encoded, None, q, t)
        });
        Some(r.encoded.to_string())
    }

    /// The imgrelay URL of `reference` (unescaped), counted.
    fn rewritten(&self, reference: &str) -> Option<String> {
        let resolver = &self.rw.resolver;
        let mut out = self.out.borrow_mut();
        let Collector { counts, memo, .. } = &mut **out;
        let r = counts.outcome(memo.resolve(resolver, reference, self.base))?;
        let mut url = String::new();
        resolver.variant_into(r.encoded, None, &mut url);
        Some(url)
    }

    /// A `srcset`-like attribute; whether any candidate was rewritten.
    fn srcset(&self, a: &Attr) -> bool {
        let Some(v) = self.decoded(a).filter(|_| self.writable(a)) else {
            return false;
        };
        let urls: Vec<_> = srcset::parse(&v.text)
            .into_iter()
            .filter_map(|c| Some((c.url.clone(), self.rewritten(&v.text[c.url])?)))
            .collect();
        if urls.is_empty() {
            return false;
        }
        self.set_urls(a, &v, &urls);
        true
    }

    fn style(&self, a: &Attr) {
        let Some(v) = self.decoded(a) else { return };
        let found = css::urls(&v.text);
        if found.is_empty() || !self.writable(a) {
            return;
        }
        let urls: Vec<_> = found
            .into_iter()
            .filter_map(|r| Some((r.clone(), self.rewritten(&v.text[r])?)))
            .collect();
        if !urls.is_empty() {
            self.set_urls(a, &v, &urls);
        }
    }

    fn source(&self, attrs: &[Attr]) {
        for a in attrs {
            if self.is(a, "src") || self.is(a, "data-src") {
                self.url(a);
            } else if self.is(a, "srcset") || self.is(a, "data-srcset") {
                self.srcset(a);
            }
        }
    }

    fn video(&self, attrs: &[Attr]) {
        if let Some(a) = self.find(attrs, "poster") {
            self.url(a);
        }
    }

    fn styled(&self, attrs: &[Attr]) {
        if let Some(a) = self.find(attrs, "style") {
            self.style(a);
        }
    }

    fn meta(&self, attrs: &[Attr]) {
        let is_image = attrs
            .iter()
            .filter(|a| self.is(a, "property") || self.is(a, "name"))
            .filter_map(|a| self.value(a))
            .any(|v| IMAGE_META.contains(&v.trim().to_ascii_lowercase().as_str()));
        if let Some(content) = self.find(attrs, "content").filter(|_| is_image) {
            self.url(content);
        }
    }

    fn link(&self, attrs: &[Attr]) {
        let value = |n: &str| {
            let a = self.find(attrs, n)?;
            self.value(a).map(|v| v.to_ascii_lowercase())
        };
        let preload =
            value("rel").is_some_and(|r| r.split_ascii_whitespace().any(|t| t == "preload"));
        if !preload || value("as").as_deref().map(str::trim) != Some("image") {
            return;
        }
        for a in attrs {
            if self.is(a, "href") {
                self.url(a);
            } else if self.is(a, "imagesrcset") {
                self.srcset(a);
            }
        }
    }

    /// A link to an image file (a lightbox's full-size picture); links to pages stay.
    fn anchor(&self, attrs: &[Attr]) {
        let Some(a) = self.find(attrs, "href") else {
            return;
        };
        let Some(v) = self
            .value(a)
            .filter(|v| looks_like_image(v) && self.writable(a))
        else {
            return;
        };
        // a link to a page is no image reference: neither rewritten nor counted as skipped
        self.replace_with(a, &v, |counts, r| {
            let r = r.ok().filter(|r| looks_like_image(r.source))?;
            counts.rewritten += 1;
            Some(r)
        });
    }
}

/// Rewrites `doc[span]` as HTML, recording edits (document offsets) in `out`. `markdown`
/// says the span is raw HTML in a Markdown body (see [`Pass::markdown`]).
pub(super) fn rewrite(
    rw: &Rewriter,
    doc: &[u8],
    span: Range<usize>,
    markdown: bool,
    base: Option<&Url>,
    out: &mut Collector,
) -> Result<(), RewriteError> {
    rewrite_at_depth(rw, doc, span, markdown, base, out, 0)
}

fn rewrite_at_depth(
    rw: &Rewriter,
    doc: &[u8],
    span: Range<usize>,
    markdown: bool,
    base: Option<&Url>,
    out: &mut Collector,
    depth: usize,
) -> Result<(), RewriteError> {
    if !rw.selectors.may_match(&doc[span.clone()]) {
        return Ok(());
    }
    let pass = Pass {
        rw,
        doc,
        base,
        markdown,
        noscript: depth > 0,
        out: RefCell::new(&mut *out),
    };
    let noscript = run(&pass, span)?;
    if depth < MAX_NOSCRIPT_DEPTH {
        for inner in noscript {
            rewrite_at_depth(rw, doc, inner, markdown, base, out, depth + 1)?;
        }
    }
    Ok(())
}

/// The attributes of `el` as source ranges (`offset` shifts them to document offsets), into
/// `into` (cleared first).
fn read_attrs(el: &Element<'_, '_>, doc: &[u8], offset: usize, into: &mut Vec<Attr>) {
    into.clear();
    into.extend(el.attributes().iter().map(|a| {
        let shift = |r: Range<usize>| r.start + offset..r.end + offset;
        let value = a.value_source_location().map(|l| shift(l.bytes()));
        let quote = value
            .as_ref()
            .and_then(|v| v.start.checked_sub(1))
            .and_then(|i| doc.get(i).copied())
            .filter(|q| matches!(q, b'"' | b'\''));
        let name = a.name_source_location().map_or(0..0, |l| shift(l.bytes()));
        let end = match (&value, quote) {
            (Some(v), Some(_)) => v.end + 1,
            (Some(v), None) => v.end,
            (None, _) => name.end,
        };
        Attr {
            name,
            value,
            quote,
            end,
        }
    }));
}

/// An element handler that cannot fail, for `sel`.
fn el<'h, 's>(
    sel: &'s Selector,
    f: impl Fn(&Element<'_, '_>) + 'h,
) -> (Cow<'s, Selector>, ElementContentHandlers<'h>) {
    let handlers = ElementContentHandlers::default().element(
        move |e: &mut Element<'_, '_>| -> HandlerResult {
            f(e);
            Ok(())
        },
    );
    (Cow::Borrowed(sel), handlers)
}

/// One `lol_html` pass over `span` with every handler; returns the `<noscript>` contents.
fn run(p: &Pass<'_>, span: Range<usize>) -> Result<Vec<Range<usize>>, RewriteError> {
    let offset = span.start;
    let doc = p.doc;
    let at = |e: &Element<'_, '_>| e.source_location().bytes().start + offset;
    // one buffer for the attributes of every element of the pass
    let scratch = RefCell::new(Vec::new());
    let with_attrs = |e: &Element<'_, '_>, f: &dyn Fn(&[Attr])| {
        let mut attrs = scratch.take();
        read_attrs(e, doc, offset, &mut attrs);
        f(&attrs);
        scratch.replace(attrs);
    };
    let [img, source, video, meta, link, a, style, noscript] = &p.rw.selectors.each;
    let found = RefCell::new(Vec::new());
    let open = Cell::new(None);
    let noscript_text =
        ElementContentHandlers::default().text(|t: &mut TextChunk<'_>| -> HandlerResult {
            let r = t.source_location().bytes();
            let start = open.get().unwrap_or(r.start + offset);
            if t.last_in_text_node() {
                found.borrow_mut().push(start..r.end + offset);
                open.set(None);
            } else {
                open.set(Some(start));
            }
            Ok(())
        });
    let settings = Settings::new()
        .append_element_content_handler(el(img, |e| with_attrs(e, &|a| p.img(at(e), a))))
        .append_element_content_handler(el(source, |e| with_attrs(e, &|a| p.source(a))))
        .append_element_content_handler(el(video, |e| with_attrs(e, &|a| p.video(a))))
        .append_element_content_handler(el(meta, |e| with_attrs(e, &|a| p.meta(a))))
        .append_element_content_handler(el(link, |e| with_attrs(e, &|a| p.link(a))))
        .append_element_content_handler(el(a, |e| with_attrs(e, &|x| p.anchor(x))))
        .append_element_content_handler(el(style, |e| with_attrs(e, &|a| p.styled(a))))
        .append_element_content_handler((Cow::Borrowed(noscript), noscript_text))
        .with_memory_settings(
            MemorySettings::new().with_max_allowed_memory_usage(super::HTML_MEMORY_LIMIT),
        )
        .with_strict(false);
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    let fail = |e| match e {
        RewritingError::MemoryLimitExceeded(_) => {
            RewriteError::TooLarge("a tag is larger than the rewriter's memory limit")
        }
        e => RewriteError::Html(e.to_string()),
    };
    doc[span]
        .chunks(CHUNK)
        .try_for_each(|chunk| rewriter.write(chunk))
        .and_then(|()| rewriter.end())
        .map_err(fail)?;
    Ok(found.take())
}

mod img;
#[cfg(test)]
mod tests;
