//! Document-level tables: kinds, Markdown spans, front matter, exactness and idempotence.

use super::*;
use crate::config::Secret;

/// A rewriter on `https://img.example` that writes URLs only (no added attributes), unless
/// `configure` says otherwise.
pub(super) fn rewriter(configure: impl FnOnce(&mut Config)) -> Rewriter {
    let mut c = Config::default();
    c.server.public_url = "https://img.example".into();
    c.rewrite.widths = Vec::new();
    c.rewrite.lazy = false;
    c.rewrite.decoding = false;
    c.rewrite.dimensions = false;
    c.rewrite.eager = 0;
    c.security.allowed_referers = vec!["blog.example".parse().unwrap()];
    configure(&mut c);
    Rewriter::new(&c)
}

/// The imgrelay URL of `source` as it appears in an HTML attribute (`&` escaped).
pub(super) fn proxied(source: &str) -> String {
    let v = rewriter(|_| {}).resolver.variant(source, None);
    v.replace('&', "&amp;")
}

/// The imgrelay URL of `source` as it appears in Markdown or front matter.
pub(super) fn proxied_raw(source: &str) -> String {
    rewriter(|_| {}).resolver.variant(source, None)
}

pub(super) fn run(rw: &Rewriter, kind: Kind, input: &str, base: Option<&str>) -> String {
    let base = base.map(|b| Url::parse(b).unwrap());
    let out = rw
        .rewrite_document(input.as_bytes(), kind, base.as_ref())
        .unwrap();
    let once = String::from_utf8(out.bytes).unwrap();
    let twice = rw
        .rewrite_document(once.as_bytes(), kind, base.as_ref())
        .unwrap();
    assert_eq!(
        String::from_utf8(twice.bytes).unwrap(),
        once,
        "twice = once for {input:?}"
    );
    assert_eq!(twice.stats.rewritten, 0, "{input:?}");
    once
}

#[test]
fn kinds_are_detected() {
    for (doc, kind) in [
        ("---\na: 1\n---\n<p>x</p>", Kind::Markdown),
        ("\n+++\na = 1\n+++\n", Kind::Markdown),
        ("  <div>x</div>", Kind::Html),
        ("", Kind::Html),
        ("# Title\n\n![a](b)", Kind::Markdown),
    ] {
        assert_eq!(Kind::Auto.detect(doc.as_bytes()), kind, "{doc:?}");
    }
    assert_eq!(Kind::from_path("a/b.MD".as_ref()), Kind::Markdown);
    assert_eq!(Kind::from_path("a/b.htm".as_ref()), Kind::Html);
    assert_eq!(Kind::from_path("-".as_ref()), Kind::Auto);
}

#[test]
fn documents_without_images_are_byte_identical() {
    let rw = rewriter(|c| *c = Config::default());
    let all = [Kind::Auto, Kind::Html, Kind::Markdown];
    let markdown = [Kind::Auto, Kind::Markdown];
    for (doc, kinds) in [
        ("", &all[..]),
        ("<p>plain &amp; simple</p>", &all),
        (
            "---\ntitle: x\nthumbnail: ''\n---\n\ntext with `<img src=https://h/a.jpg>` in code\n",
            &markdown,
        ),
        (
            "<pre><dependency><groupId>x</groupId></pre><!-- <img src=\"https://h/a.jpg\"> -->",
            &all,
        ),
        (
            "<a href=\"https://h/page.html\">link</a> <img src=\"data:image/png;base64,AA\">",
            &all,
        ),
        ("<img src=/relative.png><video poster=/p.jpg></video>", &all),
        (
            "```\n![a](https://h/a.jpg)\n```\n\n    <img src=\"https://h/b.jpg\">\n",
            &[Kind::Markdown],
        ),
        // already rewritten, the first content image already has its high priority
        (
            "<img src=\"http://127.0.0.1:8080/?url=x&amp;output=webp\" fetchpriority=\"high\">",
            &all,
        ),
    ] {
        for &kind in kinds {
            let out = rw.rewrite_document(doc.as_bytes(), kind, None).unwrap();
            assert_eq!(out.bytes, doc.as_bytes(), "{kind:?} {doc:?}");
            assert_eq!(out.stats.rewritten, 0);
        }
    }
}

