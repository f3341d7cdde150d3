//! HTML: `lol_html` streams the markup and its handlers find every image reference of SPEC §3;
//! the edits they record are byte ranges of the input, so nothing is re-serialised.
//!
//! `lol_html` is used as a locator with bounded memory ([`super::HTML_MEMORY_LIMIT`]): its
//! output is discarded, the attribute and tag positions it reports drive the edits. Targets:
//! `img` (`src`, `srcset`, lazy attributes), `picture source`, `video[poster]`, `og:image` /
//! `twitter:image` metas, `link[rel=preload][as=image]`, `a[href]` to an image file, CSS
//! `url(…)` in `style`, and `<noscript>`, whose content `lol_html` sees as text: that text is
//! run through a second pass as an HTML fragment. Only an `img` that got a new URL gains
//! attributes (`srcset`/`sizes`, `width`/`height`, `loading`, `decoding`, `referrerpolicy`),
//! and only those it lacks.

use super::{
    css, entities,
    resolve::looks_like_image,
    scan::{self, Targets},
    srcset, Collector, RewriteError, Rewriter,
};
use lol_html::{
    html_content::{Element, TextChunk},
    ElementContentHandlers, HandlerResult, HtmlRewriter, MemorySettings, Selector, Settings,
};
use std::{
    borrow::Cow,
    cell::{Cell, RefCell},
    ops::Range,
};
use url::Url;

/// Attributes that lazy-loading scripts read the real image from.
const LAZY: &[&str] = &[
    "data-src",
    "data-original",
    "data-lazy-src",
    "data-original-src",
];
const LAZY_SRCSET: &[&str] = &["srcset", "data-srcset"];
const IMAGE_META: &[&str] = &[
    "og:image",
    "og:image:url",
    "og:image:secure_url",
    "twitter:image",
    "twitter:image:src",
];
/// Input is handed to `lol_html` in pieces of this size, as a stream would be.
const CHUNK: usize = 16 << 10;
/// `<noscript>` inside a `<noscript>` fragment is not HTML anyone writes; stop there.
const MAX_NOSCRIPT_DEPTH: usize = 2;

/// The selectors, parsed once per [`Rewriter`].
pub(super) struct Selectors([Selector; 8]);

impl Selectors {
    pub(super) fn new() -> Selectors {
        let p = |s: &str| {
            s.parse::<Selector>()
                .unwrap_or_else(|e| unreachable!("static selector {s}: {e}"))
        };
        Selectors([
            p("img"),
            p("picture source"),
            p("video[poster]"),
            p("meta[content]"),
            p("link[href]"),
            p("a[href]"),
            p("[style]"),
            p("noscript"),
        ])
    }
}

/// One attribute as the source has it: its value's byte range (absolute), the quote around
/// it, and where the attribute ends (after the closing quote).
#[derive(Debug)]
struct Attr {
    name: String,
    value: Option<Range<usize>>,
    quote: Option<u8>,
    end: usize,
}

fn read_attrs(el: &Element<'_, '_>, doc: &[u8], offset: usize) -> Vec<Attr> {
    el.attributes()
        .iter()
        .map(|a| {
            let shift = |r: Range<usize>| r.start + offset..r.end + offset;
            let value = a.value_source_location().map(|l| shift(l.bytes()));
            let quote = value
                .as_ref()
                .and_then(|v| v.start.checked_sub(1))
                .and_then(|i| doc.get(i).copied())
                .filter(|q| matches!(q, b'"' | b'\''));
            let name_end = a.name_source_location().map_or(0, |l| shift(l.bytes()).end);
            let end = match (&value, quote) {
                (Some(v), Some(_)) => v.end + 1,
                (Some(v), None) => v.end,
                (None, _) => name_end,
            };
            Attr {
                name: a.name(),
                value,
                quote,
                end,
            }
        })
        .collect()
}

/// The state one pass shares between its handlers.
struct Pass<'a> {
    rw: &'a Rewriter,
    doc: &'a [u8],
    base: Option<&'a Url>,
    out: RefCell<Collector>,
    noscript: RefCell<Vec<Range<usize>>>,
    open_noscript: Cell<Option<usize>>,
}

