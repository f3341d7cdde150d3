//! The start tags of a piece of HTML, found the way `lol_html` finds them, without `lol_html`.
//!
//! A rewrite needs the attributes of a few start tags (`img`, `source`, `a` …) and the content
//! of `<noscript>`; everything else only has to be stepped over correctly. This tokenizer is
//! `lol_html` 3's own state machine reduced to what decides where a tag is: `memchr` to the
//! next `<`, comments (`<!-->` and `<!--->` included), bogus comments and doctypes, end tags
//! (which have attributes too), attribute values quoted or not, the raw-text elements whose
//! content is text (`script`, `style`, `textarea`, `title`, `xmp`, `iframe`, `noembed`,
//! `noframes`, `noscript`; `plaintext` to the end), and `lol_html`'s element stack for
//! `picture source`. It reports byte ranges of the input; it never allocates per tag.
//!
//! What it does not model it refuses ([`Unsupported`]) so the caller can hand the span to
//! `lol_html` instead: foreign content (`<svg>`, `<math>`, where CDATA is markup and raw-text
//! tags are not raw text) and a `<script>` holding `<!--` (the script-escape states). Inputs
//! that end inside a tag end the scan, as they end `lol_html`'s: that tag is not emitted.

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

/// What the scan reports, in document order.
#[derive(Debug)]
pub(super) enum Event<'a> {
    /// A start tag: where its `<` is, its name (as written), its attributes, and whether a
    /// `picture` element is open around it (only tracked when asked for).
    Start {
        at: usize,
        name: &'a [u8],
        attrs: &'a [Attr],
        in_picture: bool,
    },
    /// The content of a `<noscript>`: text to the tokenizer, HTML to its readers.
    Noscript(Range<usize>),
}

/// The span holds markup this tokenizer does not model; `lol_html` must read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unsupported;

/// How the content after a start tag is tokenized (`lol_html`'s tree-builder feedback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    Data,
    /// RCDATA and RAWTEXT alike: text up to the matching end tag.
    Raw,
    Script,
    Plain,
}

fn text_after(name: &[u8]) -> Text {
    const RAW: &[&[u8]] = &[
        b"textarea",
        b"title",
        b"style",
        b"iframe",
        b"xmp",
        b"noembed",
        b"noframes",
        b"noscript",
    ];
    if RAW.iter().any(|r| name.eq_ignore_ascii_case(r)) {
        Text::Raw
    } else if name.eq_ignore_ascii_case(b"script") {
        Text::Script
    } else if name.eq_ignore_ascii_case(b"plaintext") {
        Text::Plain
    } else {
        Text::Data
    }
}

/// Elements `lol_html`'s stack never holds (HTML void elements and a few obsolete ones).
fn is_void(name: &[u8]) -> bool {
    const VOID: &[&[u8]] = &[
        b"area",
        b"base",
        b"basefont",
        b"bgsound",
        b"br",
        b"col",
        b"embed",
        b"hr",
        b"img",
        b"input",
        b"keygen",
        b"link",
        b"meta",
        b"param",
        b"source",
        b"track",
        b"wbr",
    ];
    VOID.iter().any(|v| name.eq_ignore_ascii_case(v))
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'\x0c')
}

/// A lexed tag: its name and where it ends (after `>`).
struct Lexed {
    name: Range<usize>,
    next: usize,
}

/// The tokenizer over one span of a document.
#[derive(Debug, Default)]
pub(super) struct Scanner {
    attrs: Vec<Attr>,
    /// Open elements' names (only when `picture` is tracked), and how many are `picture`.
    stack: Vec<Range<usize>>,
    pictures: usize,
}