#[test]
fn markdown_images_and_reference_definitions() {
    let rw = rewriter(|_| {});
    let a = proxied_raw("https://h/a.jpg");
    let l = proxied_raw("https://h/logo.png");
    let p = proxied_raw("https://h/p(1).png");
    let input = "# T\n\n![alt *x*](https://h/a.jpg \"title\") and ![][logo] and [page][site]\n\
                 ![paren](<https://h/p(1).png>)\n\n[logo]: https://h/logo.png 'Logo'\n\
                 [site]: https://h/page.png\n\n`![code](https://h/c.jpg)`\n\n\
                 ```html\n<img src=\"https://h/fenced.jpg\">\n```\n";
    let want = format!(
        "# T\n\n![alt *x*]({a} \"title\") and ![][logo] and [page][site]\n\
         ![paren](<{p}>)\n\n[logo]: {l} 'Logo'\n[site]: https://h/page.png\n\n\
         `![code](https://h/c.jpg)`\n\n```html\n<img src=\"https://h/fenced.jpg\">\n```\n"
    );
    assert_eq!(run(&rw, Kind::Markdown, input, None), want);
}

/// Found by the `rewrite` fuzz target (`/![`](g)`](g)`): the destination was looked for after
/// the first `](` of the image, which may sit in a code span or raw HTML of its alt text. The
/// code span was edited and the real destination was left for a second run to rewrite.
#[test]
fn a_code_span_in_alt_text_does_not_end_the_image() {
    let rw = rewriter(|_| {});
    let b = proxied_raw("https://h/b.jpg");
    for (input, want) in [
        (
            "![`](https://h/a.jpg)`](https://h/b.jpg)".to_string(),
            format!("![`](https://h/a.jpg)`]({b})"),
        ),
        (
            "![<span title=\"](https://h/a.jpg)\">x</span>](https://h/b.jpg)".to_string(),
            format!("![<span title=\"](https://h/a.jpg)\">x</span>]({b})"),
        ),
        (
            "![x ![`](https://h/a.jpg)`](https://h/b.jpg)](https://h/b.jpg)".to_string(),
            format!("![x ![`](https://h/a.jpg)`]({b})]({b})"),
        ),
    ] {
        assert_eq!(run(&rw, Kind::Markdown, &input, None), want, "{input}");
    }
    let rw = rewriter(|_| {});
    let base = Some("https://blog.example/posts/a/");
    let g = proxied_raw("https://blog.example/posts/a/g");
    assert_eq!(
        run(&rw, Kind::Markdown, "/![`](g)`](g)", base),
        format!("/![`](g)`]({g})")
    );
}

#[test]
fn raw_html_in_markdown_goes_span_by_span() {
    let rw = rewriter(|_| {});
    let a = proxied("https://h/a.jpg");
    let b = proxied("https://h/b.jpg");
    // An unclosed `<!--` or a `<textarea>` in prose must not swallow the images after it.
    let input = "Open a comment with `<!--` like <!-- this.\n\n<img src=\"https://h/a.jpg\">\n\n\
                 Type in a <textarea> then ![x](https://h/b.jpg)\n\n<p>inline <img src='https://h/b.jpg'></p>\n";
    let want = format!(
        "Open a comment with `<!--` like <!-- this.\n\n<img src=\"{a}\">\n\n\
         Type in a <textarea> then ![x]({})\n\n<p>inline <img src='{b}'></p>\n",
        proxied_raw("https://h/b.jpg")
    );
    assert_eq!(run(&rw, Kind::Markdown, input, None), want);
    // The same bytes read as one HTML document: the textarea swallows what follows.
    let html = "<textarea><img src=\"https://h/a.jpg\"></textarea>";
    assert_eq!(run(&rw, Kind::Html, html, None), html);
}

