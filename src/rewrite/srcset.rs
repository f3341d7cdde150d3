//! `srcset` values, parsed the way the HTML standard parses them ("parse a srcset attribute"):
//! a URL is a run of non-whitespace (so it may contain commas, as in `…jpg@s_2,w_820,h_547`),
//! trailing commas end a candidate without descriptors, and a descriptor list ends at the first
//! comma outside parentheses.
//!
//! Pure. Candidates are byte ranges into the value, so a rewrite replaces the URLs and keeps
//! every descriptor, comma and odd whitespace exactly as written.

use std::ops::Range;

/// One image candidate: where its URL and its (trimmed) descriptors are in the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub url: Range<usize>,
    pub descriptors: Range<usize>,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

/// The candidates of a `srcset` value, in order.
pub fn parse(value: &str) -> Vec<Candidate> {
    let b = value.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        while pos < b.len() && (is_space(b[pos]) || b[pos] == b',') {
            pos += 1;
        }
        if pos >= b.len() {
            return out;
        }
        let start = pos;
        while pos < b.len() && !is_space(b[pos]) {
            pos += 1;
        }
        let mut end = pos;
        if b[end - 1] == b',' {
            while end > start && b[end - 1] == b',' {
                end -= 1;
            }
            out.push(Candidate {
                url: start..end,
                descriptors: end..end,
            });
            continue;
        }
        let mut in_parens = false;
        let desc_start = pos;
        while pos < b.len() {
            match b[pos] {
                b'(' => in_parens = true,
                b')' => in_parens = false,
                b',' if !in_parens => break,
                _ => {}
            }
            pos += 1;
        }
        let mut ds = desc_start;
        let mut de = pos;
        while ds < de && is_space(b[ds]) {
            ds += 1;
        }
        while de > ds && is_space(b[de - 1]) {
            de -= 1;
        }
        out.push(Candidate {
            url: start..end,
            descriptors: ds..de,
        });
        pos += 1;
    }
}

/// `value` with the URL of each candidate replaced by `map(url)`; `None` keeps it.
pub fn replace_urls(value: &str, mut map: impl FnMut(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(value.len() * 2);
    let mut last = 0;
    let mut changed = false;
    for c in parse(value) {
        if let Some(new) = map(&value[c.url.clone()]) {
            out.push_str(&value[last..c.url.start]);
            out.push_str(&new);
            last = c.url.end;
            changed = true;
        }
    }
    changed.then(|| {
        out.push_str(&value[last..]);
        out
    })
}

/// A `srcset` value from `(url, width)` pairs: `u1 320w, u2 640w`.
pub fn widths(candidates: &[(String, u32)]) -> String {
    let mut out = String::new();
    for (i, (url, w)) in candidates.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(url);
        out.push(' ');
        out.push_str(&w.to_string());
        out.push('w');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(value: &str) -> Vec<(&str, &str)> {
        parse(value)
            .into_iter()
            .map(|c| (&value[c.url], &value[c.descriptors]))
            .collect()
    }

    #[test]
    fn parsing_table() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("a.jpg", &[("a.jpg", "")]),
            ("a.jpg 2x", &[("a.jpg", "2x")]),
            (
                "https://img.ithome.com/a.jpg@s_2,w_820,h_547 2x",
                &[("https://img.ithome.com/a.jpg@s_2,w_820,h_547", "2x")],
            ),
            (
                "/file/464001776/1/OT3p5F-BpWc.201999/cf29b6606b9abd380a, 1200w",
                &[
                    (
                        "/file/464001776/1/OT3p5F-BpWc.201999/cf29b6606b9abd380a",
                        "",
                    ),
                    ("1200w", ""),
                ],
            ),
            ("a.jpg 1x,b.jpg 2x", &[("a.jpg", "1x"), ("b.jpg", "2x")]),
            (
                "  \n\ta.jpg \t 320w ,\n  b.jpg\t640w  ,, ",
                &[("a.jpg", "320w"), ("b.jpg", "640w")],
            ),
            ("a.jpg,,, b.jpg", &[("a.jpg", ""), ("b.jpg", "")]),
            (
                "a.jpg 100w 50h (x, y) , b.jpg",
                &[("a.jpg", "100w 50h (x, y)"), ("b.jpg", "")],
            ),
            ("a,b.jpg 1x, c.jpg", &[("a,b.jpg", "1x"), ("c.jpg", "")]),
            ("", &[]),
            (" , ,", &[]),
            ("a.jpg (unclosed, 2x", &[("a.jpg", "(unclosed, 2x")]),
        ];
        for (value, want) in cases {
            assert_eq!(pairs(value), *want, "{value:?}");
        }
    }

    #[test]
    fn replacing_keeps_descriptors_and_whitespace() {
        let v = " a.jpg@s_2,w_1 2x ,\n b.jpg 640w";
        let out = replace_urls(v, |u| Some(format!("[{u}]"))).unwrap();
        assert_eq!(out, " [a.jpg@s_2,w_1] 2x ,\n [b.jpg] 640w");
        let out = replace_urls(v, |u| (u == "b.jpg").then(|| "B".to_string())).unwrap();
        assert_eq!(out, " a.jpg@s_2,w_1 2x ,\n B 640w");
        assert_eq!(replace_urls(v, |_| None), None);
    }

    #[test]
    fn generated_srcsets_parse_back() {
        let s = widths(&[("u?a=1&b=2".into(), 320), ("v".into(), 640)]);
        assert_eq!(s, "u?a=1&b=2 320w, v 640w");
        assert_eq!(pairs(&s), vec![("u?a=1&b=2", "320w"), ("v", "640w")]);
    }
}