impl Scanner {
    /// Reports the start tags and `<noscript>` contents of `doc[span]` to `f`. With
    /// `track_picture`, keeps the element stack so `in_picture` is meaningful.
    pub(super) fn scan(
        &mut self,
        doc: &[u8],
        span: Range<usize>,
        track_picture: bool,
        mut f: impl FnMut(Event<'_>),
    ) -> Result<(), Unsupported> {
        self.stack.clear();
        self.pictures = 0;
        let end = span.end.min(doc.len());
        let d = &doc[..end];
        let mut pos = span.start.min(end);
        while let Some(found) = memchr::memchr(b'<', &d[pos..]) {
            let at = pos + found;
            let Some(&c) = d.get(at + 1) else {
                return Ok(());
            };
            pos = match c {
                c if c.is_ascii_alphabetic() => {
                    let Some(tag) = self.lex(d, at + 1, true) else {
                        return Ok(());
                    };
                    let name = &d[tag.name.clone()];
                    if name.eq_ignore_ascii_case(b"svg") || name.eq_ignore_ascii_case(b"math") {
                        return Err(Unsupported);
                    }
                    f(Event::Start {
                        at,
                        name,
                        attrs: &self.attrs,
                        in_picture: self.pictures > 0,
                    });
                    if track_picture && !is_void(name) {
                        self.pictures += usize::from(name.eq_ignore_ascii_case(b"picture"));
                        self.stack.push(tag.name.clone());
                    }
                    let text = text_after(name);
                    match text {
                        Text::Data => tag.next,
                        Text::Plain => return Ok(()),
                        Text::Raw | Text::Script => {
                            let close = find_end_tag(d, tag.next, name);
                            let content_end = close.unwrap_or(end);
                            if text == Text::Script
                                && memchr::memmem::find(&d[tag.next..content_end], b"<!--")
                                    .is_some()
                            {
                                return Err(Unsupported);
                            }
                            if name.eq_ignore_ascii_case(b"noscript") && content_end > tag.next {
                                f(Event::Noscript(tag.next..content_end));
                            }
                            let Some(close) = close else { return Ok(()) };
                            let Some(end_tag) = self.lex(d, close + 2, false) else {
                                return Ok(());
                            };
                            self.pop(d, track_picture, end_tag.name);
                            end_tag.next
                        }
                    }
                }
                b'/' => match d.get(at + 2) {
                    None => return Ok(()),
                    Some(c) if c.is_ascii_alphabetic() => {
                        let Some(tag) = self.lex(d, at + 2, false) else {
                            return Ok(());
                        };
                        self.pop(d, track_picture, tag.name);
                        tag.next
                    }
                    Some(b'>') => at + 3,
                    Some(_) => match memchr::memchr(b'>', &d[at + 2..]) {
                        Some(gt) => at + 2 + gt + 1,
                        None => return Ok(()),
                    },
                },
                b'!' if d[at + 2..].starts_with(b"--") => match comment_end(d, at + 4) {
                    Some(next) => next,
                    None => return Ok(()),
                },
                b'!' | b'?' => match memchr::memchr(b'>', &d[at + 2..]) {
                    Some(gt) => at + 2 + gt + 1,
                    None => return Ok(()),
                },
                _ => at + 1,
            };
        }
        Ok(())
    }

    /// `lol_html`'s `pop_up_to`: an end tag closes the nearest open element of its name and
    /// every element opened after it; an end tag with no open element of its name does nothing.
    fn pop(&mut self, d: &[u8], track_picture: bool, name: Range<usize>) {
        if !track_picture {
            return;
        }
        let name = &d[name];
        let Some(i) = self
            .stack
            .iter()
            .rposition(|open| d[open.clone()].eq_ignore_ascii_case(name))
        else {
            return;
        };
        for open in self.stack.drain(i..) {
            self.pictures -= usize::from(d[open].eq_ignore_ascii_case(b"picture"));
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
        let done = |next: usize| Lexed {
            name: name.clone(),
            next,
        };
        self.attrs.clear();
        loop {
            // before attribute name
            while i < end && is_space(d[i]) {
                i += 1;
            }
            match *d.get(i)? {
                b'>' => return Some(done(i + 1)),
                b'/' => {
                    // self-closing start tag: `/>` ends the tag, anything else is reconsumed
                    i += 1;
                    if *d.get(i)? == b'>' {
                        return Some(done(i + 1));
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
                    let len = memchr::memchr(q, &d[v..])?;
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
                    return Some(done(i + 1));
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
mod tests {
    use super::*;

    /// The start tags of `html` as `name[attr=value …]`, noscript contents as `{…}`.
    fn tags(html: &str) -> Result<Vec<String>, Unsupported> {
        let d = html.as_bytes();
        let mut out = Vec::new();
        Scanner::default().scan(d, 0..d.len(), true, |e| match e {
            Event::Start {
                name,
                attrs,
                in_picture,
                ..
            } => {
                let mut s = String::from_utf8_lossy(name).into_owned();
                if in_picture {
                    s.insert(0, '^');
                }
                for a in attrs {
                    s.push(' ');
                    s.push_str(&html[a.name.clone()]);
                    if let Some(v) = &a.value {
                        s.push('=');
                        s.push_str(&html[v.clone()]);
                    }
                }
                out.push(s);
            }
            Event::Noscript(r) => out.push(format!("{{{}}}", &html[r])),
        })?;
        Ok(out)
    }

    #[test]
    fn tags_table() {
        let cases: &[(&str, &[&str])] = &[
            ("text only", &[]),
            ("<p>a</p><img src=x>", &["p", "img src=x"]),
            ("<IMG/SRC='a b'/>", &["IMG SRC=a b"]),
            ("<img src = \"x>y\" alt>", &["img src=x>y alt"]),
            ("<div a\"b c=\">\">", &["div a\"b c=>"]),
            ("<img a=\"1\"b='2'c=3>", &["img a=1 b=2 c=3"]),
            ("<img src=>", &["img src"]),
            ("<!-- <img a> --><img b>", &["img b"]),
            ("<!--><img a>", &["img a"]),
            ("<!---><img a>", &["img a"]),
            ("<!-- a --!><img b>", &["img b"]),
            ("<!-- a <!-- b --><img c>", &["img c"]),
            ("<!-- unclosed <img a>", &[]),
            ("<!DOCTYPE html><? x <img a> ?><img b>", &["img b"]),
            ("<![CDATA[<img a>]]><img b>", &["img b"]),
            ("</div title=\">\"><img a>", &["img a"]),
            ("</ x <img a>><img b>", &["img b"]),
            ("</><img a>", &["img a"]),
            ("a < b <3 <img a>", &["img a"]),
            ("<script>'<img a>'</script ><img b>", &["script", "img b"]),
            ("<style><img a></STYLE><img b>", &["style", "img b"]),
            (
                "<title><img a></titlex></title><img b>",
                &["title", "img b"],
            ),
            ("<textarea><img a>", &["textarea"]),
            ("<textarea a=><img a>", &["textarea a"]),
            ("<plaintext></plaintext><img a>", &["plaintext"]),
            (
                "<noscript><img a></noscript><img b>",
                &["noscript", "{<img a>}", "img b"],
            ),
            ("<noscript></noscript>", &["noscript"]),
            (
                "<picture><source a></picture><source b>",
                &["picture", "^source a", "source b"],
            ),
            (
                "<div><picture></div><source a>",
                &["div", "picture", "source a"],
            ),
            ("<picture></img><source a>", &["picture", "^source a"]),
            ("<img src='x", &[]),
            ("<img src=x", &[]),
            ("<img", &[]),
            ("<", &[]),
        ];
        for (html, want) in cases {
            assert_eq!(
                tags(html),
                Ok(want.iter().map(|s| s.to_string()).collect()),
                "{html}"
            );
        }
        for html in [
            "<svg><img a></svg>",
            "<MATH>",
            "<script><!--<script></script>--></script>",
        ] {
            assert_eq!(tags(html), Err(Unsupported), "{html}");
        }
    }

    #[test]
    fn ranges_point_into_the_input() {
        let html = "x<img  data-src='a' src=b alt>";
        let mut seen = Vec::new();
        Scanner::default()
            .scan(html.as_bytes(), 1..html.len(), false, |e| {
                if let Event::Start { at, attrs, .. } = e {
                    seen.push((at, attrs.to_vec()));
                }
            })
            .unwrap();
        let attr = |name: Range<usize>, value: Option<Range<usize>>, quote, end| Attr {
            name,
            value,
            quote,
            end,
        };
        assert_eq!(
            seen,
            vec![(
                1,
                vec![
                    attr(7..15, Some(17..18), Some(b'\''), 19),
                    attr(20..23, Some(24..25), None, 25),
                    attr(26..29, None, None, 29),
                ]
            )]
        );
    }
}
