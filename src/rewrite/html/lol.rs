//! `lol_html` as the locator of a span: its selectors pick the elements, its attribute source
//! locations become [`Attr`] ranges, and its output is discarded (bounded by
//! [`super::super::HTML_MEMORY_LIMIT`]).
//!
//! The rewriter reads a span this way only when [`super::super::tags`] refuses it (foreign
//! content, escaped scripts); tests read every span this way too, as the reference the
//! tokenizer must agree with byte for byte.

use super::{scan::Targets, Attr, Pass, RewriteError};
use lol_html::{
    html_content::{Element, TextChunk},
    ElementContentHandlers, HandlerResult, HtmlRewriter, MemorySettings, Selector, Settings,
};
use std::{
    borrow::Cow,
    cell::{Cell, RefCell},
    ops::Range,
};

/// Input is handed to `lol_html` in pieces of this size, as a stream would be.
const CHUNK: usize = 16 << 10;

/// The selectors, parsed once per [`super::Rewriter`].
pub(in super::super) struct Selectors([Selector; 8]);

impl Selectors {
    pub(in super::super) fn new() -> Selectors {
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

/// The attributes of `el` as source ranges (`offset` shifts them to document offsets).
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
        })
        .collect()
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

/// Runs the handlers `wanted` asks for over `span`; `<noscript>` contents go to `noscript`.
pub(super) fn run(
    p: &Pass<'_>,
    span: Range<usize>,
    wanted: Targets,
    noscript: &mut Vec<Range<usize>>,
) -> Result<(), RewriteError> {
    let offset = span.start;
    let doc = p.doc;
    let at = |e: &Element<'_, '_>| e.source_location().bytes().start + offset;
    let attrs = |e: &Element<'_, '_>| read_attrs(e, doc, offset);
    let [img, source, video, meta, link, a, style, noscript_sel] = &p.rw.selectors.0;
    let found = RefCell::new(Vec::new());
    let open = Cell::new(None);
    let mut settings = Settings::new()
        .with_memory_settings(
            MemorySettings::new().with_max_allowed_memory_usage(super::super::HTML_MEMORY_LIMIT),
        )
        .with_strict(false);
    let mut add = |t: Targets, handler| {
        if wanted.has(t) {
            settings = std::mem::take(&mut settings).append_element_content_handler(handler);
        }
    };
    add(Targets::IMG, el(img, |e| p.img(at(e), &attrs(e))));
    add(Targets::SOURCE, el(source, |e| p.source(&attrs(e))));
    add(Targets::VIDEO, el(video, |e| p.video(&attrs(e))));
    add(Targets::META, el(meta, |e| p.meta(&attrs(e))));
    add(Targets::LINK, el(link, |e| p.link(&attrs(e))));
    add(Targets::A, el(a, |e| p.anchor(&attrs(e))));
    add(Targets::STYLE, el(style, |e| p.styled(&attrs(e))));
    add(
        Targets::NOSCRIPT,
        (
            Cow::Borrowed(noscript_sel),
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
            }),
        ),
    );
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    let fail = |e: lol_html::errors::RewritingError| RewriteError::Html(e.to_string());
    let result = doc[span]
        .chunks(CHUNK)
        .try_for_each(|chunk| rewriter.write(chunk))
        .and_then(|()| rewriter.end())
        .map_err(fail);
    noscript.append(&mut found.into_inner());
    result
}
