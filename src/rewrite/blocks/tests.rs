//! The splitter against pulldown-cmark: wherever it answers, the events the rewriter reads
//! (HTML blocks, inline HTML, images, definitions) are the ones of a parse of the whole body.

use super::*;
use crate::rewrite::{
    front_matter, markdown,
    tests::{corpus_posts, xorshift},
};
use pulldown_cmark::{Event, Parser, Tag};

/// What the rewriter reads of a parse of `text`, ranges moved by `shift`.
fn events(text: &str, shift: usize) -> Vec<String> {
    let mut iter = Parser::new_ext(text, markdown::OPTIONS).into_offset_iter();
    let mut seen = Vec::new();
    for (event, r) in iter.by_ref() {
        let r = r.start + shift..r.end + shift;
        match event {
            Event::Start(Tag::HtmlBlock) => seen.push(format!("block {r:?}")),
            Event::InlineHtml(_) => seen.push(format!("inline {r:?}")),
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                id,
                ..
            }) => seen.push(format!("image {r:?} {link_type:?} {dest_url} {id}")),
            _ => {}
        }
    }
    for (label, def) in iter.reference_definitions().iter() {
        seen.push(format!("def {label} {:?}", def.span));
    }
    seen
}

/// Checks `body` when the splitter answers; whether it did.
fn agrees(body: &str) -> bool {
    let Some(blocks) = split(body.as_bytes()) else {
        return false;
    };
    let mut got = Vec::new();
    for b in blocks {
        match b {
            Block::Html(r) => got.push(format!("block {r:?}")),
            Block::Text(r) | Block::Rest(r) => got.extend(events(&body[r.clone()], r.start)),
        }
    }
    assert_eq!(got, events(body, 0), "{body:?}");
    true
}

fn corpus_bodies() -> Vec<String> {
    corpus_posts()
        .into_iter()
        .map(|doc| {
            let at = front_matter::split(&doc).map_or(0, |f| f.body);
            String::from_utf8(doc[at..].to_vec()).expect("UTF-8 post")
        })
        .collect()
}

#[test]
fn the_corpus_splits_as_pulldown_cmark_parses_it() {
    let bodies = corpus_bodies();
    let answered = bodies.iter().filter(|b| agrees(b)).count();
    assert!(answered >= 40, "the splitter answered for {answered} posts");
    // every prefix of a few posts: a cut can fall anywhere in a line or a block
    for body in bodies.iter().step_by(7) {
        for cut in (0..=body.len()).filter(|&c| body.is_char_boundary(c)) {
            agrees(&body[..cut]);
        }
    }
}

const SNIPPETS: &[&str] = &[
    "<div>\n<img src=a>\n\n<p>x</p>\n",
    "<div>\n  \n<img src=a>",
    "<div>\n\t\n<img src=a>",
    "   <p>x\n\n    <img src=a>\n",
    "<pre>\n\n<img src=a>\n</pre>\n<img src=b>\n\n<img src=c>",
    "<PRE>\n\n<img src=a>\n</PRE>\n\n<img src=b>",
    "<pre>x</pre><img src=a>\n\n<img src=b>",
    "<pre\n<img src=a>",
    "<pre",
    "<pr",
    "<styles>\n\n<img src=a>",
    "<script>\n\n<img src=a>\n</script>",
    "<textarea>\n\n<img src=a></textarea>",
    "<!-- a\n\n<img src=a>\n-->\n<img src=b>",
    "<!---->\n\n<img src=a>",
    "<?php\n\n?><img src=a>",
    "<!DOCTYPE html>\n<img src=a>\n\n<img src=b>",
    "<![CDATA[\n\n]]><img src=a>",
    "<!x\n\n<img src=a>",
    "<h1>t</h1>\n<img src=a>",
    "</div>\n<img src=a>",
    "<div/>\n<img src=a>",
    "<div/x>\n<img src=a>",
    "<divx>\n<img src=a>\n\n<img src=b>",
    "<img src=a>\n<pre>\n\n<img src=b>",
    "text <img src=a>\n<pre>\n\n<img src=b></pre>",
    "text\n<div>\n<img src=a>\n\n<img src=b>",
    "text\n<span>\n<img src=a>\n\n<img src=b>",
    "<span>\n<img src=a>\n\n<img src=b>",
    "<span>x\n<div>\n\n<img src=b>",
    "text\n<ul>\n<pre>\n\n<img src=a></pre>",
    "<span>\n<ul>\n<pre>\n\n<img src=a></pre>",
    "text\n <ul>\n- <pre>\n\n<img src=a></pre>",
    "text\n\t<ul>\n<pre>\n\n<img src=a></pre>",
    "text\n  \t<ul>\n<pre>\n\n<img src=a></pre>",
    "text\n    <ul>\n<pre>\n\n<img src=a></pre>",
    "<a href=x><img src=a></a>\ntext ![i](//h/b.jpg) `<img src=c>` \\<img src=d>\n",
    "text\n    <pre>\n\n<img src=a>",
    "text\n\t<pre>\n\n<img src=a>",
    "text\n  \t<pre>\n\n<img src=a>",
    "text\n- <img src=a>",
    "text\n1. <img src=a>",
    "text\n===\n<img src=a>",
    "a | b\n--|--\n<img src=a> | x",
    "a | b\n    --|--\n<img src=a> | x",
    "![a][r]\n\n[r]: //h/a.jpg",
    "![a][r]\n\n  [r]: //h/a.jpg",
    "text[^1]\n\n[^1]: <img src=a>",
    "> <img src=a>",
    "    <img src=a>\n\n<img src=b>",
    "\t<img src=a>",
    "```\n<img src=a>\n```",
    "~~~\n<img src=a>",
    "# <img src=a>",
    "* * *\n<img src=a>",
    "<img src=a>\r\n\r\n<img src=b>",
    "<img src=a>\n\x0c\n<img src=b>",
    "<img src=a>\0\n\n<img src=b>",
    "text ![a](<//h/a b.jpg>) and <b>x\n</b>\n",
    "\u{3000}<img src=a>\n\n<img src=b>",
    "",
    "\n",
    "\n\n   \n",
    "<",
    "<div",
    "<div>",
];