#[test]
fn front_matter_keys_are_rewritten_in_their_own_quoting() {
    let rw = rewriter(|_| {});
    let u = |s: &str| proxied_raw(s);
    let input = "\n---\ntitle: '''75后'' x'\nheadimg: 'https://cors.zfour.workers.dev/?http://s.example/a.jpeg'\n\
                 thumbnail: http://s.example/t.jpg # plain\ncover: \"//s.example/c.png\"\nimage: ''\n\
                 banner: /relative.png\nother: https://s.example/o.jpg\n---\n\n<p>body</p>\n";
    let want = format!(
        "\n---\ntitle: '''75后'' x'\nheadimg: '{}'\nthumbnail: {} # plain\ncover: \"{}\"\n\
         image: ''\nbanner: /relative.png\nother: https://s.example/o.jpg\n---\n\n<p>body</p>\n",
        u("http://s.example/a.jpeg"),
        u("http://s.example/t.jpg"),
        u("https://s.example/c.png"),
    );
    assert_eq!(run(&rw, Kind::Auto, input, None), want);

    // TOML, and a permalink as the base for relative references.
    let input = "+++\npermalink = \"https://blog.example/2021/post/\"\ncover = 'img/c.png'\n+++\n\n<img src=\"a.png\">\n";
    let want = format!(
        "+++\npermalink = \"https://blog.example/2021/post/\"\ncover = '{}'\n+++\n\n<img src=\"{}\">\n",
        u("https://blog.example/2021/post/img/c.png"),
        proxied("https://blog.example/2021/post/a.png"),
    );
    assert_eq!(run(&rw, Kind::Auto, input, None), want);
    // --base wins over the front matter.
    let out = run(&rw, Kind::Auto, input, Some("https://other.example/"));
    assert!(
        out.contains(&proxied("https://other.example/a.png")),
        "{out}"
    );
}

#[test]
fn signed_urls_verify() {
    let key = Secret("imgrelay-test-key-0123456789abcdef".into());
    let rw = rewriter(|c| c.security.signing_keys = vec![key.clone()]);
    let out = run(&rw, Kind::Html, "<img src=\"https://h/a.jpg\">", None);
    let url = out.split('"').nth(1).unwrap().replace("&amp;", "&");
    let target = url.strip_prefix("https://img.example").unwrap();
    crate::sign::verify(&[key], target).unwrap();
}

#[test]
fn broken_input_never_panics() {
    let rw = rewriter(|c| *c = Config::default());
    let nasty = [
        "<img src=\"https://h/a.jpg",
        "<img src='https://h/a.jpg' <img src=",
        "<img\nsrc\n=\nhttps://h/a.jpg\n/>",
        "<noscript><img src=https://h/a.jpg",
        "<svg><img src=//h/a.jpg></svg><math><img srcset=', , ,'>",
        "<select><xmp><script>\"x\"</script></select><img src=//h/a.jpg>",
        "---\nheadimg: '\n---\n",
        "+++\ncover = \"\\",
        "![a](<https://h/a.jpg",
        "[x]: <\n![x]",
        "<img src=\"&#xFFFFFFFFFF;&#0;&\" srcset=\"&amp;,,,&#44; 2x,\">",
        "<a href=\"https://h/a.jpg\"><img style=\"background:url(\">",
    ];
    for doc in nasty {
        for kind in [Kind::Html, Kind::Markdown, Kind::Auto] {
            let _ = rw.rewrite_document(doc.as_bytes(), kind, None);
        }
    }
    // Every prefix of a real post, cut anywhere (also inside a multi-byte character).
    let post = include_str!("../../tests/fixtures/corpus/zaker__intel_tsx_lazy_data-original.md");
    for cut in (0..post.len()).step_by(7) {
        let _ = rw.rewrite_document(&post.as_bytes()[..cut], Kind::Auto, None);
        let _ = rw.rewrite_document(&post.as_bytes()[..cut], Kind::Html, None);
    }
    let latin1 = b"<img alt=\"caf\xe9\" src=\"https://h/a.jpg\" title=\"\xff\">";
    let out = rw.rewrite_document(latin1, Kind::Html, None).unwrap();
    assert_eq!(out.stats.rewritten, 1);
    assert!(matches!(
        rw.rewrite_document(b"---\na: \xff\n---\n", Kind::Markdown, None),
        Err(RewriteError::NotUtf8)
    ));
    // A post is text: Latin-1 in its HTML block is a clear error, not garbled output.
    let mut post = b"---\ntitle: t\n---\n\n<div>".to_vec();
    post.extend_from_slice(latin1);
    post.extend_from_slice(b"</div>\n\ntext ![i](https://h/b.jpg)\n");
    assert!(matches!(
        rw.rewrite_document(&post, Kind::Markdown, None),
        Err(RewriteError::NotUtf8)
    ));
}

