//! Character references in attribute values: decoding what an author wrote before a URL is
//! parsed, and escaping what the rewriter writes back.
//!
//! `lol_html` hands attribute values over raw (`&amp;` stays `&amp;`) and, when asked to set
//! one, escapes only `"`; this module owns both directions so a URL like `a.jpg?x=1&amp;y=2`
//! is read as `a.jpg?x=1&y=2` and every value written is valid inside its quotes. It knows the
//! references that occur in URLs (numeric ones and a short list of named ones); an unknown name
//! is kept literally, which is what a browser does with a bare `&` too.

use std::borrow::Cow;

/// Named references decoded in attribute values, with the ones that a browser also accepts
/// without the final `;` (legacy) marked.
const NAMED: &[(&str, char, bool)] = &[
    ("amp", '&', true),
    ("lt", '<', true),
    ("gt", '>', true),
    ("quot", '"', true),
    ("apos", '\'', false),
    ("nbsp", '\u{a0}', true),
    ("lpar", '(', false),
    ("rpar", ')', false),
    ("comma", ',', false),
    ("sol", '/', false),
    ("quest", '?', false),
    ("equals", '=', false),
    ("num", '#', false),
    ("percnt", '%', false),
    ("lbrace", '{', false),
    ("rbrace", '}', false),
    ("lcub", '{', false),
    ("rcub", '}', false),
    ("colon", ':', false),
    ("semi", ';', false),
    ("excl", '!', false),
    ("commat", '@', false),
    ("copy", '\u{a9}', true),
    ("reg", '\u{ae}', true),
];

/// Decodes the character references of an attribute value (HTML's attribute rules: a legacy
/// name without `;` followed by `=` or an alphanumeric is not a reference).
pub fn decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains('&') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match reference(rest) {
            Some((c, used)) => {
                out.push(c);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character a reference at the start of `s` (which begins with `&`) stands for, and how
/// many bytes it spans.
fn reference(s: &str) -> Option<(char, usize)> {
    let body = &s[1..];
    if let Some(num) = body.strip_prefix('#') {
        let (digits, radix, skip) = match num.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 3),
            None => (num, 10, 2),
        };
        let len = digits
            .bytes()
            .take_while(|b| (*b as char).is_digit(radix))
            .count();
        if len == 0 {
            return None;
        }
        let value = match len {
            1..=8 => u32::from_str_radix(&digits[..len], radix).unwrap_or(u32::MAX),
            _ => u32::MAX,
        };
        let c = match value {
            0 => '\u{fffd}',
            v => char::from_u32(v).unwrap_or('\u{fffd}'),
        };
        let semi = usize::from(digits[len..].starts_with(';'));
        return Some((c, skip + len + semi));
    }
    let len = body.bytes().take_while(u8::is_ascii_alphanumeric).count();
    let name = &body[..len];
    let &(_, c, legacy) = NAMED.iter().find(|(n, _, _)| *n == name)?;
    if body[len..].starts_with(';') {
        return Some((c, 1 + len + 1));
    }
    // Without `;`, only legacy names count, and not before `=` (HTML's attribute rule).
    (legacy && !body[len..].starts_with('=')).then_some((c, 1 + len))
}

/// Escapes `value` for an attribute quoted with `quote` (`"` or `'`): `&` and the quote.
pub fn escape(value: &str, quote: char) -> Cow<'_, str> {
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
pub fn escape_into(out: &mut String, value: &str, quote: char) {
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
