//! The start tags of a piece of HTML, found the way `lol_html` finds them, without `lol_html`.
//!
//! A rewrite needs the attributes of a few start tags (`img`, `source`, `a` …) and the content
//! of `<noscript>`; everything else only has to be stepped over correctly. This tokenizer is
//! `lol_html` 3's own state machine reduced to what decides where a tag is: `memchr` to the
//! next `<`, comments (`<!-->` and `<!--->` included), bogus comments and doctypes, end tags
//! (which have attributes too), attribute values quoted or not, the raw-text elements whose
//! content is text (`script`, `style`, `textarea`, `title`, `xmp`, `iframe`, `noembed`,
//! `noframes`, `noscript`; `plaintext` to the end), `lol_html`'s simulation of foreign content
//! (`<svg>`, `<math>`: CDATA sections, no raw text, the tags that leave it, integration
//! points), and its element stack for `picture source`. Tag names are compared the way
//! `lol_html` compares them, by its [`name_hash`]. It reports byte ranges of the input and
//! allocates nothing per tag.
//!
//! What it does not model it refuses ([`Unsupported`]) so the caller can hand the span to
//! `lol_html` instead: a `<script>` holding `<!--` (the script-escape states), a `<noscript>`
//! in foreign content, and foreign content in a span whose `picture` nesting matters. Inputs
//! that end inside a tag end the scan, as they end `lol_html`'s: that tag is not emitted.

use super::bytes;
use std::ops::Range;

/// One attribute as the source has it: byte ranges of its name and value (absolute), the quote
/// around the value, and where the attribute ends (after the closing quote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Attr {
    pub name: Range<usize>,
    pub value: Option<Range<usize>>,
    pub quote: Option<u8>,
    pub end: usize,
}

mod names;
use names::same_tag;
pub(super) use names::{name_hash, tag, NO_HASH};

/// What the scan reports, in document order.
#[derive(Debug)]
pub(super) enum Event<'a> {
    /// A start tag: where its `<` is, its name (as written) and [`name_hash`], its attributes,
    /// and whether a `picture` element is open around it (only tracked when asked for).
    Start {
        at: usize,
        name: &'a [u8],
        hash: u64,
        attrs: &'a [Attr],
        in_picture: bool,
    },
    /// The content of a `<noscript>`: text to the tokenizer, HTML to its readers.
    Noscript(Range<usize>),
}

/// The span holds markup this tokenizer does not model; `lol_html` must read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unsupported;

/// How the content after a start tag is tokenized (`lol_html`'s tree-builder feedback): raw
/// text (RCDATA and RAWTEXT alike) or script data up to the end tag of the given name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    Data,
    Raw(&'static [u8]),
    Script,
    Plain,
}

fn text_after(hash: u64) -> Text {
    const RAW: &[(u64, &[u8])] = &[
        (tag::TEXTAREA, b"textarea"),
        (tag::TITLE, b"title"),
        (tag::STYLE, b"style"),
        (tag::IFRAME, b"iframe"),
        (tag::XMP, b"xmp"),
        (tag::NOEMBED, b"noembed"),
        (tag::NOFRAMES, b"noframes"),
        (tag::NOSCRIPT, b"noscript"),
    ];
    match hash {
        tag::SCRIPT => Text::Script,
        tag::PLAINTEXT => Text::Plain,
        h => RAW
            .iter()
            .find(|(r, _)| *r == h)
            .map_or(Text::Data, |&(_, name)| Text::Raw(name)),
    }
}

/// The namespaces of `lol_html`'s tree-builder simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Html,
    Svg,
    MathMl,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'\x0c')
}

/// A lexed tag: its name, where it ends (after `>`), and whether it ended with `/>`.
struct Lexed {
    name: Range<usize>,
    next: usize,
    self_closing: bool,
}

/// The tokenizer over one span of a document.
#[derive(Debug, Default)]
pub(super) struct Scanner {
    attrs: Vec<Attr>,
    /// Open elements (only when `picture` is tracked): name and hash; how many are `picture`.
    stack: Vec<(Range<usize>, u64)>,
    pictures: usize,
    /// The namespaces entered (`Html` at the bottom is implied).
    ns: Vec<Ns>,
}