#[test]
fn splice_drops_overlaps_and_keeps_insertion_order() {
    let mut edits = Edits::default();
    for (r, t) in [(4..4, "1"), (1..3, "X"), (2..5, "lost"), (4..4, "2")] {
        edits.edit_with(r, |text| text.push_str(t));
    }
    let out = splice(b"abcdef", &mut edits.list, &edits.text);
    assert_eq!(out, b"aXd12ef");
}

#[test]
fn a_tag_over_the_memory_limit_is_refused_not_buffered() {
    let rw = rewriter(|_| {});
    let mut doc = b"<p>ok</p><img alt=\"".to_vec();
    doc.resize(doc.len() + HTML_MEMORY_LIMIT + 1, b'x');
    doc.extend_from_slice(b"\" src=\"https://h/a.jpg\">");
    assert!(matches!(
        rw.rewrite_document(&doc, Kind::Html, None),
        Err(RewriteError::TooLarge(_))
    ));
}

#[test]
fn replacements_are_bounded_by_the_input_size() {
    let long = format!("https://img.example/{}", "p".repeat(300));
    let rw = rewriter(|c| {
        *c = Config::default();
        c.server.public_url = long.clone();
    });
    let one = "<img src=//h/a.jpg>";
    // each tiny img grows far past GROWTH_LIMIT times its length
    let grown = rw
        .rewrite_document(one.as_bytes(), Kind::Html, None)
        .unwrap();
    assert!(
        grown.bytes.len() > GROWTH_LIMIT * one.len(),
        "{}",
        grown.bytes.len()
    );
    let n = 2 * GROWTH_FLOOR / one.len();
    let doc = one.repeat(n);
    assert!(matches!(
        rw.rewrite_document(doc.as_bytes(), Kind::Html, None),
        Err(RewriteError::TooLarge(_))
    ));
    // a document that grows within the bound is rewritten whole
    let doc = one.repeat(GROWTH_FLOOR / grown.bytes.len());
    let out = rw
        .rewrite_document(doc.as_bytes(), Kind::Html, None)
        .unwrap();
    assert_eq!(out.stats.rewritten, GROWTH_FLOOR / grown.bytes.len());
}

#[test]
fn html_blocks_with_only_blank_lines_between_are_one_stream() {
    let rw = rewriter(|_| {});
    // a browser reads consecutive HTML blocks as one stream: the img is textarea content
    let one = "<div><textarea>\n\n<img src=\"https://h/a.jpg\">\n\n</textarea></div>\n";
    assert_eq!(run(&rw, Kind::Markdown, one, None), one);
    // Markdown text between blocks ends the stream: what follows is markup again
    let two = "<div><textarea>\n\ntext\n\n<img src=\"https://h/a.jpg\">\n";
    let want = format!(
        "<div><textarea>\n\ntext\n\n<img src=\"{}\">\n",
        proxied("https://h/a.jpg")
    );
    assert_eq!(run(&rw, Kind::Markdown, two, None), want);
}

