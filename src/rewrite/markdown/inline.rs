//! Paragraphs that need no Markdown parser: when pulldown-cmark would find in a block exactly
//! the tags the HTML tokenizer finds there, and no image, the block can go to
//! [`super::html`] whole instead of tag by tag through pulldown-cmark's inline pass (which
//! costs more than the tokenizer, per byte, on the text between the tags).
//!
//! That is certain when nothing in the block can hide a tag from one reader and not the other:
//! no code span (`` ` ``), no backslash escape, no image (`![`), no link destination that could
//! be `<…>` (`](`), no comment, declaration or processing instruction (`<!`, `<?`), no CSS
//! `url(` (where the `style` rules read the span), and every `<` that starts a tag for the
//! HTML tokenizer (`<` and a letter, `</` and anything) is a complete CommonMark open or closing
//! tag on one line, not one that switches the tokenizer (raw text, script, foreign content) or
//! that matters for the next tags (`picture`, `noscript`). A `<` before anything else is text to
//! both. When the first line holds a single tag, pulldown-cmark makes the block an HTML block
//! (type 7) and hands it over whole anyway, which is what this does too.

use crate::rewrite::{
    scan,
    tags::{name_hash, tag},
};

/// Whether the Markdown block `b` can be read as HTML alone (see the module documentation).
pub(super) fn plain_html(b: &[u8]) -> bool {
    if memchr::memchr2(b'`', b'\\', b).is_some()
        || memchr::memmem::find(b, b"![").is_some()
        || memchr::memmem::find(b, b"](").is_some()
        || scan::has_css_url(b)
    {
        return false;
    }
    let mut pos = 0;
    while let Some(found) = memchr::memchr(b'<', &b[pos..]) {
        let at = pos + found;
        let tag = match b.get(at + 1) {
            Some(c) if c.is_ascii_alphabetic() => open_tag(&b[at..]),
            Some(b'/') => closing_tag(&b[at..]),
            Some(b'!' | b'?') => None,
            _ => Some(1),
        };
        let Some(len) = tag else { return false };
        pos = at + len;
    }
    true
}

/// Tags after which the HTML tokenizer reads differently, or that the handlers read with the
/// tags after them: never taken for plain.
const SWITCHES: &[u64] = &[
    tag::SCRIPT,
    tag::STYLE,
    tag::TEXTAREA,
    tag::TITLE,
    tag::IFRAME,
    tag::XMP,
    tag::NOEMBED,
    tag::NOFRAMES,
    tag::NOSCRIPT,
    tag::PLAINTEXT,
    tag::SVG,
    tag::MATH,
    tag::PICTURE,
];

fn is_space(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// The tag name at the start of `s` (CommonMark: a letter, then letters, digits and `-`): its
/// length, if it is one the tokenizer reads plainly.
fn tag_name(s: &[u8]) -> Option<usize> {
    let len = s
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'-'))
        .unwrap_or(s.len());
    let ok =
        s.first().is_some_and(u8::is_ascii_alphabetic) && !SWITCHES.contains(&name_hash(&s[..len]));
    ok.then_some(len)
}

