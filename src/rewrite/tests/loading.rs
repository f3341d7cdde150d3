//! Issue 30: measured sizes (`--info-from`) and the eager LCP candidate, read off whole
//! documents as a browser would load them.

use super::{rewriter, run};
use crate::rewrite::{Kind, Measure, Measures, Rewriter};
use std::collections::BTreeSet;

/// A rewriter writing loading attributes (`rewrite.eager` = `eager`), nothing else added.
fn eager(eager: usize) -> Rewriter {
    rewriter(|c| {
        c.rewrite.lazy = true;
        c.rewrite.eager = eager;
    })
}

/// The `loading` / `fetchpriority` of each `img` in `html`, in order: `lazy`, `eager`
/// (no `loading`) or `high`.
fn loads(html: &str) -> Vec<&'static str> {
    html.split("<img")
        .skip(1)
        .map(|tag| {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            match (
                tag.contains("loading=\"lazy\""),
                tag.contains("fetchpriority=\"high\""),
            ) {
                (true, false) => "lazy",
                (false, false) => "eager",
                (false, true) => "high",
                (true, true) => panic!("lazy and high: {tag}"),
            }
        })
        .collect()
}

fn measure(width: u32, height: u32) -> Measure {
    Measure {
        width,
        height,
        has_alpha: false,
        dominant_color: None,
        placeholder: None,
    }
}

/// WordPress keeps the first content image eager; every one lazy delays the page's largest.
#[test]
fn the_first_content_image_loads_eagerly_with_high_priority_and_the_rest_lazily() {
    let doc = "<p><img src=\"https://h/a.jpg\"><img src=\"https://h/b.jpg\">\
               <img src=\"https://h/c.jpg\"></p>";
    assert_eq!(
        loads(&run(&eager(1), Kind::Html, doc, None)),
        ["high", "lazy", "lazy"]
    );
    assert_eq!(
        loads(&run(&eager(2), Kind::Html, doc, None)),
        ["high", "eager", "lazy"]
    );
    assert_eq!(
        loads(&run(&eager(0), Kind::Html, doc, None)),
        ["lazy", "lazy", "lazy"]
    );
}

#[test]
fn an_image_known_to_be_small_is_not_the_lcp_candidate() {
    // 200 × 200 = 40,000 px² (an avatar), then a photo, then one of unknown size
    let doc = "<img src=\"https://h/icon.png\" width=\"200\" height=\"200\">\
               <img src=\"https://h/photo.jpg\" data-size=\"1200,800\">\
               <img src=\"https://h/c.jpg\">";
    assert_eq!(
        loads(&run(&eager(1), Kind::Html, doc, None)),
        ["lazy", "high", "lazy"]
    );
    // exactly the threshold counts: 250 × 200
    let doc =
        "<img src=\"https://h/a.jpg\" width=\"250\" height=\"200\"><img src=\"https://h/b.jpg\">";
    assert_eq!(
        loads(&run(&eager(1), Kind::Html, doc, None)),
        ["high", "lazy"]
    );
    let doc =
        "<img src=\"https://h/a.jpg\" width=\"249\" height=\"200\"><img src=\"https://h/b.jpg\">";
    assert_eq!(
        loads(&run(&eager(1), Kind::Html, doc, None)),
        ["lazy", "high"]
    );
}

#[test]
fn noscript_copies_and_front_matter_images_are_not_content_images() {
    let doc = "---\nheadimg: https://h/head.jpg\n---\n\n\
               <noscript>\n<img src=\"https://h/a.jpg\">\n</noscript>\n\n\
               <img class=\"lazyload\" data-src=\"https://h/a.jpg\">\n";
    let out = run(&eager(1), Kind::Markdown, doc, None);
    // the noscript copy is read after the image it copies, and stays lazy
    assert_eq!(loads(&out), ["lazy", "high"], "{out}");
    let body = &doc[doc.find("<noscript>").unwrap()..];
    assert_eq!(
        loads(&run(&eager(1), Kind::Html, body, None)),
        ["lazy", "high"]
    );
}

/// Markdown's passes read a run of HTML blocks after the inline HTML that follows it.
#[test]
fn the_eager_image_is_the_first_in_the_document_not_the_first_visited() {
    let doc =
        "<div><img src=\"https://h/a.jpg\"></div>\n\ntext <img src=\"https://h/b.jpg\"> text\n";
    let out = run(&eager(1), Kind::Markdown, doc, None);
    assert_eq!(loads(&out), ["high", "lazy"], "{out}");
    // a Markdown image cannot carry attributes, but it is the first content image: eager
    // by default, it takes the eager place
    let doc = "![a](https://h/a.jpg)\n\n<img src=\"https://h/b.jpg\">\n";
    assert_eq!(loads(&run(&eager(1), Kind::Markdown, doc, None)), ["lazy"]);
    let doc = "![a][r]\n\n<img src=\"https://h/b.jpg\">\n\n[r]: https://h/a.jpg\n";
    assert_eq!(loads(&run(&eager(1), Kind::Markdown, doc, None)), ["lazy"]);
}