#[test]
fn snippets_split_as_pulldown_cmark_parses_them() {
    for s in SNIPPETS {
        agrees(s);
        for cut in (0..s.len()).filter(|&c| s.is_char_boundary(c)) {
            agrees(&s[..cut]);
        }
        // and after a post's worth of simple blocks
        agrees(&format!("<p>a</p>\n\ntext\n\n{s}\n\n<div>\nx\n</div>\n"));
    }
}

#[test]
fn split_table() {
    use Block::{Html, Rest, Text};
    let cases: &[(&str, Option<&[Block]>)] = &[
        ("", Some(&[])),
        ("<div>\na\n\n b\n", Some(&[Html(0..8), Text(9..12)])),
        ("  <p>x</p>", Some(&[Html(2..10)])),
        (
            "<pre>\n\n</pre>\nx\n\ny",
            Some(&[Html(0..14), Text(14..16), Text(17..18)]),
        ),
        ("<span>\n\n", Some(&[Text(0..7)])),
        ("text\n<pre>\n", Some(&[Text(0..5), Html(5..11)])),
        ("<span>\n<pre>\n", None),
        ("<p>x</p>\n\n- a", Some(&[Html(0..9), Rest(10..13)])),
        ("<p>x</p>\n\na\n---\n", Some(&[Html(0..9), Rest(10..16)])),
        (
            "<p>x</p>\n\n    <img src=a>",
            Some(&[Html(0..9), Rest(10..25)]),
        ),
        ("![i][r]\n\n- a\n\n[r]: //h/a.jpg", None),
        ("- a", None),
        ("    <p>", None),
        ("a\r\n", None),
    ];
    for (body, want) in cases {
        assert_eq!(split(body.as_bytes()).as_deref(), *want, "{body:?}");
    }
}

/// Random bodies made of lines that open, continue and close every kind of block the splitter
/// decides itself, plus a few it must refuse: wherever it answers, pulldown-cmark agrees.
#[test]
fn random_line_mixes_split_as_pulldown_cmark_parses_them() {
    const LINES: &[&str] = &[
        "",
        "   ",
        "\t",
        "text <img src=a> and ![i](//h/b.jpg)",
        "more text `<img src=c>`",
        "<div>",
        "</div>",
        "  <p>x</p>",
        "<span>",
        "<span>x</span> text",
        "<pre>",
        "<PRE>",
        "</pre>",
        "x</pre> <img src=a>",
        "<script>",
        "</script>",
        "<style>",
        "</STYLE>",
        "<textarea>",
        "</textarea>",
        "<!-- c",
        "-->",
        "<!---->",
        "<?x",
        "?>",
        "<!DOCTYPE x>",
        "<![CDATA[",
        "]]>",
        "<img src=a>",
        "<divx>",
        "<h1>t</h1>",
        "   <table>",
        "    <pre>",
        " \t<pre>",
        "<a href=x>",
        "- item",
        "> quote",
        "[r]: //h/a.jpg",
        "> [q]: //h/q.jpg",
        "![r][r] ![q] ![n][]",
        "```",
        "    <img src=i>",
        "x\n---",
        "# <img src=h>",
    ];
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15_u64);
    let mut answered = 0;
    for _ in 0..20_000 {
        let lines = 1 + next(10);
        let body: Vec<&str> = (0..lines).map(|_| LINES[next(LINES.len())]).collect();
        let mut body = body.join("\n");
        if next(2) == 0 {
            body.push('\n');
        }
        answered += usize::from(agrees(&body));
    }
    assert!(
        answered > 5_000,
        "the splitter answered only {answered} times"
    );
}

#[test]
fn odd_controls_are_found_anywhere() {
    for len in [0, 1, 63, 64, 65, 200] {
        let clean = vec![b'a'; len];
        assert!(!has_odd_controls(&clean));
        for c in [b'\r', 0x0b, 0x0c, 0] {
            for at in (0..len).step_by(7).chain(len.checked_sub(1)) {
                let mut dirty = clean.clone();
                dirty[at] = c;
                assert!(has_odd_controls(&dirty), "{c} at {at} of {len}");
            }
        }
    }
    assert!(!has_odd_controls(b"\t\n <p>\n"));
}
