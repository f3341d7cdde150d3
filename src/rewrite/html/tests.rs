//! The HTML targets of SPEC §3, one table row each, and the attributes an `img` gains.

use super::super::tests::{proxied, rewriter, run};
use super::super::{Config, Kind};

#[test]
fn targets_table() {
    let rw = rewriter(|_| {});
    let a = proxied("https://h/a.jpg");
    let b = proxied("https://h/b.jpg");
    let base = Some("https://blog.example/posts/1/");
    let cases: Vec<(&str, Option<&str>, String)> = vec![
        // img src, any quoting; unquoted values gain quotes (an imgrelay URL has `=`)
        ("<img src=\"https://h/a.jpg\">", None, format!("<img src=\"{a}\">")),
        ("<IMG SRC='https://h/a.jpg'/>", None, format!("<IMG SRC='{a}'/>")),
        ("<img src=https://h/a.jpg>", None, format!("<img src=\"{a}\">")),
        ("<img\n  src = \"https://h/a.jpg\"\n>", None, format!("<img\n  src = \"{a}\"\n>")),
        // entities are decoded before parsing
        (
            "<img src=\"https://h/a.jpg?x=1&amp;y=&#123;2&#125;\">",
            None,
            format!("<img src=\"{}\">", proxied("https://h/a.jpg?x=1&y={2}")),
        ),
        // protocol-relative; relative with and without base; data:; already proxied
        ("<img src=\"//h/a.jpg\">", None, format!("<img src=\"{a}\">")),
        ("<img src=\"/a.jpg\">", None, "<img src=\"/a.jpg\">".into()),
        (
            "<img src=\"../a.jpg\">",
            base,
            format!("<img src=\"{}\">", proxied("https://blog.example/posts/a.jpg")),
        ),
        ("<img src=\"data:image/gif;base64,R0lG\">", base, "<img src=\"data:image/gif;base64,R0lG\">".into()),
        (
            "<img src=\"https://img.example/?url=x&amp;output=webp\">",
            None,
            "<img src=\"https://img.example/?url=x&amp;output=webp\">".into(),
        ),
        // each unwrap mode
        (
            "<img src=\"https://cors.zfour.workers.dev/?http://h/a.jpg\">",
            None,
            format!("<img src=\"{}\">", proxied("http://h/a.jpg")),
        ),
        (
            "<img src=\"https://wsrv.nl/?url=https%3A%2F%2Fh%2Fa.jpg&amp;w=300\">",
            None,
            format!("<img src=\"{a}\">"),
        ),
        ("<img src=\"https://i0.wp.com/h/a.jpg?resize=1\">", None, format!("<img src=\"{a}\">")),
        // srcset: commas in URLs, descriptors and whitespace kept
        (
            "<img srcset=\" https://h/a.jpg@s_2,w_820 2x ,\n//h/b.jpg 640w\">",
            None,
            format!(
                "<img srcset=\" {} 2x ,\n{b} 640w\">",
                proxied("https://h/a.jpg@s_2,w_820")
            ),
        ),
        // lazy attributes, on img and on picture sources
        (
            "<img data-original=\"//h/a.jpg\" data-src=\"https://h/b.jpg\" data-lazy-src=\"x.gif\">",
            None,
            format!("<img data-original=\"{a}\" data-src=\"{b}\" data-lazy-src=\"x.gif\">"),
        ),
        (
            "<picture><source data-srcset=\"https://h/a.jpg 1x\"><source srcset=\"https://h/b.jpg\"></picture>",
            None,
            format!("<picture><source data-srcset=\"{a} 1x\"><source srcset=\"{b}\"></picture>"),
        ),
        // a video's sources are video, its poster an image
        (
            "<video poster=\"/p.jpg\"><source src=\"/v.mp4\"></video>",
            base,
            format!(
                "<video poster=\"{}\"><source src=\"/v.mp4\"></video>",
                proxied("https://blog.example/p.jpg")
            ),
        ),
        // meta, preload, lightbox links (pages stay), CSS url()
        (
            "<meta property=\"og:image\" content=\"https://h/a.jpg\"><meta name=\"description\" content=\"https://h/b.jpg\">",
            None,
            format!("<meta property=\"og:image\" content=\"{a}\"><meta name=\"description\" content=\"https://h/b.jpg\">"),
        ),
        (
            "<link rel=\"preload\" as=\"image\" href=\"https://h/a.jpg\"><link rel=\"stylesheet\" href=\"https://h/b.jpg\">",
            None,
            format!("<link rel=\"preload\" as=\"image\" href=\"{a}\"><link rel=\"stylesheet\" href=\"https://h/b.jpg\">"),
        ),
        (
            "<a href=\"https://h/a.jpg\">big</a><a href=\"https://h/a.html\">page</a>",
            None,
            format!("<a href=\"{a}\">big</a><a href=\"https://h/a.html\">page</a>"),
        ),
        (
            "<div style=\"color:red;background:url(&quot;//h/a.jpg&quot;)\">",
            None,
            format!("<div style=\"color:red;background:url(&quot;{a}&quot;)\">"),
        ),
        // noscript content is text to lol_html: a second pass reads it as HTML
        (
            "<noscript><img src=\"https://h/a.jpg\"></noscript><img src=\"https://h/b.jpg\">",
            None,
            format!("<noscript><img src=\"{a}\"></noscript><img src=\"{b}\">"),
        ),
        // comments and raw-text elements are not markup
        (
            "<!-- <img src=\"https://h/a.jpg\"> --><script>x='<img src=\"https://h/a.jpg\">'</script>",
            None,
            "<!-- <img src=\"https://h/a.jpg\"> --><script>x='<img src=\"https://h/a.jpg\">'</script>".into(),
        ),
    ];
    for (input, base, want) in cases {
        assert_eq!(run(&rw, Kind::Html, input, base), want, "{input}");
    }
}

