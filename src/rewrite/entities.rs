//! Character references in attribute values: decoding what an author wrote before a URL is
//! parsed, and escaping what the rewriter writes back.
//!
//! `lol_html` hands attribute values over raw (`&amp;` stays `&amp;`) and, when asked to set
//! one, escapes only `"`; this module owns both directions so a URL like `a.jpg?x=1&amp;y=2`
//! is read as `a.jpg?x=1&y=2` and every value written is valid inside its quotes. Decoding
//! follows HTML's attribute-value rules with the whole named-reference table (`htmlize`).
//!
//! [`decode_mapped`] also says where each decoded character was written, so that a value with
//! several URLs (`srcset`, `style`) gets only its URLs replaced: every other character keeps
//! its spelling (`&#xA;` stays `&#xA;`, never a raw line break; `&nbsp;` stays `&nbsp;`).

use std::{borrow::Cow, ops::Range};

/// Decodes the character references of an attribute value (HTML's attribute rules: a legacy
/// name without `;` followed by `=` or an alphanumeric is not a reference).
pub(super) fn decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains('&') {
        return Cow::Borrowed(raw);
    }
    htmlize::unescape_attribute(raw)
}

/// An attribute value decoded, with where its pieces were in the raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decoded<'a> {
    pub text: Cow<'a, str>,
    /// The character references, in order: their range in the raw value, where their text
    /// starts in the decoded one, and how long it is. Between them the text is as written.
    refs: Vec<Ref>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ref {
    raw: Range<usize>,
    at: usize,
    len: usize,
    /// Written without its `;`.
    open: bool,
}

/// [`decode`], keeping where each character reference was (see [`Decoded::raw_range`]).
pub(super) fn decode_mapped(raw: &str) -> Decoded<'_> {
    if !raw.contains('&') {
        return Decoded {
            text: Cow::Borrowed(raw),
            refs: Vec::new(),
        };
    }
    let b = raw.as_bytes();
    let (mut text, mut refs, mut last) = (String::with_capacity(raw.len()), Vec::new(), 0);
    for amp in memchr::memchr_iter(b'&', b) {
        if amp < last {
            continue;
        }
        let end = reference_end(b, amp);
        if end == amp + 1 {
            continue;
        }
        let token = &raw[amp..end];
        // A named reference without `;` followed by `=` is no reference in an attribute.
        let decoded = if b.get(end) == Some(&b'=') && !token.ends_with(';') {
            Cow::Borrowed(token)
        } else {
            htmlize::unescape_attribute(token)
        };
        if decoded == token {
            continue;
        }
        text.push_str(&raw[last..amp]);
        refs.push(Ref {
            raw: amp..end,
            at: text.len(),
            len: decoded.len(),
            open: !token.ends_with(';'),
        });
        text.push_str(&decoded);
        last = end;
    }
    text.push_str(&raw[last..]);
    Decoded {
        text: Cow::Owned(text),
        refs,
    }
}

/// Where a character reference that may start at `b[amp]` (a `&`) ends: `&#` and digits,
/// `&#x` and hex digits, or `&` and letters and digits, each with an optional `;`. `amp + 1`
/// when none does.
fn reference_end(b: &[u8], amp: usize) -> usize {
    let run = |from: usize, ok: fn(&u8) -> bool| {
        from + b
            .get(from..)
            .map_or(0, |r| r.iter().take_while(|c| ok(c)).count())
    };
    let (digits, end) = match b.get(amp + 1) {
        Some(b'#') => match b.get(amp + 2) {
            Some(b'x' | b'X') => (amp + 3, run(amp + 3, u8::is_ascii_hexdigit)),
            _ => (amp + 2, run(amp + 2, u8::is_ascii_digit)),
        },
        _ => (amp + 1, run(amp + 1, u8::is_ascii_alphanumeric)),
    };
    if end == digits {
        return amp + 1;
    }
    end + usize::from(b.get(end) == Some(&b';'))
}

impl Decoded<'_> {
    /// The range of the raw value that the decoded `r` was written as, widened to whole
    /// character references.
    pub(super) fn raw_range(&self, r: Range<usize>) -> Range<usize> {
        self.raw_at(r.start, false)..self.raw_at(r.end, true)
    }

    /// The raw offset of decoded offset `at`: inside a reference, the reference's start, or
    /// with `end` its end.
    fn raw_at(&self, at: usize, end: bool) -> usize {
        let i = self.refs.partition_point(|r| r.at < at);
        let Some(r) = i.checked_sub(1).map(|i| &self.refs[i]) else {
            return at;
        };
        match at.checked_sub(r.at + r.len) {
            Some(after) => r.raw.end + after,
            None if end => r.raw.end,
            None => r.raw.start,
        }
    }

    /// Whether a character reference written without its `;` ends at raw offset `at`: a
    /// letter or digit written right after it would become part of it.
    pub(super) fn open_reference_ends_at(&self, at: usize) -> bool {
        let i = self.refs.partition_point(|r| r.raw.end < at);
        self.refs.get(i).is_some_and(|r| r.raw.end == at && r.open)
    }
}