impl Pass<'_> {
    /// The entity-decoded value of `a`, if it has one and it is UTF-8.
    fn value(&self, a: &Attr) -> Option<Cow<'_, str>> {
        let raw = self.doc.get(a.value.clone()?)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Some(entities::decode(s)),
            Err(_) => {
                self.out.borrow_mut().skip(super::Skip::Invalid);
                None
            }
        }
    }

    /// Replaces the value of `a` with `new` (decoded text), escaped for its quotes.
    fn set(&self, a: &Attr, new: &str) {
        let Some(range) = a.value.clone() else { return };
        let text = match a.quote {
            Some(q) => entities::escape(new, q as char).into_owned(),
            None => format!("\"{}\"", entities::escape(new, '"')),
        };
        self.out.borrow_mut().edit(range, text);
    }

    /// A single-URL attribute; returns the source it now points at.
    fn url(&self, a: &Attr) -> Option<String> {
        let v = self.value(a)?;
        let resolver = &self.rw.resolver;
        let source = self
            .out
            .borrow_mut()
            .outcome(resolver.source(&v, self.base))?;
        self.set(a, &resolver.variant(&source, None));
        Some(source)
    }

    /// A `srcset`-like attribute; whether any candidate was rewritten.
    fn srcset(&self, a: &Attr) -> bool {
        let Some(v) = self.value(a) else { return false };
        let new = srcset::replace_urls(&v, |u| {
            let r = self.rw.resolver.rewrite(u, self.base);
            self.out.borrow_mut().outcome(r)
        });
        new.map(|n| self.set(a, &n)).is_some()
    }

    fn style(&self, a: &Attr) {
        let Some(v) = self.value(a) else { return };
        let mut new = String::with_capacity(v.len() * 2);
        let mut last = 0;
        for r in css::urls(&v) {
            let rewritten = self.rw.resolver.rewrite(&v[r.clone()], self.base);
            if let Some(url) = self.out.borrow_mut().outcome(rewritten) {
                new.push_str(&v[last..r.start]);
                new.push_str(&url);
                last = r.end;
            }
        }
        if last > 0 {
            new.push_str(&v[last..]);
            self.set(a, &new);
        }
    }

    fn source(&self, el: &Element<'_, '_>, offset: usize) {
        for a in &read_attrs(el, self.doc, offset) {
            match a.name.as_str() {
                "src" | "data-src" => {
                    self.url(a);
                }
                "srcset" | "data-srcset" => {
                    self.srcset(a);
                }
                _ => {}
            }
        }
    }

    /// Runs `f` on the attribute called `name` of `el`, if present.
    fn with_attr(&self, el: &Element<'_, '_>, offset: usize, name: &str, f: impl Fn(&Attr)) {
        if let Some(a) = read_attrs(el, self.doc, offset)
            .iter()
            .find(|a| a.name == name)
        {
            f(a);
        }
    }

    fn noscript_text(&self, t: &TextChunk<'_>, offset: usize) {
        let r = t.source_location().bytes();
        let start = self.open_noscript.get().unwrap_or(r.start + offset);
        if t.last_in_text_node() {
            self.noscript.borrow_mut().push(start..r.end + offset);
            self.open_noscript.set(None);
        } else {
            self.open_noscript.set(Some(start));
        }
    }
}

/// Rewrites `doc[span]` as HTML, recording edits (absolute offsets into `doc`) in `out`.
pub(super) fn rewrite(
    rw: &Rewriter,
    doc: &[u8],
    span: Range<usize>,
    base: Option<&Url>,
    out: &mut Collector,
) -> Result<(), RewriteError> {
    rewrite_at_depth(rw, doc, span, base, out, 0)
}

