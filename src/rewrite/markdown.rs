//! Markdown posts: front matter first, then the body through pulldown-cmark's offset iterator.
//!
//! Raw HTML (HTML blocks and inline tags) goes through [`super::html`] span by span, so an
//! unclosed `<!--` or `<textarea>` written in prose or code cannot swallow the rest of the
//! post the way it would if the whole body were fed to an HTML parser. HTML blocks with only
//! blank lines between them are one span: a browser reads them as one stream too, and a
//! Hexo post's body is mostly such a run. In Markdown text only
//! image syntax is touched: the destination of `![alt](url "title")`, and the destination of
//! a reference definition that only images use (one a link also uses is left, and counted).
//! Code spans, fenced and indented code, links and text are never edited.
//!
//! A destination is read as the renderer writes it into the page: percent-encoded where
//! CommonMark's reference renderer encodes (a `\` becomes `%5C`, which a URL parser would
//! otherwise read as `/`), so the URL proxied is the URL the page would have loaded.
//!
//! pulldown-cmark 0.13 ends an HTML block begun by `<pre>`, `<script>`, `<style>` or
//! `<textarea>` only at the end tag in lowercase, where CommonMark ignores case; the parser is
//! given a copy of the body with those end tags in lowercase (same length, so the same
//! offsets) until a release matches them without regard to case.

use super::{
    front_matter::{self, FrontMatter},
    html, loading, Collector, RewriteError, Rewriter, Skip,
};
use aho_corasick::AhoCorasick;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};
use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
    ops::Range,
    sync::OnceLock,
};
use url::Url;

/// The Markdown extensions a post is parsed with (those that change where HTML and images are).
const OPTIONS: Options = Options::ENABLE_TABLES
    .union(Options::ENABLE_STRIKETHROUGH)
    .union(Options::ENABLE_TASKLISTS)
    .union(Options::ENABLE_FOOTNOTES);