/// Escapes `value` for an attribute quoted with `quote` (`"` or `'`): `&` and the quote.
#[cfg(test)]
pub(super) fn escape(value: &str, quote: char) -> Cow<'_, str> {
    if memchr::memchr2(b'&', quote_byte(quote), value.as_bytes()).is_none() {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    escape_into(&mut out, value, quote);
    Cow::Owned(out)
}

fn quote_byte(quote: char) -> u8 {
    if quote == '\'' {
        b'\''
    } else {
        b'"'
    }
}

/// Appends `value` escaped as [`escape`] escapes it to `out`.
pub(super) fn escape_into(out: &mut String, value: &str, quote: char) {
    let bytes = value.as_bytes();
    let mut last = 0;
    for at in memchr::memchr2_iter(b'&', quote_byte(quote), bytes) {
        out.push_str(&value[last..at]);
        out.push_str(match bytes[at] {
            b'&' => "&amp;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        last = at + 1;
    }
    out.push_str(&value[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_table() {
        for (raw, want) in [
            ("https://h/a.jpg?x=1&amp;y=2", "https://h/a.jpg?x=1&y=2"),
            ("a&#123;b&#125;", "a{b}"),
            ("a&#x7B;b&#X7d;", "a{b}"),
            ("a&#123b", "a{b"),
            ("bare & alone", "bare & alone"),
            ("q=1&w=2", "q=1&w=2"),
            ("x&amp=1", "x&amp=1"),
            ("x&ampy", "x&ampy"),
            ("x&amp y", "x& y"),
            ("&quot;q&quot;", "\"q\""),
            ("&unknown;", "&unknown;"),
            ("&#0;&#xD800;&#99999999999;", "\u{fffd}\u{fffd}\u{fffd}"),
            ("&#;&#x;", "&#;&#x;"),
            ("tail&", "tail&"),
            ("中文&lt;图", "中文<图"),
            // the whole HTML5 table, not only the names seen in URLs
            ("a&hellip;b&rarr;c", "a\u{2026}b\u{2192}c"),
            ("&NotGreaterFullEqual;", "\u{2267}\u{338}"),
            ("&AElig&AEligx", "\u{c6}&AEligx"),
        ] {
            assert_eq!(decode(raw), want, "{raw}");
        }
    }

    #[test]
    fn mapped_decoding_is_decoding_and_maps_back_to_whole_references() {
        for raw in [
            "plain",
            "a&amp;b&#x9;c&nbsp;d&#1;",
            "x&amp=1&ampy&amp y&AElig&AEligx&#;&#x;&#65x&#x41g&",
            "&NotGreaterFullEqual;&hellip;tail&",
            "u&#xA;&#xA;1x, v&#10 2x",
            "&quot/s.png&quot)",
            "中&lt;文&#x1F600;",
        ] {
            let d = decode_mapped(raw);
            assert_eq!(d.text, decode(raw), "{raw}");
            // every decoded range maps to a raw range that splits no reference, and literal
            // text maps to itself
            let splits = |at: usize| d.refs.iter().any(|r| r.raw.start < at && at < r.raw.end);
            for start in 0..=d.text.len() {
                for end in start..=d.text.len() {
                    let r = d.raw_range(start..end);
                    assert!(
                        r.start <= r.end && r.end <= raw.len(),
                        "{raw} {start}..{end}"
                    );
                    assert!(
                        !splits(r.start) && !splits(r.end),
                        "{raw} {start}..{end} {r:?}"
                    );
                    let literal = !d.refs.iter().any(|x| x.at < end && start < x.at + x.len);
                    if literal && d.text.is_char_boundary(start) && d.text.is_char_boundary(end) {
                        assert_eq!(&raw[r], &d.text[start..end], "{raw} {start}..{end}");
                    }
                }
            }
        }
        let d = decode_mapped("a&#x9;b");
        assert_eq!(d.raw_range(0..1), 0..1);
        assert_eq!(d.raw_range(1..2), 1..6);
        assert_eq!(d.raw_range(2..3), 6..7);
        assert!(decode_mapped("&quot/x").open_reference_ends_at(5));
        assert!(!decode_mapped("&quot;/x").open_reference_ends_at(6));
    }

    #[test]
    fn escaping_round_trips() {
        assert_eq!(escape("a?x=1&y=2", '"'), "a?x=1&amp;y=2");
        assert_eq!(escape("say \"hi\" 'x'", '"'), "say &quot;hi&quot; 'x'");
        assert_eq!(escape("say \"hi\" 'x'", '\''), "say \"hi\" &#39;x&#39;");
        assert!(matches!(escape("plain", '"'), Cow::Borrowed(_)));
        for v in ["", "plain", "a&b\"c'd&&", "'\"'"] {
            for q in ['"', '\''] {
                let mut out = String::from("x");
                escape_into(&mut out, v, q);
                assert_eq!(out, format!("x{}", escape(v, q)));
            }
        }
        for v in ["a&b", "&amp;", "q\"'&#123;"] {
            assert_eq!(decode(&escape(v, '"')), v);
            assert_eq!(decode(&escape(v, '\'')), v);
        }
    }
}