#[test]
fn rewritten_images_gain_missing_attributes_only() {
    let rw = rewriter(|c| {
        let d = Config::default();
        c.rewrite = d.rewrite;
        c.rewrite.eager = 0;
        c.security.allowed_referers = Vec::new();
    });
    let v = |w: Option<u32>| {
        let u = rw.resolver.variant("https://h/a.jpg", w);
        u.replace('&', "&amp;")
    };
    let lazy = "loading=\"lazy\" decoding=\"async\" referrerpolicy=\"no-referrer\"";
    // intrinsic 700 wide from data-size: widths below it, then the original at 700w
    let out = run(
        &rw,
        Kind::Html,
        "<img data-size=\"700,500\" src=\"https://h/a.jpg\">",
        None,
    );
    let want = format!(
        "<img data-size=\"700,500\" src=\"{}\" srcset=\"{} 320w, {} 640w, {} 700w\" \
         sizes=\"(max-width: 800px) 100vw, 800px\" width=\"700\" height=\"500\" {lazy}>",
        v(None),
        v(Some(320)),
        v(Some(640)),
        v(None)
    );
    assert_eq!(out, want);
    // present attributes are kept; a displayed width bounds the candidates and the sizes,
    // and gains the height in proportion
    let out = run(
        &rw,
        Kind::Html,
        "<img src=\"https://h/a.jpg\" width=\"200\" data-img-size-val=\"1000,800\" loading=\"eager\" referrerpolicy=\"origin\"/>",
        None,
    );
    let want = format!(
        "<img src=\"{}\" width=\"200\" data-img-size-val=\"1000,800\" loading=\"eager\" \
         referrerpolicy=\"origin\" srcset=\"{} 320w, {} 640w, {} 1000w\" sizes=\"200px\" height=\"160\" decoding=\"async\"/>",
        v(None),
        v(Some(320)),
        v(Some(640)),
        v(None)
    );
    assert_eq!(out, want);
    // an existing srcset is rewritten, not replaced; a tiny intrinsic size needs no srcset;
    // an unquoted last value keeps its trailing slash
    let out = run(
        &rw,
        Kind::Html,
        "<img src=https://h/a.jpg data-width=100 data-height=50 alt=x/>",
        None,
    );
    let want = format!(
        "<img src=\"{}\" data-width=100 data-height=50 alt=x/ width=\"100\" height=\"50\" {lazy}>",
        v(None)
    );
    assert_eq!(out, want);
    // images that were not rewritten gain nothing
    for same in [
        "<img src=\"/rel.jpg\" data-size=\"1,1\">",
        "<img>",
        "<img src>",
    ] {
        assert_eq!(run(&rw, Kind::Html, same, None), same);
    }
    // referrerpolicy is left out when the proxy checks referers itself
    let checked = rewriter(|c| c.rewrite.lazy = true);
    let out = run(&checked, Kind::Html, "<img src=\"https://h/a.jpg\">", None);
    assert!(
        out.ends_with(" loading=\"lazy\">") && !out.contains("referrerpolicy"),
        "{out}"
    );
}

#[test]
fn style_attribute_in_mixed_case_is_rewritten_like_style() {
    let rw = rewriter(|_| {});
    let a = proxied("https://h/a.jpg");
    for name in ["STyle", "STYLE", "sTYLE", "Style"] {
        let input = format!("<div {name}=\"background:url(https://h/a.jpg)\"></div>");
        let want = format!("<div {name}=\"background:url({a})\"></div>");
        assert_eq!(run(&rw, Kind::Html, &input, None), want);
    }
}

#[test]
fn spans_without_a_target_name_skip_the_pass_and_all_others_take_it() {
    let s = super::Selectors::new();
    for yes in [
        "<IMG src=x>",
        "<a\nhref=x>",
        "<div STyle=x>",
        "<NoScript>",
        "<picture><Source srcset=x>",
        "<VIDEO poster=x>",
        "<Meta content=x>",
        "<LINK href=x>",
    ] {
        assert!(s.may_match(yes.as_bytes()), "{yes}");
    }
    for no in [
        "</p>",
        "<span>",
        "<br/>",
        "<p class=\"x\">text</p>",
        "img without a tag",
    ] {
        assert!(!s.may_match(no.as_bytes()), "{no}");
    }
}
