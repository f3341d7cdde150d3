//! Front matter of Hexo, Jekyll and Hugo posts: YAML between `---` lines or TOML between
//! `+++` lines, possibly after blank lines. Only the values of the configured image keys
//! (`rewrite.front_matter_keys`) are touched, each in place and in its own quoting style, so
//! everything else (comments, order, indentation, odd spacing) stays as written. With
//! `rewrite.thumbnail` set, the card keys (`rewrite.thumbnail_keys`) are image keys too, and
//! their URLs carry that transform.
//!
//! A deliberately shallow reader, not a YAML or TOML parser: it looks at top-level
//! `key: value` / `key = value` lines whose value is a single-line scalar (plain, `'…'` or
//! `"…"`). Lists, block scalars and nested tables are left alone.

use super::{Collector, Rewriter};
use std::{borrow::Cow, ops::Range};
use url::Url;

/// Where the front matter is in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontMatter {
    pub toml: bool,
    /// The lines between the fences.
    pub inner: Range<usize>,
    /// Where the body starts (after the closing fence's line).
    pub body: usize,
}

/// Finds front matter at the start of `doc` (after blank lines and a byte-order mark).
pub fn split(doc: &[u8]) -> Option<FrontMatter> {
    let mut lines = Lines { doc, at: 0 };
    if doc.starts_with("\u{feff}".as_bytes()) {
        lines.at = 3;
    }
    let (fence, toml) = loop {
        let line = lines.next()?;
        let t = trim(&doc[line.clone()]);
        match t {
            b"" => continue,
            b"---" => break (b"---", false),
            b"+++" => break (b"+++", true),
            _ => return None,
        }
    };
    let start = lines.at;
    while let Some(line) = lines.next() {
        let t = trim(&doc[line.clone()]);
        if t == fence || (!toml && t == b"...") {
            return Some(FrontMatter {
                toml,
                inner: start..line.start,
                body: lines.at,
            });
        }
    }
    None
}

struct Lines<'a> {
    doc: &'a [u8],
    at: usize,
}

impl Iterator for Lines<'_> {
    /// A line without its line break.
    type Item = Range<usize>;
    fn next(&mut self) -> Option<Range<usize>> {
        if self.at >= self.doc.len() {
            return None;
        }
        let start = self.at;
        let end = memchr::memchr(b'\n', &self.doc[start..]).map_or(self.doc.len(), |i| start + i);
        self.at = if end < self.doc.len() { end + 1 } else { end };
        let end = if end > start && self.doc[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        Some(start..end)
    }
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// A scalar value on a line: its byte range (inside the quotes), quoting, decoded text.
#[derive(Debug, PartialEq, Eq)]
struct Scalar<'t> {
    range: Range<usize>,
    text: Cow<'t, str>,
}

/// `(key, value)` for every top-level single-line scalar entry whose key is `wanted` (the
/// value is only read for those).
fn entries<'t>(
    text: &'t str,
    fm: &FrontMatter,
    wanted: impl Fn(&str) -> bool + 't,
) -> impl Iterator<Item = (&'t str, Scalar<'t>)> + 't {
    let toml = fm.toml;
    let lines = Lines {
        doc: text.as_bytes(),
        at: fm.inner.start,
    };
    let end = fm.inner.end;
    lines
        .take_while(move |l| l.start < end)
        .filter_map(move |l| {
            let line = &text[l.clone()];
            let sep = if toml { b'=' } else { b':' };
            let at = memchr::memchr(sep, line.as_bytes())?;
            let (key, rest) = (&line[..at], &line[at + 1..]);
            let key_trimmed = key.trim_end();
            let ok_key = !key_trimmed.is_empty()
                && !line.starts_with([' ', '\t'])
                && key_trimmed
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
            if !ok_key || (!toml && !rest.is_empty() && !rest.starts_with([' ', '\t'])) {
                return None;
            }
            if !wanted(key_trimmed) {
                return None;
            }
            let lead = rest.len() - rest.trim_start().len();
            let value_at = l.start + key.len() + 1 + lead;
            let s = scalar(rest.trim_start(), toml)?;
            Some((
                key_trimmed,
                Scalar {
                    range: s.range.start + value_at..s.range.end + value_at,
                    text: s.text,
                },
            ))
        })
}