/// A URL broken across lines (tabs and line breaks inside it) in an HTML document is the URL a
/// browser reads, without them.
#[test]
fn a_url_broken_across_lines_is_read_as_a_browser_reads_it() {
    let rw = rewriter(|_| {});
    let want = proxied("https://h.example/ab.jpg");
    let out = run(
        &rw,
        Kind::Html,
        "<p><img src=\"https://h.example/a\n\tb.jpg\"></p>",
        None,
    );
    assert!(out.contains(&format!("src=\"{want}\"")), "{out}");
}

/// Found by the rewrite fuzz target: raw HTML in Markdown whose value went on over a line
/// break was written back on one line, which moved Markdown's blocks (the tag, now complete on
/// its line, started an HTML block that took in the code span after it, whose image a second
/// run rewrote), and inside a blockquote or list took the container's prefix into the URL.
#[test]
fn markdown_raw_html_values_across_lines_are_left_alone() {
    let rw = rewriter(|_| {});
    for doc in [
        "<img src=\"https://h.example/a.jpg?w=8`\n`\">\n`<img src=\"https://h.example/b.jpg\">`\n",
        "text <img src=\"https://h.example/a\nb.jpg\"> more\n",
        // A carriage return ends a Markdown line too (found by the same target).
        "<img src=\"https://h.example/a\rb.jpg\">\n`<img src=\"https://h.example/b.jpg\">`\n",
        "> <img src=\"https://h.example/a\n> b.jpg\">\n",
        "- <img src=\"https://h.example/a\n  b.jpg\">\n",
        "> <div><img srcset=\"https://h.example/a.jpg 1x,\n> https://h.example/b.jpg 2x\"></div>\n",
    ] {
        let out = rw
            .rewrite_document(doc.as_bytes(), Kind::Markdown, None)
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.bytes), doc);
        assert_eq!(out.stats.skipped.get(&Skip::Wrapped), Some(&1), "{doc:?}");
    }
    // A tag across lines whose values are each on one line is rewritten as usual.
    let out = run(
        &rw,
        Kind::Markdown,
        "a <img\nsrc=\"https://h.example/a.jpg\"> b\n",
        None,
    );
    assert!(out.contains(&proxied("https://h.example/a.jpg")), "{out}");
}

/// Found by the rewrite fuzz target: in `![](<![](/<)>)` the `<` of the inner image's
/// destination makes the outer `<…>` destination invalid; the imgrelay URL has no `<`, so a
/// second run read the outer image and rewrote it. Destinations holding Markdown syntax that a
/// URL never holds unescaped are left alone.
#[test]
fn a_destination_holding_markdown_syntax_is_left_alone() {
    let rw = rewriter(|_| {});
    let base = Url::parse("https://blog.example/posts/a/").unwrap();
    for doc in ["![](<![](/<)>)\n", "![a](/x]y.png)\n", "![a](/x`y.png)\n"] {
        let out = rw
            .rewrite_document(doc.as_bytes(), Kind::Markdown, Some(&base))
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.bytes), doc);
    }
    // Bracketed destinations keep their brackets out of the URL and are rewritten.
    let out = run(
        &rw,
        Kind::Markdown,
        "![a](<https://h.example/p(1).png>)\n",
        None,
    );
    assert!(
        out.contains(&proxied_raw("https://h.example/p(1).png")),
        "{out}"
    );
}