/// The length of the CommonMark open tag at the start of `s` (which starts with `<`), all on
/// one line: a name, attributes each after whitespace (`name`, or `name = value` with the value
/// unquoted, `'…'` or `"…"`), whitespace, an optional `/`, `>`.
fn open_tag(s: &[u8]) -> Option<usize> {
    let mut i = 1 + tag_name(&s[1..])?;
    loop {
        let spaced = s[i..].iter().take_while(|&&c| is_space(c)).count();
        i += spaced;
        match *s.get(i)? {
            b'>' => return Some(i + 1),
            b'/' => return (s.get(i + 1) == Some(&b'>')).then_some(i + 2),
            c if spaced > 0 && (c.is_ascii_alphabetic() || c == b'_' || c == b':') => {}
            _ => return None,
        }
        // attribute name
        i += s[i..]
            .iter()
            .take_while(|&&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-'))
            .count();
        // value specification
        let before_eq = s[i..].iter().take_while(|&&c| is_space(c)).count();
        if s.get(i + before_eq) != Some(&b'=') {
            continue;
        }
        i += before_eq + 1;
        i += s[i..].iter().take_while(|&&c| is_space(c)).count();
        match *s.get(i)? {
            q @ (b'"' | b'\'') => {
                let len = s[i + 1..].iter().position(|&c| c == q || c == b'\n')?;
                if s[i + 1 + len] != q {
                    return None;
                }
                i += len + 2;
            }
            _ => {
                let len = s[i..]
                    .iter()
                    .take_while(|&&c| {
                        !(c.is_ascii_whitespace()
                            || c.is_ascii_control()
                            || matches!(c, b'"' | b'\'' | b'=' | b'<' | b'>' | b'`'))
                    })
                    .count();
                if len == 0 {
                    return None;
                }
                i += len;
            }
        }
    }
}

/// The length of the CommonMark closing tag at the start of `s` (`</name`, whitespace, `>`).
fn closing_tag(s: &[u8]) -> Option<usize> {
    let mut i = 2 + tag_name(s.get(2..)?)?;
    i += s[i..].iter().take_while(|&&c| is_space(c)).count();
    (s.get(i) == Some(&b'>')).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Config,
        rewrite::{
            blocks, front_matter,
            tests::{corpus_posts, xorshift},
            Kind, Rewriter,
        },
    };

    /// Rewrites `doc` with the fast path and with pulldown-cmark alone: the same output and
    /// counts; how many blocks took the fast path.
    fn same_as_pulldown(doc: &str) -> usize {
        let fast = Rewriter::new(&Config::default());
        let mut reference = Rewriter::new(&Config::default());
        reference.pulldown_only = true;
        let got = fast.rewrite_document(doc.as_bytes(), Kind::Markdown, None);
        let want = reference.rewrite_document(doc.as_bytes(), Kind::Markdown, None);
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "{doc:?}");
        let body = &doc.as_bytes()[front_matter::split(doc.as_bytes()).map_or(0, |f| f.body)..];
        let blocks = blocks::split(body).unwrap_or_default();
        blocks
            .iter()
            .filter(|b| matches!(b, blocks::Block::Text(r) if plain_html(&body[r.clone()])))
            .count()
    }

    #[test]
    fn the_corpus_comes_out_as_pulldown_cmark_reads_it() {
        let mut fast = 0;
        for post in corpus_posts() {
            fast += same_as_pulldown(&String::from_utf8(post).expect("UTF-8 post"));
        }
        assert!(fast >= 3, "only {fast} corpus blocks took the fast path");
    }

    /// Random paragraphs of lines that hide tags from one reader or the other, or from neither.
    #[test]
    fn random_paragraphs_come_out_as_pulldown_cmark_reads_them() {
        const LINES: &[&str] = &[
            "text <img src=//h/a.jpg> and more",
            "<img src=\"//h/b.jpg\" alt='x y' width=20>",
            "<a href=//h/c.png><img src=//h/d.jpg /></a>",
            "a < b, <br/> c",
            "a<b then <img src=//h/e.jpg>",
            "`<img src=//h/f.jpg>`",
            "\\<img src=//h/g.jpg>",
            "<!-- <img src=//h/h.jpg> -->",
            "<!-- open",
            "![i](//h/i.jpg)",
            "[l](<img src=//h/j.jpg>)",
            "<img src=//h/k.jpg @click=y>",
            "<img src=//h/l.jpg alt='a'b>",
            "<img src=//h/m.jpg",
            "alt=x>",
            "</ <img src=//h/n.jpg>",
            "</3 <img src=//h/o.jpg>",
            "<textarea><img src=//h/p.jpg>",
            "</textarea> <img src=//h/q.jpg>",
            "<noscript><img src=//h/r.jpg></noscript>",
            "<picture><source srcset=//h/s.jpg></picture>",
            "<span style=\"background:url(//h/t.jpg)\">x</span>",
            "<strong>",
            "<x-y z:w=1>text</x-y>",
            "<IMG SRC=//h/u.jpg>",
            "<img src=\"a<b\" data-src=//h/v.jpg>",
            "&lt;img src=//h/w.jpg&gt; &amp;",
            "<video poster=//h/x.jpg></video>",
            "<a href='//h/y.jpg'>big</a>",
            "plain words",
        ];
        let mut next = xorshift(0x2545_F491_4F6C_DD1D_u64);
        let mut fast = 0;
        for _ in 0..3_000 {
            let mut doc = String::new();
            for _ in 0..1 + next(8) {
                doc.push_str(LINES[next(LINES.len())]);
                doc.push_str(if next(4) == 0 { "\n\n" } else { "\n" });
            }
            fast += same_as_pulldown(&doc);
        }
        assert!(fast > 500, "only {fast} blocks took the fast path");
    }

    #[test]
    fn plain_table() {
        for (block, want) in [
            ("just text", true),
            (
                "text <img src=\"//h/a.jpg\" alt='x y' data-x=1 hidden> more",
                true,
            ),
            ("<a href=x><img src=y /></a>", true),
            ("<x-y z:w.v_u=1>", true),
            ("a < b and <br/>", true),
            ("<img src=\"a<b\">", true),
            ("</p >", true),
            ("`<img src=x>`", false),
            ("\\<img src=x>", false),
            ("![i](x.png)", false),
            ("[l](<img src=x>)", false),
            ("<!-- c --><img src=x>", false),
            ("<?x?>", false),
            ("a<b then <img src=x>", false),
            ("<img src=x @click=y>", false),
            ("<img src=x alt='a'b>", false),
            ("<img src=x\nalt=y>", false),
            ("<img src='x\ny'>", false),
            ("<img src=>", false),
            ("</ <img src=x>", false),
            ("</p class=x>", false),
            ("</>", false),
            ("<textarea><img src=x></textarea>", false),
            ("<NoScript><img src=x>", false),
            ("<picture><source srcset=x>", false),
            ("<svg><img src=x>", false),
            ("<span style=\"background:url(x)\">", false),
            ("<img src=x", false),
            ("<imgsrc=x>", false),
        ] {
            assert_eq!(plain_html(block.as_bytes()), want, "{block:?}");
        }
    }
}