fn rewrite_at_depth(
    rw: &Rewriter,
    doc: &[u8],
    span: Range<usize>,
    base: Option<&Url>,
    out: &mut Collector,
    depth: usize,
) -> Result<(), RewriteError> {
    let offset = span.start;
    let pass = Pass {
        rw,
        doc,
        base,
        out: RefCell::new(std::mem::take(out)),
        noscript: RefCell::new(Vec::new()),
        open_noscript: Cell::new(None),
    };
    let result = run(&pass, &doc[span], offset);
    *out = pass.out.into_inner();
    result?;
    if depth < MAX_NOSCRIPT_DEPTH {
        for inner in pass.noscript.into_inner() {
            rewrite_at_depth(rw, doc, inner, base, out, depth + 1)?;
        }
    }
    Ok(())
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

fn run(pass: &Pass<'_>, input: &[u8], offset: usize) -> Result<(), RewriteError> {
    let wanted = scan::targets(input);
    if wanted.is_empty() {
        return Ok(());
    }
    let [img, source, video, meta, link, a, style, noscript] = &pass.rw.selectors.0;
    let p = pass;
    let mut settings = Settings::new()
        .with_memory_settings(
            MemorySettings::new().with_max_allowed_memory_usage(super::HTML_MEMORY_LIMIT),
        )
        .with_strict(false);
    let mut add = |t: Targets, handler| {
        if wanted.has(t) {
            settings = std::mem::take(&mut settings).append_element_content_handler(handler);
        }
    };
    add(Targets::IMG, el(img, |e| p.img(e, offset)));
    add(Targets::SOURCE, el(source, |e| p.source(e, offset)));
    add(
        Targets::VIDEO,
        el(video, |e| {
            p.with_attr(e, offset, "poster", |a| {
                p.url(a);
            })
        }),
    );
    add(Targets::META, el(meta, |e| p.meta(e, offset)));
    add(Targets::LINK, el(link, |e| p.link(e, offset)));
    add(Targets::A, el(a, |e| p.anchor(e, offset)));
    add(
        Targets::STYLE,
        el(style, |e| p.with_attr(e, offset, "style", |a| p.style(a))),
    );
    add(
        Targets::NOSCRIPT,
        (
            Cow::Borrowed(noscript),
            ElementContentHandlers::default().text(|t: &mut TextChunk<'_>| -> HandlerResult {
                p.noscript_text(t, offset);
                Ok(())
            }),
        ),
    );
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    let fail = |e: lol_html::errors::RewritingError| RewriteError::Html(e.to_string());
    for chunk in input.chunks(CHUNK) {
        rewriter.write(chunk).map_err(fail)?;
    }
    rewriter.end().map_err(fail)
}

impl Pass<'_> {
    fn meta(&self, el: &Element<'_, '_>, offset: usize) {
        let attrs = read_attrs(el, self.doc, offset);
        let is_image = attrs
            .iter()
            .filter(|a| a.name == "property" || a.name == "name")
            .filter_map(|a| self.value(a))
            .any(|v| IMAGE_META.contains(&v.trim().to_ascii_lowercase().as_str()));
        if let Some(content) = attrs
            .iter()
            .find(|a| a.name == "content")
            .filter(|_| is_image)
        {
            self.url(content);
        }
    }

    fn link(&self, el: &Element<'_, '_>, offset: usize) {
        let attrs = read_attrs(el, self.doc, offset);
        let value = |n: &str| {
            let a = attrs.iter().find(|a| a.name == n)?;
            self.value(a).map(|v| v.to_ascii_lowercase())
        };
        let preload =
            value("rel").is_some_and(|r| r.split_ascii_whitespace().any(|t| t == "preload"));
        if !preload || value("as").as_deref().map(str::trim) != Some("image") {
            return;
        }
        for a in &attrs {
            match a.name.as_str() {
                "href" => {
                    self.url(a);
                }
                "imagesrcset" => {
                    self.srcset(a);
                }
                _ => {}
            }
        }
    }

    /// A link to an image file (a lightbox's full-size picture); links to pages stay.
    fn anchor(&self, el: &Element<'_, '_>, offset: usize) {
        let attrs = read_attrs(el, self.doc, offset);
        let Some(a) = attrs.iter().find(|a| a.name == "href") else {
            return;
        };
        let Some(v) = self.value(a).filter(|v| looks_like_image(v)) else {
            return;
        };
        let resolver = &self.rw.resolver;
        if let Ok(source) = resolver.source(&v, self.base) {
            if looks_like_image(&source) {
                self.out.borrow_mut().stats.rewritten += 1;
                self.set(a, &resolver.variant(&source, None));
            }
        }
    }
}

mod img;
#[cfg(test)]
mod tests;
