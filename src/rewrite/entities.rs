//! Character references in attribute values: decoding what an author wrote before a URL is
//! parsed, and escaping what the rewriter writes back.
//!
//! `lol_html` hands attribute values over raw (`&amp;` stays `&amp;`) and, when asked to set
//! one, escapes only `"`; this module owns both directions so a URL like `a.jpg?x=1&amp;y=2`
//! is read as `a.jpg?x=1&y=2` and every value written is valid inside its quotes. Decoding
//! follows HTML's attribute-value rules with the whole named-reference table (`htmlize`).

use std::borrow::Cow;

/// Decodes the character references of an attribute value (HTML's attribute rules: a legacy
/// name without `;` followed by `=` or an alphanumeric is not a reference).
pub(super) fn decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains('&') {
        return Cow::Borrowed(raw);
    }
    htmlize::unescape_attribute(raw)
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