/// The scalar at the start of `v` (relative range), if it is one this module rewrites.
fn scalar(v: &str, toml: bool) -> Option<Scalar<'_>> {
    let b = v.as_bytes();
    match b.first()? {
        b'\'' => {
            let mut i = 1;
            let mut text = Cow::Borrowed("");
            loop {
                let rel = memchr::memchr(b'\'', &b[i..])?;
                let part = &v[i..i + rel];
                i += rel;
                let doubled = !toml && b.get(i + 1) == Some(&b'\'');
                match (&mut text, doubled) {
                    (Cow::Borrowed(t), false) if t.is_empty() => *t = part,
                    (t, _) => t.to_mut().push_str(part),
                }
                if doubled {
                    text.to_mut().push('\'');
                    i += 2;
                } else {
                    return Some(Scalar { range: 1..i, text });
                }
            }
        }
        b'"' => {
            let mut i = 1;
            let mut text = String::new();
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        let text = Cow::Owned(text);
                        return Some(Scalar { range: 1..i, text });
                    }
                    b'\\' => {
                        let c = *b.get(i + 1)?;
                        if !matches!(c, b'"' | b'\\' | b'/') {
                            return None;
                        }
                        text.push(c as char);
                        i += 2;
                    }
                    _ => {
                        let c = v[i..].chars().next()?;
                        text.push(c);
                        i += c.len_utf8();
                    }
                }
            }
            None
        }
        _ if toml => None,
        b'[' | b'{' | b'|' | b'>' | b'&' | b'*' | b'!' | b'#' | b'%' | b'@' | b'`' => None,
        _ => {
            let end = v.find(" #").unwrap_or(v.len());
            let text = v[..end].trim_end();
            Some(Scalar {
                range: 0..text.len(),
                text: Cow::Borrowed(text),
            })
        }
    }
}

/// Whether `key` holds the post's own address (`permalink`, `url`).
fn is_address(key: &str) -> bool {
    matches!(key, "permalink" | "url")
}