/// Found by the rewrite fuzz target: in `<![CDATA[><img src=]]>` an HTML parser reads an image
/// whose value `]]` is followed by the `]]>` that ends Markdown's CDATA block. The imgrelay URL
/// took that end away, so the block went on into the next line, whose image a second run
/// rewrote. A raw-HTML value in Markdown that holds (or ends) an HTML block's end condition is
/// left alone, for every kind of block that ends at such text.
#[test]
fn a_value_holding_the_end_of_a_markdown_html_block_is_left_alone() {
    let rw = rewriter(|_| {});
    let base = Url::parse("https://blog.example/posts/a/").unwrap();
    let next = "<img src=https://h.example/b.jpg\">\n";
    for first in [
        "<![CDATA[><img src=]]>\n",
        "<?x><img src=\"https://h.example/a.jpg?>\">\n",
        "<!--><img src=https://h.example/a.jpg-->\n",
        "<pre><img src=\"https://h.example/a.jpg</PRE>\"></pre>\n",
        "<script></script><img src=\"https://h.example/a.jpg</script>\">\n",
    ] {
        let doc = format!("{first}{next}");
        let out = rw
            .rewrite_document(doc.as_bytes(), Kind::Markdown, Some(&base))
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.bytes), doc);
        assert_eq!(out.stats.skipped.get(&Skip::BlockEnd), Some(&1), "{doc:?}");
    }
    // The same values in an HTML document, or ending nothing, are rewritten as usual.
    let out = run(
        &rw,
        Kind::Html,
        "<img src=\"https://h.example/a.jpg?>\">",
        None,
    );
    assert!(out.contains(&proxied("https://h.example/a.jpg?>")), "{out}");
    let out = run(
        &rw,
        Kind::Markdown,
        "<div><img src=\"https://h.example/a.jpg?x=>\"></div>\n",
        None,
    );
    assert!(
        out.contains(&proxied("https://h.example/a.jpg?x=>")),
        "{out}"
    );
}

/// Found by the rewrite fuzz target: in `<![CDATA[><img src=… y]]>` the `]]>` that ends
/// Markdown's CDATA block is an attribute name and the tag's `>`; the attributes an `img` gains
/// went in between, so the block went on into the next line. Where the tag's end is such an
/// end, they go right after `<img` instead.
#[test]
fn attributes_added_to_an_img_do_not_split_the_end_of_a_markdown_html_block() {
    let rw = rewriter(|c| c.rewrite.lazy = true);
    let next = "<img src=https://h.example/b.jpg\">\n";
    for (first, end) in [
        ("<![CDATA[><img src=https://h.example/a.jpg y]]>\n", "y]]>"),
        (
            "<pre><img src=https://h.example/a.jpg y=</pre>\n",
            "y=</pre>",
        ),
        ("<?x><img src=https://h.example/a.jpg y?>\n", "y?>"),
    ] {
        let out = run(&rw, Kind::Markdown, &format!("{first}{next}"), None);
        assert!(out.contains(&proxied("https://h.example/a.jpg")), "{out}");
        assert!(out.contains("<img loading=\"lazy\""), "{out}");
        assert!(out.contains(&format!("{end}\n{next}")), "{out}");
    }
    // Elsewhere they go after the last attribute, as before.
    let out = run(
        &rw,
        Kind::Markdown,
        "<div><img src=https://h.example/a.jpg y></div>\n",
        None,
    );
    assert!(out.contains(" y loading=\"lazy\">"), "{out}");
}

/// Regression: the Markdown checks on raw-HTML values ran wherever a value was read, so a
/// `style` without `url()`, a link to a page or an `img`'s `width` across lines was counted
/// as a skipped image reference, though none of them is one or would be written.
#[test]
fn markdown_values_that_are_not_image_references_are_not_counted() {
    let rw = rewriter(|_| {});
    for doc in [
        "<div style=\"color: red;\nmargin: 0\">x</div>\n",
        "<a href=\"https://h.example/page\n.html\">x</a>\n",
        "<p title=\"a-->b\" style=\"color: red\">x</p>\n",
    ] {
        let out = rw
            .rewrite_document(doc.as_bytes(), Kind::Markdown, None)
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.bytes), doc);
        assert!(
            out.stats.skipped.is_empty(),
            "{doc:?}: {:?}",
            out.stats.skipped
        );
    }
    let doc = "<img width=\"640\n\" src=\"https://h.example/a.jpg\">\n";
    let out = rw
        .rewrite_document(doc.as_bytes(), Kind::Markdown, None)
        .unwrap();
    assert_eq!(out.stats.rewritten, 1);
    assert!(out.stats.skipped.is_empty(), "{:?}", out.stats.skipped);
}

mod loading;
mod placeholders;
mod readings;