/// The attributes of each `img` of `html` as a set, whatever their order.
fn attribute_sets(html: &str) -> Vec<BTreeSet<String>> {
    html.split("<img")
        .skip(1)
        .map(|tag| {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            tag.split("\" ")
                .map(|a| a.trim_end_matches('"').trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn a_post_rewritten_by_an_earlier_version_comes_out_as_a_fresh_rewrite() {
    let now = rewriter(|c| *c = crate::config::Config::default());
    let before = rewriter(|c| {
        *c = crate::config::Config::default();
        c.rewrite.eager = 0; // what every earlier version wrote: all lazy
    });
    let doc = "<p><img src=\"https://h/a.jpg\"></p><p><img src=\"https://h/b.jpg\" data-size=\"100,100\"></p>\
               <p><img src=\"https://h/c.jpg\"></p>";
    let old = run(&before, Kind::Html, doc, None);
    assert_eq!(loads(&old), ["lazy", "lazy", "lazy"]);
    let fresh = run(&now, Kind::Html, doc, None);
    let again = run(&now, Kind::Html, &old, None);
    assert_eq!(loads(&again), ["high", "lazy", "lazy"], "{again}");
    assert_eq!(attribute_sets(&again), attribute_sets(&fresh));
}

#[test]
fn removing_lazy_keeps_the_tag_well_formed() {
    let rw = eager(1);
    let cases = [
        (
            "<img LOADING=\"Lazy\" src=\"https://h/a.jpg\">",
            "<img src=",
        ),
        ("<img loading=\"lazy\"src=\"https://h/a.jpg\">", "<img src="),
        (
            "<img src=\"https://h/a.jpg\"\tloading=lazy>",
            "&amp;output=webp\" fetchpriority",
        ),
        (
            "<img src=\"https://h/a.jpg\" loading=\"lazy\"/>",
            "&amp;output=webp\" fetchpriority=\"high\"/>",
        ),
    ];
    for (doc, has) in cases {
        let out = run(&rw, Kind::Html, doc, None);
        assert!(
            out.contains(has) && !out.to_ascii_lowercase().contains("lazy"),
            "{doc} → {out}"
        );
    }
    // a second high priority, left by a run that knew fewer sizes, is taken off
    let doc = "<img src=\"https://h/a.jpg\" fetchpriority=\"high\" width=\"16\" height=\"16\">\
               <img src=\"https://h/b.jpg\">";
    let out = run(&rw, Kind::Html, doc, None);
    assert_eq!(loads(&out), ["lazy", "high"], "{out}");
}

#[test]
fn measured_sizes_give_dimensions_and_cap_the_srcset() {
    let base = rewriter(|c| {
        c.rewrite.dimensions = true;
        c.rewrite.widths = vec![320, 640, 960, 1280];
        c.rewrite.sizes = String::new();
    });
    let encoded = base.resolver.encode("https://h/a.jpg");
    let doc = "<img src=\"https://h/a.jpg\">";
    let out = base
        .rewrite_document(doc.as_bytes(), Kind::Html, None)
        .unwrap();
    assert_eq!(out.unmeasured, std::slice::from_ref(&encoded));
    assert_eq!(out.stats.undimensioned, 1);

    let measured = base.with_measures(Measures::from([(encoded.clone(), measure(700, 467))]));
    let out = run(&measured, Kind::Html, doc, None);
    assert!(
        out.ends_with(" 700w\" width=\"700\" height=\"467\">"),
        "{out}"
    );
    assert!(out.contains(" 640w, ") && !out.contains(" 960w"), "{out}");
    let done = measured
        .rewrite_document(out.as_bytes(), Kind::Html, None)
        .unwrap();
    assert_eq!((done.unmeasured.len(), done.stats.undimensioned), (0, 0));

    // one side given: the other in proportion; an image already pointing at imgrelay (an
    // earlier run) gains its dimensions too, from its own source
    let out = run(
        &measured,
        Kind::Html,
        "<img src=\"https://h/a.jpg\" width=\"350\">",
        None,
    );
    assert!(
        out.contains("width=\"350\"") && out.contains(" height=\"234\""),
        "{out}"
    );
    let earlier = rewriter(|_| {})
        .rewrite_document(doc.as_bytes(), Kind::Html, None)
        .unwrap();
    let earlier = String::from_utf8(earlier.bytes).unwrap();
    let out = run(&measured, Kind::Html, &earlier, None);
    assert_eq!(out, earlier.replace('>', " width=\"700\" height=\"467\">"));
}

#[test]
fn what_needs_measuring_is_each_undimensioned_source_once() {
    let rw = rewriter(|c| c.rewrite.dimensions = true);
    let e = |s: &str| rw.resolver.encode(s);
    let doc = "<img src=\"https://h/a.jpg\"><img src=\"https://h/a.jpg\">\
               <img data-src=\"https://h/lazy.jpg\" src=\"https://h/blank.gif\">\
               <img src=\"https://h/sized.jpg\" data-size=\"10,10\">\
               <img src=\"https://h/set.jpg\" width=\"100\" height=\"50\">\
               <img src=\"https://h/pct.jpg\" width=\"100%\">\
               <img src=\"/relative.jpg\">\
               <noscript><img src=\"https://h/copy.jpg\"></noscript>";
    let out = rw
        .rewrite_document(doc.as_bytes(), Kind::Html, None)
        .unwrap();
    assert_eq!(
        out.unmeasured,
        [e("https://h/a.jpg"), e("https://h/lazy.jpg")]
    );
    // a.jpg twice, lazy.jpg, pct.jpg (a percentage is no size)
    assert_eq!(out.stats.undimensioned, 4);
    let off = rewriter(|c| c.rewrite.dimensions = false);
    let out = off
        .rewrite_document(doc.as_bytes(), Kind::Html, None)
        .unwrap();
    assert!(out.unmeasured.is_empty());
}
