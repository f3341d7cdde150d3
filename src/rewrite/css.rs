//! `url(…)` references inside a `style` attribute (`background-image: url("…")`).
//!
//! Pure and deliberately small: it finds `url(` tokens (any case), with a double-quoted,
//! single-quoted or bare argument, and reports the byte range of the URL inside the
//! parentheses or quotes. It does not implement CSS escapes or comments; a style attribute
//! holding those is left as it is rather than guessed at.

use std::ops::Range;

/// Byte ranges of the URLs of every `url(…)` in `css`.
pub fn urls(css: &str) -> Vec<Range<usize>> {
    let b = css.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(found) = find_url_open(&b[pos..]) {
        let mut i = pos + found + 4;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let Some(&first) = b.get(i) else { break };
        let range = if first == b'"' || first == b'\'' {
            let start = i + 1;
            match b[start..].iter().position(|&c| c == first) {
                Some(len) => start..start + len,
                None => break,
            }
        } else {
            let len = b[i..]
                .iter()
                .position(|&c| c == b')' || c.is_ascii_whitespace())
                .unwrap_or(b.len() - i);
            if !b[i + len..].contains(&b')') {
                break;
            }
            i..i + len
        };
        pos = range.end;
        if !range.is_empty() && !css[range.clone()].contains('\\') {
            out.push(range);
        }
    }
    out
}

/// Offset of the next `url(` (ASCII case-insensitive) that is not the tail of an identifier.
fn find_url_open(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while from + 4 <= b.len() {
        let at = b[from..]
            .windows(4)
            .position(|w| w.eq_ignore_ascii_case(b"url("))?;
        let at = from + at;
        let ident_tail = at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'-');
        if !ident_tail {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(css: &str) -> Vec<&str> {
        urls(css).into_iter().map(|r| &css[r]).collect()
    }

    #[test]
    fn url_table() {
        let cases: &[(&str, &[&str])] = &[
            ("background:url(https://h/a.jpg)", &["https://h/a.jpg"]),
            (
                "background: URL( \"https://h/a b.jpg\" ) no-repeat",
                &["https://h/a b.jpg"],
            ),
            (
                "background-image:url('//h/a.png?x=(1)')",
                &["//h/a.png?x=(1)"],
            ),
            ("a:url(x.png); b: url(y.png)", &["x.png", "y.png"]),
            ("max-width: 400px; margin: 20px auto", &[]),
            ("width:undefinedpx", &[]),
            ("background:myurl(x.png)", &[]),
            ("background:url(", &[]),
            ("background:url('unterminated", &[]),
            ("background:url(no-close", &[]),
            ("background:url(\"\")", &[]),
            ("background:url(a\\)b.png)", &[]),
        ];
        for (css, want) in cases {
            assert_eq!(found(css), *want, "{css}");
        }
    }
}
