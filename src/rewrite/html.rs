//! HTML: the handlers that find every image reference of SPEC §3 in a span of markup; the
//! edits they record are byte ranges of the input, so nothing is re-serialised.
//!
//! Targets: `img` (`src`, `srcset`, lazy attributes), `picture source`, `video[poster]`,
//! `og:image` / `twitter:image` metas, `link[rel=preload][as=image]`, `a[href]` to an image
//! file, CSS `url(…)` in `style`, and `<noscript>`, whose content the tokenizer sees as text:
//! that text is read again as an HTML fragment. Only an `img` that got a new URL gains
//! attributes (`srcset`/`sizes`, `width`/`height`, `loading`, `decoding`, `referrerpolicy`),
//! and only those it lacks.
//!
//! Who finds the tags: [`super::tags`], a tokenizer that follows `lol_html`'s state machine
//! and allocates nothing per tag, for every span it models; `lol_html` itself ([`lol`], with
//! bounded memory, its output discarded) for the spans it refuses (foreign content, escaped
//! scripts), and in tests as the reference both must agree with. Either way the handlers see
//! the same thing: a tag's position and its attributes as byte ranges, matched the way
//! `lol_html`'s selectors match them.

use super::{
    css, entities,
    resolve::{looks_like_image, Resolved, Skip},
    scan::{self, Targets},
    srcset,
    tags::{tag, Attr, Event, Scanner, Unsupported},
    Collector, Counts, Edits, RewriteError, Rewriter,
};
use std::{borrow::Cow, cell::RefCell, ops::Range};
use url::Url;

pub(super) use lol::Selectors;

const IMAGE_META: &[&str] = &[
    "og:image",
    "og:image:url",
    "og:image:secure_url",
    "twitter:image",
    "twitter:image:src",
];
/// Spans shorter than this are swept for targets before they are tokenized.
const SWEEP_FIRST_BELOW: usize = 512;
/// `<noscript>` inside a `<noscript>` fragment is not HTML anyone writes; stop there.
const MAX_NOSCRIPT_DEPTH: usize = 2;

/// Whether an attribute called `raw` in the source is `name` (lowercase ASCII) as `lol_html`'s
/// `Attribute::name` reads it: ASCII case-insensitively, after the byte-order-mark sniffing
/// its decoder does (a name that starts with a UTF-8 BOM loses it, one that starts with a
/// UTF-16 BOM is read as UTF-16).
fn name_is(raw: &[u8], name: &str) -> bool {
    let utf16 = |rest: &[u8], little: bool| {
        rest.len() == 2 * name.len()
            && rest.chunks_exact(2).zip(name.bytes()).all(|(unit, n)| {
                let (c, zero) = if little {
                    (unit[0], unit[1])
                } else {
                    (unit[1], unit[0])
                };
                zero == 0 && c.eq_ignore_ascii_case(&n)
            })
    };
    match raw {
        [0xEF, 0xBB, 0xBF, rest @ ..] => rest.eq_ignore_ascii_case(name.as_bytes()),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        _ => raw.eq_ignore_ascii_case(name.as_bytes()),
    }
}