/// Rewrites the post `doc`, whose front matter (if any) is `fm`. A Markdown post is text:
/// its front matter and body must be UTF-8 (an HTML document need not be).
pub(super) fn rewrite(
    rw: &Rewriter,
    doc: &[u8],
    fm: Option<FrontMatter>,
    base: Option<&Url>,
    out: &mut Collector,
) -> Result<(), RewriteError> {
    let text = simdutf8::basic::from_utf8(doc).map_err(|_| RewriteError::NotUtf8)?;
    let body_at = fm.as_ref().map_or(0, |f| f.body);
    let own = match &fm {
        Some(fm) => front_matter::rewrite(rw, &text[..body_at], fm, base, out),
        None => None,
    };
    let base = base.or(own.as_ref());
    let body = &text[body_at..];
    let shift = |r: Range<usize>| r.start + body_at..r.end + body_at;

    let parsed = block_ends_in_lowercase(body);
    let mut events = Parser::new_ext(&parsed, OPTIONS).into_offset_iter();
    // the labels of reference images (with where each image is), and of reference links
    let mut labels: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut links = BTreeSet::new();
    // the run of HTML blocks not yet rewritten (body offsets)
    let mut run: Option<Range<usize>> = None;
    // Inline images whose alt text is being read: the image's range, its destination, and
    // where the events of its alt text end so far. The `](` after them starts the
    // destination; a `](` inside a code span or raw HTML of the alt text does not.
    let mut images: Vec<(Range<usize>, pulldown_cmark::CowStr<'_>, usize)> = Vec::new();
    for (event, range) in events.by_ref() {
        if let Some(open) = images.last_mut() {
            if !(matches!(event, Event::End(TagEnd::Image)) && open.0 == range) {
                open.2 = open.2.max(range.end);
            }
        }
        match event {
            Event::Start(Tag::HtmlBlock) => {
                run = match run {
                    Some(r)
                        if body.as_bytes()[r.end..range.start]
                            .iter()
                            .all(u8::is_ascii_whitespace) =>
                    {
                        Some(r.start..range.end)
                    }
                    Some(r) => {
                        html::rewrite(rw, doc, shift(r), true, base, out)?;
                        Some(range)
                    }
                    None => Some(range),
                };
            }
            Event::InlineHtml(_) => {
                html::rewrite(rw, doc, shift(range), true, base, out)?;
            }
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                id,
                ..
            }) => match link_type {
                LinkType::Inline => images.push((range.clone(), dest_url, range.start + 2)),
                LinkType::Reference | LinkType::Collapsed | LinkType::Shortcut => {
                    labels
                        .entry(id.into_string())
                        .or_default()
                        .push(shift(range).start);
                }
                _ => {}
            },
            Event::Start(Tag::Link {
                link_type: LinkType::Reference | LinkType::Collapsed | LinkType::Shortcut,
                id,
                ..
            }) => {
                links.insert(id.into_string());
            }
            Event::End(TagEnd::Image) => {
                let Some(open) = images.last() else { continue };
                if open.0 != range {
                    continue; // a reference image ends
                }
                let Some((range, dest_url, alt_end)) = images.pop() else {
                    continue;
                };
                let image = &body[range.clone()];
                let Some(dest) = inline_destination(image, alt_end - range.start) else {
                    continue;
                };
                let dest = shift(dest.start + range.start..dest.end + range.start);
                let done = rewrite_destination(rw, out, &text[dest.clone()], dest, &dest_url, base);
                if matches!(done, Ok(()) | Err(Skip::AlreadyProxied)) {
                    out.imgs.push(loading::Img {
                        at: shift(range).start,
                        content: true,
                        ..loading::Img::default()
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(r) = run {
        html::rewrite(rw, doc, shift(r), true, base, out)?;
    }
    // Definitions are told apart by where they are: `defs.get` matches labels as the
    // renderer does (CommonMark's case fold, whitespace collapsed by the parser).
    let defs = events.reference_definitions();
    let linked: BTreeSet<usize> = links
        .iter()
        .filter_map(|l| Some(defs.get(l)?.span.start))
        .collect();
    // a definition's outcome, by where it is
    let mut done: BTreeMap<usize, bool> = BTreeMap::new();
    for (label, images) in &labels {
        let Some(def) = defs.get(label) else { continue };
        let proxied = *done.entry(def.span.start).or_insert_with(|| {
            if linked.contains(&def.span.start) {
                out.counts.skip(Skip::LinkedDefinition);
                return false;
            }
            let Some(dest) = definition_destination(&body[def.span.clone()]) else {
                return false;
            };
            let dest = shift(dest.start + def.span.start..dest.end + def.span.start);
            let done = rewrite_destination(rw, out, &text[dest.clone()], dest, &def.dest, base);
            matches!(done, Ok(()) | Err(Skip::AlreadyProxied))
        });
        if proxied {
            out.imgs.extend(images.iter().map(|&at| loading::Img {
                at,
                content: true,
                ..loading::Img::default()
            }));
        }
    }
    Ok(())
}

/// Rewrites the destination at `range` (written `raw`, meaning `dest`), unless `raw` holds a
/// character that Markdown reads as syntax and a URL never holds unescaped (`<`, `>`, `[`, `]`,
/// a backtick): the imgrelay URL would drop it, and with it what it did to the constructs
/// around the image (a `<` inside made an outer `<…>` destination invalid, for one), so a
/// second run would find other images. Such a destination is counted as not a URL.
fn rewrite_destination(
    rw: &Rewriter,
    out: &mut Collector,
    raw: &str,
    range: Range<usize>,
    dest: &str,
    base: Option<&Url>,
) -> Result<(), Skip> {
    if raw.contains(['<', '>', '[', ']', '`']) {
        out.counts.skip(Skip::Invalid);
        return Err(Skip::Invalid);
    }
    let href: Cow<'_, str> = utf8_percent_encode(dest, HREF_ENCODED).into();
    out.rewrite_url(&rw.resolver, range, &href, base)
}

/// What CommonMark's reference renderer (cmark) percent-encodes in a destination as it writes
/// it into `href`/`src`: controls, space, non-ASCII (always, by `utf8_percent_encode`) and
/// `"`, `<`, `>`, `[`, `\`, `]`, `^`, the backtick, `{`, `|` and `}`. A `%` stays as written.
const HREF_ENCODED: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The end tags of CommonMark's first kind of HTML block, matched without regard to case.
const BLOCK_END_TAGS: [&str; 4] = ["</pre>", "</script>", "</style>", "</textarea>"];

/// `body` with every end tag of [`BLOCK_END_TAGS`] in lowercase, for pulldown-cmark 0.13,
/// which looks for them case-sensitively (see the module header; the fix is offered upstream).
/// Lowercasing ASCII keeps every offset; nothing else of the parse depends on their case.
fn block_ends_in_lowercase(body: &str) -> Cow<'_, str> {
    static TAGS: OnceLock<AhoCorasick> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(BLOCK_END_TAGS)
            .unwrap_or_else(|e| unreachable!("static end tags: {e}"))
    });
    let mut copy: Option<String> = None;
    for m in tags.find_iter(body) {
        let tag = &body[m.range()];
        if tag.bytes().any(|b| b.is_ascii_uppercase()) {
            let copy = copy.get_or_insert_with(|| body.to_string());
            copy[m.range()].make_ascii_lowercase();
        }
    }
    copy.map_or(Cow::Borrowed(body), Cow::Owned)
}

/// The destination's range in `![alt](dest "title")` (inside `<…>` when bracketed), where
/// the alt text's events end at `alt_end` (2, right after `![`, when brackets in the alt text
/// are balanced and outside code).
fn inline_destination(image: &str, alt_end: usize) -> Option<Range<usize>> {
    let b = image.as_bytes();
    let mut i = alt_end.max(2);
    let mut depth = 1;
    while depth > 0 {
        match b.get(i)? {
            b'\\' => i += 1,
            b'[' => depth += 1,
            b']' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    if b.get(i) != Some(&b'(') {
        return None;
    }
    destination(image, i + 1)
}

/// The destination's range in `[label]: dest "title"`.
fn definition_destination(def: &str) -> Option<Range<usize>> {
    let b = def.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b']' if b[i + 1] == b':' => return destination(def, i + 2),
            _ => {}
        }
        i += 1;
    }
    None
}

/// A link destination starting at or after `from` (leading whitespace skipped): `<…>` or a
/// run of non-space characters with balanced parentheses.
fn destination(s: &str, from: usize) -> Option<Range<usize>> {
    let b = s.as_bytes();
    let mut i = from;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if b.get(i) == Some(&b'<') {
        let start = i + 1;
        let len = b[start..].iter().position(|&c| c == b'>' || c == b'\n')?;
        return (b[start + len] == b'>').then_some(start..start + len);
    }
    let start = i;
    let mut parens = 0usize;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'(' => parens += 1,
            b')' if parens == 0 => break,
            b')' => parens -= 1,
            c if c.is_ascii_whitespace() || c.is_ascii_control() => break,
            _ => {}
        }
        i += 1;
    }
    let end = i.min(b.len());
    (end > start).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("![a](https://h/a.jpg)", Some("https://h/a.jpg")),
            ("![a](https://h/a.jpg \"t (x)\")", Some("https://h/a.jpg")),
            (
                "![a [b] c](  https://h/a(1).jpg  'x')",
                Some("https://h/a(1).jpg"),
            ),
            ("![a\\]](<https://h/a b.jpg>)", Some("https://h/a b.jpg")),
            ("![](x.png)", Some("x.png")),
            ("![]()", None),
            ("![a][ref]", None),
        ];
        for (image, want) in cases {
            let got = inline_destination(image, 2).map(|r| &image[r]);
            assert_eq!(got, *want, "{image}");
        }
        let def = "[logo]:\n  <https://h/l.png> \"Logo\"";
        assert_eq!(
            definition_destination(def).map(|r| &def[r]),
            Some("https://h/l.png")
        );
        let def = "  [a\\]:b]: //h/x.png";
        assert_eq!(
            definition_destination(def).map(|r| &def[r]),
            Some("//h/x.png")
        );
    }
}