impl Scanner {
    /// Reports the start tags and `<noscript>` contents of `doc[span]` to `f`. With
    /// `track_picture`, keeps the element stack so `in_picture` is meaningful; without it, a
    /// `picture` start tag stops the scan with `Ok(false)` (scan again, tracking).
    pub(super) fn scan(
        &mut self,
        doc: &[u8],
        span: Range<usize>,
        track_picture: bool,
        mut f: impl FnMut(Event<'_>),
    ) -> Result<bool, Unsupported> {
        self.stack.clear();
        self.ns.clear();
        self.pictures = 0;
        let end = span.end.min(doc.len());
        let d = &doc[..end];
        let mut pos = span.start.min(end);
        while let Some(found) = bytes::find(b'<', &d[pos..]) {
            let at = pos + found;
            let Some(&c) = d.get(at + 1) else {
                return Ok(true);
            };
            pos = match c {
                c if c.is_ascii_alphabetic() => {
                    let Some(tag) = self.lex(d, at + 1, true) else {
                        return Ok(true);
                    };
                    let name = &d[tag.name.clone()];
                    let hash = name_hash(name);
                    if hash == tag::PICTURE && !track_picture {
                        return Ok(false);
                    }
                    f(Event::Start {
                        at,
                        name,
                        hash,
                        attrs: &self.attrs,
                        in_picture: self.pictures > 0,
                    });
                    if track_picture && !tag::VOID.contains(&hash) {
                        self.pictures += usize::from(hash == tag::PICTURE);
                        self.stack.push((tag.name.clone(), hash));
                    }
                    let html = self.start_tag_feedback(d, name, hash, tag.self_closing)?;
                    if !self.ns.is_empty() && track_picture {
                        return Err(Unsupported);
                    }
                    let text = match html {
                        true => text_after(hash),
                        false => Text::Data,
                    };
                    let closer = match text {
                        Text::Data => None,
                        Text::Plain => return Ok(true),
                        Text::Raw(closer) => Some(closer),
                        Text::Script => Some(&b"script"[..]),
                    };
                    match closer {
                        None => tag.next,
                        Some(closer) => {
                            match self.raw_text(d, tag.next, closer, hash, track_picture, &mut f)? {
                                Some(next) => next,
                                None => return Ok(true),
                            }
                        }
                    }
                }
                b'/' => match d.get(at + 2) {
                    None => return Ok(true),
                    Some(c) if c.is_ascii_alphabetic() => {
                        let Some(tag) = self.lex(d, at + 2, false) else {
                            return Ok(true);
                        };
                        let name = &d[tag.name.clone()];
                        let hash = name_hash(name);
                        self.end_tag_feedback(name, hash);
                        self.pop(d, track_picture, name, hash);
                        tag.next
                    }
                    Some(b'>') => at + 3,
                    Some(_) => match bytes::find(b'>', &d[at + 2..]) {
                        Some(gt) => at + 2 + gt + 1,
                        None => return Ok(true),
                    },
                },
                b'!' if d[at + 2..].starts_with(b"--") => match comment_end(d, at + 4) {
                    Some(next) => next,
                    None => return Ok(true),
                },
                b'!' if self.current() != Ns::Html && d[at + 2..].starts_with(b"[CDATA[") => {
                    match memchr::memmem::find(&d[at + 9..], b"]]>") {
                        Some(close) => at + 9 + close + 3,
                        None => return Ok(true),
                    }
                }
                b'!' | b'?' => match bytes::find(b'>', &d[at + 2..]) {
                    Some(gt) => at + 2 + gt + 1,
                    None => return Ok(true),
                },
                _ => at + 1,
            };
            if pos >= end {
                return Ok(true);
            }
        }
        Ok(true)
    }

    /// The text of a raw-text element from `from` to its end tag `</closer`, which the
    /// element (`hash`) is then closed by. `Ok(None)`: the text runs to the end of the span.
    fn raw_text(
        &mut self,
        d: &[u8],
        from: usize,
        closer: &'static [u8],
        hash: u64,
        track_picture: bool,
        f: &mut impl FnMut(Event<'_>),
    ) -> Result<Option<usize>, Unsupported> {
        let close = find_end_tag(d, from, closer);
        let content_end = close.unwrap_or(d.len());
        if hash == tag::SCRIPT && memchr::memmem::find(&d[from..content_end], b"<!--").is_some() {
            return Err(Unsupported);
        }
        if hash == tag::NOSCRIPT && content_end > from {
            f(Event::Noscript(from..content_end));
        }
        let Some(close) = close else { return Ok(None) };
        let Some(end_tag) = self.lex(d, close + 2, false) else {
            return Ok(None);
        };
        self.end_tag_feedback(closer, hash);
        self.pop(d, track_picture, closer, hash);
        Ok(Some(end_tag.next))
    }

    /// `lol_html`'s tree-builder feedback for a start tag: namespace changes, and whether
    /// the tag is in HTML content (where raw-text elements switch the tokenizer).
    fn start_tag_feedback(
        &mut self,
        d: &[u8],
        name: &[u8],
        hash: u64,
        self_closing: bool,
    ) -> Result<bool, Unsupported> {
        let current = self.current();
        match hash {
            tag::SVG => self.ns.push(Ns::Svg),
            tag::MATH => self.ns.push(Ns::MathMl),
            _ if current == Ns::Html => return Ok(true),
            tag::NOSCRIPT => return Err(Unsupported),
            h if tag::LEAVE_FOREIGN.contains(&h) => {
                self.ns.pop();
            }
            // integration points (a self-closing one is none, and nothing else either)
            tag::DESC | tag::TITLE | tag::FOREIGN_OBJECT if current == Ns::Svg && !self_closing => {
                self.ns.push(Ns::Html)
            }
            tag::MI | tag::MO | tag::MN | tag::MS | tag::MTEXT
                if current == Ns::MathMl && !self_closing =>
            {
                self.ns.push(Ns::Html)
            }
            tag::FONT => {
                let leaves = self.attrs.iter().any(|a| {
                    let n = &d[a.name.clone()];
                    [&b"color"[..], b"size", b"face"]
                        .iter()
                        .any(|w| n.eq_ignore_ascii_case(w))
                });
                if leaves {
                    self.ns.pop();
                }
            }
            NO_HASH if current == Ns::MathMl => {
                let html_encoding = |a: &Attr| {
                    let value = a.value.clone().map(|v| &d[v]);
                    d[a.name.clone()].eq_ignore_ascii_case(b"encoding")
                        && value.is_some_and(|v| {
                            v.eq_ignore_ascii_case(b"text/html")
                                || v.eq_ignore_ascii_case(b"application/xhtml+xml")
                        })
                };
                if !self_closing
                    && name.eq_ignore_ascii_case(b"annotation-xml")
                    && self.attrs.iter().any(html_encoding)
                {
                    self.ns.push(Ns::Html);
                }
            }
            _ => {}
        }
        Ok(false)
    }

    fn current(&self) -> Ns {
        self.ns.last().copied().unwrap_or(Ns::Html)
    }

    /// `lol_html`'s tree-builder feedback for an end tag: leaving a namespace.
    fn end_tag_feedback(&mut self, name: &[u8], hash: u64) {
        let Some(&current) = self.ns.last() else {
            return;
        };
        let leave = if current == Ns::Html {
            let prev = self
                .ns
                .len()
                .checked_sub(2)
                .map_or(Ns::Html, |i| self.ns[i]);
            match prev {
                Ns::MathMl => {
                    matches!(hash, tag::MI | tag::MO | tag::MN | tag::MS | tag::MTEXT)
                        || (hash == NO_HASH && name.eq_ignore_ascii_case(b"annotation-xml"))
                }
                Ns::Svg => matches!(hash, tag::DESC | tag::TITLE | tag::FOREIGN_OBJECT),
                Ns::Html => false,
            }
        } else {
            matches!(
                (current, hash),
                (Ns::Svg, tag::SVG) | (Ns::MathMl, tag::MATH) | (_, tag::P | tag::BR)
            )
        };
        if leave {
            self.ns.pop();
        }
    }

    /// `lol_html`'s `pop_up_to`: an end tag closes the nearest open element of its name and
    /// every element opened after it; an end tag with no open element of its name does nothing.
    fn pop(&mut self, d: &[u8], track_picture: bool, name: &[u8], hash: u64) {
        if !track_picture {
            return;
        }
        let Some(i) = self
            .stack
            .iter()
            .rposition(|(open, h)| same_tag(&d[open.clone()], *h, name, hash))
        else {
            return;
        };
        for (_, h) in self.stack.drain(i..) {
            self.pictures -= usize::from(h == tag::PICTURE);
        }
    }

    /// Lexes a tag from the first letter of its name at `from` to its `>`, recording the
    /// attributes of a start tag in `self.attrs`. `None`: the input ends inside the tag.
    fn lex(&mut self, d: &[u8], from: usize, start: bool) -> Option<Lexed> {
        let end = d.len();
        let mut i = from;
        while i < end && !is_space(d[i]) && d[i] != b'/' && d[i] != b'>' {
            i += 1;
        }
        let name = from..i;
        let done = |next: usize, self_closing: bool| Lexed {
            name: name.clone(),
            next,
            self_closing,
        };
        self.attrs.clear();
        loop {
            // before attribute name
            while i < end && is_space(d[i]) {
                i += 1;
            }
            match *d.get(i)? {
                b'>' => return Some(done(i + 1, false)),
                b'/' => {
                    // self-closing start tag: `/>` ends the tag, anything else is reconsumed
                    i += 1;
                    if *d.get(i)? == b'>' {
                        return Some(done(i + 1, true));
                    }
                    continue;
                }
                _ => {}
            }
            // attribute name: the first character is part of it, even `=`
            let name_start = i;
            i += 1;
            while i < end && !is_space(d[i]) && !matches!(d[i], b'=' | b'/' | b'>') {
                i += 1;
            }
            let attr_name = name_start..i;
            while i < end && is_space(d[i]) {
                i += 1;
            }
            let bare = Attr {
                name: attr_name.clone(),
                value: None,
                quote: None,
                end: attr_name.end,
            };
            if *d.get(i)? != b'=' {
                // no value: `/`, `>` or the next attribute follows
                if start {
                    self.attrs.push(bare);
                }
                continue;
            }
            i += 1;
            while i < end && is_space(d[i]) {
                i += 1;
            }
            match *d.get(i)? {
                q @ (b'"' | b'\'') => {
                    let v = i + 1;
                    let len = bytes::find(q, &d[v..])?;
                    if start {
                        self.attrs.push(Attr {
                            value: Some(v..v + len),
                            quote: Some(q),
                            end: v + len + 1,
                            ..bare
                        });
                    }
                    i = v + len + 1;
                }
                b'>' => {
                    if start {
                        self.attrs.push(bare);
                    }
                    return Some(done(i + 1, false));
                }
                _ => {
                    let v = i;
                    while i < end && !is_space(d[i]) && d[i] != b'>' {
                        i += 1;
                    }
                    if i == end {
                        return None;
                    }
                    if start {
                        self.attrs.push(Attr {
                            value: Some(v..i),
                            quote: None,
                            end: i,
                            ..bare
                        });
                    }
                }
            }
        }
    }
}

/// Where the end tag that closes raw text opened by `name` starts (its `<`), searching from
/// `from`: `</name` in any case, followed by whitespace, `/` or `>`.
fn find_end_tag(d: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let mut pos = from;
    while let Some(found) = memchr::memmem::find(&d[pos..], b"</") {
        let at = pos + found;
        let after = at + 2 + name.len();
        let matches = d
            .get(at + 2..after)
            .is_some_and(|n| n.eq_ignore_ascii_case(name));
        if matches
            && d.get(after)
                .is_some_and(|&b| is_space(b) || b == b'/' || b == b'>')
        {
            return Some(at);
        }
        pos = at + 2;
    }
    None
}

/// Where the data after a comment whose text starts at `from` (after `<!--`) begins: after
/// `<!-->`, `<!--->`, or the first `-->` or `--!>`. `None`: the comment runs to the end.
fn comment_end(d: &[u8], from: usize) -> Option<usize> {
    let rest = d.get(from..)?;
    if rest.starts_with(b">") {
        return Some(from + 1);
    }
    if rest.starts_with(b"->") {
        return Some(from + 2);
    }
    let mut pos = 0;
    while let Some(found) = memchr::memmem::find(&rest[pos..], b"--") {
        let at = pos + found;
        match rest.get(at + 2) {
            Some(b'>') => return Some(from + at + 3),
            Some(b'!') if rest.get(at + 3) == Some(&b'>') => return Some(from + at + 4),
            _ => pos = at + 1,
        }
    }
    None
}

#[cfg(test)]
mod tests;