/// The state one pass shares between its handlers.
struct Pass<'a> {
    rw: &'a Rewriter,
    doc: &'a [u8],
    base: Option<&'a Url>,
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

    /// Whether an attribute is called `name` as a selector's `[name]` sees it (raw bytes).
    fn has_raw(&self, attrs: &[Attr], name: &str) -> bool {
        attrs
            .iter()
            .any(|a| self.doc[a.name.clone()].eq_ignore_ascii_case(name.as_bytes()))
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

    /// Replaces the value of `a` with `new` (decoded text), escaped for its quotes.
    fn set(&self, a: &Attr, new: &str) {
        self.set_with(&mut self.out.borrow_mut().edits, a, |t, q| {
            entities::escape_into(t, new, q)
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
        let v = self.value(a)?;
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
        let mut url = String::with_capacity(resolver.variant_len(r.encoded));
        resolver.variant_into(r.encoded, None, &mut url);
        Some(url)
    }

    /// A `srcset`-like attribute; whether any candidate was rewritten.
    fn srcset(&self, a: &Attr) -> bool {
        let Some(v) = self.value(a) else { return false };
        let new = srcset::replace_urls(&v, |u| self.rewritten(u));
        new.map(|n| self.set(a, &n)).is_some()
    }

    fn style(&self, a: &Attr) {
        let Some(v) = self.value(a) else { return };
        let mut new = String::with_capacity(v.len() * 2);
        let mut last = 0;
        for r in css::urls(&v) {
            if let Some(url) = self.rewritten(&v[r.clone()]) {
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

    /// A start tag at `at` (its name's [`super::tags::name_hash`] is `hash`): the handlers
    /// whose selectors match it run, if `wanted` has their target.
    fn start_tag(&self, tag: Tag<'_>, wanted: &Wanted<'_>) {
        let Tag {
            at,
            name,
            hash,
            attrs,
            in_picture,
        } = tag;
        let is = |t: u64, exact: &[u8], target| hash == t && wanted.tag(name, exact, target);
        if is(tag::IMG, b"img", Targets::IMG) {
            self.img(at, attrs);
        } else if is(tag::SOURCE, b"source", Targets::SOURCE) && in_picture {
            self.source(attrs);
        } else if is(tag::VIDEO, b"video", Targets::VIDEO) && self.has_raw(attrs, "poster") {
            self.video(attrs);
        } else if is(tag::META, b"meta", Targets::META) && self.has_raw(attrs, "content") {
            self.meta(attrs);
        } else if is(tag::LINK, b"link", Targets::LINK) && self.has_raw(attrs, "href") {
            self.link(attrs);
        } else if is(tag::A, b"a", Targets::A) && self.has_raw(attrs, "href") {
            self.anchor(attrs);
        }
        if self.has_raw(attrs, "style")
            && self.style_may_change(attrs)
            && wanted.has(Targets::STYLE)
        {
            self.styled(attrs);
        }
    }

    /// Whether [`Pass::styled`] could do anything to these attributes: the `style` value holds
    /// a CSS `url(`, or an `&` that may decode to one, or is no UTF-8 (a skip to count). Most
    /// `style`s hold none, and asking `wanted` about them would sweep the span for nothing.
    fn style_may_change(&self, attrs: &[Attr]) -> bool {
        let Some(raw) = self
            .find(attrs, "style")
            .and_then(|a| self.doc.get(a.value.clone()?))
        else {
            return false;
        };
        raw.contains(&b'&') || scan::has_css_url(raw) || std::str::from_utf8(raw).is_err()
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
        let Some(v) = self.value(a).filter(|v| looks_like_image(v)) else {
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
    let wanted = Wanted::new(&doc[span.clone()]);
    // A short span usually holds no target at all (`</p>`, a `<span>`): sweeping it first
    // spares the tokenizer. A long one usually does, and the tokenizer answers most tags.
    if span.len() < SWEEP_FIRST_BELOW && wanted.all().is_empty() {
        return Ok(());
    }
    let mark = out.mark();
    let mut noscript = Vec::new();
    // the scanner's buffers go from span to span
    let mut scanner = std::mem::take(&mut out.scanner);
    let pass = Pass {
        rw,
        doc,
        base,
        out: RefCell::new(&mut *out),
    };
    let restart = |noscript: &mut Vec<Range<usize>>| {
        pass.out.borrow_mut().reset(mark);
        noscript.clear();
    };
    let mut scan = |track_picture, noscript: &mut Vec<Range<usize>>| {
        tokenize(
            &pass,
            &mut scanner,
            span.clone(),
            &wanted,
            track_picture,
            noscript,
        )
    };
    let mut scanned = match rw.lol_html_only {
        true => Err(Unsupported),
        false => scan(false, &mut noscript),
    };
    if scanned == Ok(false) {
        // a `picture`: again, with the element stack
        restart(&mut noscript);
        scanned = scan(true, &mut noscript);
    }
    if scanned != Ok(true) {
        restart(&mut noscript);
        let wanted = wanted.all();
        if !wanted.is_empty() {
            lol::run(&pass, span, wanted, &mut noscript)?;
        }
    }
    out.scanner = scanner;
    if depth < MAX_NOSCRIPT_DEPTH {
        for inner in noscript {
            rewrite_at_depth(rw, doc, inner, base, out, depth + 1)?;
        }
    }
    Ok(())
}

/// The handlers a span needs ([`scan::targets`]), looked at only when the tag at hand does not
/// answer it: a tag named exactly `img` is in the span, so `targets` has [`Targets::IMG`]; an
/// `img` by `lol_html`'s name hash only, or any `style` attribute, needs the span swept.
struct Wanted<'d> {
    span: &'d [u8],
    targets: std::cell::OnceCell<Targets>,
}

impl<'d> Wanted<'d> {
    fn new(span: &'d [u8]) -> Wanted<'d> {
        Wanted {
            span,
            targets: std::cell::OnceCell::new(),
        }
    }

    fn all(&self) -> Targets {
        *self.targets.get_or_init(|| scan::targets(self.span))
    }

    fn has(&self, t: Targets) -> bool {
        self.all().has(t)
    }

    /// Whether a start tag called `name` is a target `t` whose canonical name is `exact`.
    fn tag(&self, name: &[u8], exact: &[u8], t: Targets) -> bool {
        name.eq_ignore_ascii_case(exact) || self.has(t)
    }
}

/// A start tag as [`Event::Start`] reports it.
struct Tag<'a> {
    at: usize,
    name: &'a [u8],
    hash: u64,
    attrs: &'a [Attr],
    in_picture: bool,
}

/// One pass of [`super::tags`] over `span` (see [`Scanner::scan`]: `Ok(false)` asks for a
/// pass that tracks `picture`, `Err` for `lol_html`).
fn tokenize(
    pass: &Pass<'_>,
    scanner: &mut Scanner,
    span: Range<usize>,
    wanted: &Wanted<'_>,
    track_picture: bool,
    noscript: &mut Vec<Range<usize>>,
) -> Result<bool, Unsupported> {
    // the `noscript` content follows its start tag: whether that was named `noscript` exactly
    let mut exact_noscript = false;
    scanner.scan(pass.doc, span, track_picture, |e| match e {
        Event::Start {
            at,
            name,
            hash,
            attrs,
            in_picture,
        } => {
            exact_noscript = hash == tag::NOSCRIPT && name.eq_ignore_ascii_case(b"noscript");
            let tag = Tag {
                at,
                name,
                hash,
                attrs,
                in_picture,
            };
            pass.start_tag(tag, wanted);
        }
        Event::Noscript(r) => {
            if exact_noscript || wanted.has(Targets::NOSCRIPT) {
                noscript.push(r);
            }
        }
    })
}

#[cfg(test)]
mod differential;
mod img;
mod lol;
#[cfg(test)]
mod tests;