/// Rewrites the image keys' values in place, in one pass over the lines that also finds the
/// post's own address when `given` is `None`: the first `permalink` or `url` value that is an
/// absolute http(s) URL, which relative references are then resolved against (returned, for
/// the body).
pub(super) fn rewrite(
    rw: &Rewriter,
    text: &str,
    fm: &FrontMatter,
    given: Option<&Url>,
    out: &mut Collector,
) -> Option<Url> {
    let is_card = |key: &str| rw.thumbnail_keys.iter().any(|k| k == key);
    let is_image = |key: &str| is_card(key) || rw.front_matter_keys.iter().any(|k| k == key);
    let mut own = None;
    let mut images = Vec::new();
    let wanted = |key: &str| is_image(key) || (given.is_none() && is_address(key));
    for (key, value) in entries(text, fm, wanted) {
        if given.is_none() && own.is_none() && is_address(key) {
            own = Url::parse(value.text.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"));
        }
        // An empty value (`thumbnail: ''`) is no image, not a skipped one.
        if is_image(key) && !value.text.trim().is_empty() {
            images.push((is_card(key), value));
        }
    }
    let base = given.or(own.as_ref());
    for (card, value) in images {
        // imgrelay URLs hold no quote, backslash, `: ` or ` #`: valid in every style.
        // a front matter image is no content image: its outcome is only counted
        let _ = out.rewrite_url_as(&rw.resolver, value.range, &value.text, base, card);
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(toml, inner, body)` of a document's front matter.
    type Split<'a> = Option<(bool, &'a str, &'a str)>;

    #[test]
    fn fences_table() {
        let cases: &[(&str, Split<'_>)] = &[
            ("---\na: 1\n---\nbody", Some((false, "a: 1\n", "body"))),
            ("\n\n---\na: 1\n---\n", Some((false, "a: 1\n", ""))),
            (
                "\u{feff}---\r\na: 1\r\n---\r\nb",
                Some((false, "a: 1\r\n", "b")),
            ),
            ("+++\na = 1\n+++\nbody", Some((true, "a = 1\n", "body"))),
            ("---\na: 1\n...\nbody", Some((false, "a: 1\n", "body"))),
            ("---\n---\nbody", Some((false, "", "body"))),
            ("---\na: 1\n", None),
            ("text\n---\na\n---\n", None),
            ("<p>x</p>", None),
            ("", None),
            ("----\na\n----\n", None),
        ];
        for (doc, want) in cases {
            let got =
                split(doc.as_bytes()).map(|f| (f.toml, &doc[f.inner.clone()], &doc[f.body..]));
            assert_eq!(got, *want, "{doc:?}");
        }
    }

    #[test]
    fn scalars_table() {
        type Case<'a> = (&'a str, bool, Option<(&'a str, &'a str)>);
        let cases: &[Case<'_>] = &[
            (
                "'https://h/a.jpg'",
                false,
                Some(("https://h/a.jpg", "https://h/a.jpg")),
            ),
            ("'it''s' # c", false, Some(("it''s", "it's"))),
            ("\"a\\\"b\"", false, Some(("a\\\"b", "a\"b"))),
            ("\"a\\nb\"", false, None),
            (
                "https://h/a.jpg  # comment",
                false,
                Some(("https://h/a.jpg", "https://h/a.jpg")),
            ),
            (
                "http://h/a.jpg#frag",
                false,
                Some(("http://h/a.jpg#frag", "http://h/a.jpg#frag")),
            ),
            ("[a, b]", false, None),
            ("'unterminated", false, None),
            ("'lit''eral'", true, Some(("lit", "lit"))),
            ("bare", true, None),
            (
                "\"https://h/图.png\"",
                true,
                Some(("https://h/图.png", "https://h/图.png")),
            ),
        ];
        for (v, toml, want) in cases {
            let got = scalar(v, *toml);
            let got = got.as_ref().map(|s| (&v[s.range.clone()], &*s.text));
            assert_eq!(got, *want, "{v:?}");
        }
    }

    #[test]
    fn entries_and_base() {
        let doc = "---\ntitle: 'x: y'\n  nested: 'no'\nheadimg: 'https://h/a.jpg'\nthumbnail: \nurl: https://blog.example/p/\nkey:value\n---\n";
        let fm = split(doc.as_bytes()).unwrap();
        let keys: Vec<_> = entries(doc, &fm, |_| true)
            .map(|(k, v)| (k, v.text.into_owned()))
            .collect();
        assert_eq!(
            keys,
            [
                ("title", "x: y".to_string()),
                ("headimg", "https://h/a.jpg".into()),
                ("url", "https://blog.example/p/".into()),
            ]
        );
        let rw = Rewriter::new(&crate::config::Config::default());
        let base =
            |doc: &str, fm: &FrontMatter| rewrite(&rw, doc, fm, None, &mut Collector::default());
        assert_eq!(base(doc, &fm).unwrap().as_str(), "https://blog.example/p/");
        let given = Url::parse("https://given.example/").unwrap();
        assert_eq!(
            rewrite(&rw, doc, &fm, Some(&given), &mut Collector::default()),
            None
        );
        let toml = "+++\npermalink = \"/relative/\"\ncover = 'https://h/c.png'\n+++\n";
        let fm = split(toml.as_bytes()).unwrap();
        assert_eq!(base(toml, &fm), None);
        let (k, v) = entries(toml, &fm, |_| true).nth(1).unwrap();
        assert_eq!((k, &toml[v.range]), ("cover", "https://h/c.png"));
        let both = "---\npermalink: /relative/\nurl: http://blog.example/q\n---\n";
        let fm = split(both.as_bytes()).unwrap();
        assert_eq!(base(both, &fm).unwrap().as_str(), "http://blog.example/q");
    }
}
