//! Issue 31: placeholders (`rewrite.placeholder`) painted behind measured images, merged into
//! their `style`; `run` checks each document rewritten twice is rewritten once.

use super::{rewriter, run};
use crate::{
    config::Placeholder,
    rewrite::{Kind, Measure, Measures, Rewriter},
};

/// A real `output=json` placeholder (the bench corpus's Autumn).
const URI: &str = "data:image/webp;base64,UklGRkIAAABXRUJQVlA4IDYAAADwAQCdASoQAAoAA4BaJbACdAEKn+J3IAAA/u2cfJkrNKF+1f18q1we9h+76vrY06VuF1gAAAA=";

/// A rewriter painting `mode`, with a measure of `https://h/a.jpg` (opaque) and of
/// `https://h/clear.png` (with alpha).
fn painter(mode: Placeholder) -> Rewriter {
    let base = rewriter(|c| {
        c.rewrite.placeholder = mode;
        c.rewrite.dimensions = true;
    });
    let measure = |has_alpha| Measure {
        width: 800,
        height: 600,
        has_alpha,
        dominant_color: Some("#a0b1c2".into()),
        placeholder: Some(URI.into()),
    };
    let measures = Measures::from([
        (base.resolver.encode("https://h/a.jpg"), measure(false)),
        (base.resolver.encode("https://h/clear.png"), measure(true)),
    ]);
    base.with_measures(measures)
}

fn blur() -> String {
    format!("background:#a0b1c2 url({URI}) 50% 50%/cover no-repeat")
}

#[test]
fn color_and_blur_paint_a_measured_image_and_none_paints_nothing() {
    let doc = "<p><img src=\"https://h/a.jpg\" alt=\"a\"></p>";
    let color = run(&painter(Placeholder::Color), Kind::Html, doc, None);
    assert!(
        color.contains(" style=\"background-color:#a0b1c2\""),
        "{color}"
    );
    let blurred = run(&painter(Placeholder::Blur), Kind::Html, doc, None);
    assert!(
        blurred.contains(&format!(" style=\"{}\"", blur())),
        "{blurred}"
    );
    let none = run(&painter(Placeholder::None), Kind::Html, doc, None);
    assert!(!none.contains("style"), "{none}");
    // Markdown raw HTML too.
    let md = "Text\n\n<img src=\"https://h/a.jpg\">\n\nMore.\n";
    let out = run(&painter(Placeholder::Color), Kind::Markdown, md, None);
    assert!(out.contains("style=\"background-color:#a0b1c2\""), "{out}");
}

#[test]
fn an_existing_style_keeps_its_spelling_and_gains_the_placeholder_after_it() {
    let rw = painter(Placeholder::Color);
    for (doc, want) in [
        (
            "<img style=\"width: 600px;\" src=\"https://h/a.jpg\">",
            "style=\"width: 600px; background-color:#a0b1c2\"",
        ),
        (
            "<img STYLE='WIDTH:600PX' src=\"https://h/a.jpg\">",
            "STYLE='WIDTH:600PX; background-color:#a0b1c2'",
        ),
        (
            "<img style=width:600px src=\"https://h/a.jpg\">",
            "style=\"width:600px; background-color:#a0b1c2\"",
        ),
        (
            "<img style=\"border:&#32;0 ;  \" src=\"https://h/a.jpg\">",
            "style=\"border:&#32;0 ;  background-color:#a0b1c2\"",
        ),
        (
            "<img style=\"\" src=\"https://h/a.jpg\">",
            "style=\"background-color:#a0b1c2\"",
        ),
    ] {
        let out = run(&rw, Kind::Html, doc, None);
        assert!(out.contains(want), "{doc}\n→ {out}");
        assert_eq!(
            out.to_ascii_lowercase().matches("style").count(),
            1,
            "{out}"
        );
    }
}

#[test]
fn alpha_a_background_already_set_or_no_measure_leave_the_image_unpainted() {
    let rw = painter(Placeholder::Blur);
    for doc in [
        // transparency: the placeholder would show through
        "<img src=\"https://h/clear.png\">",
        // nothing measured
        "<img src=\"https://h/other.jpg\">",
        // a background already set, in any spelling
        "<img style=\"background: red\" src=\"https://h/a.jpg\">",
        "<img style=\"BACKGROUND-COLOR:#fff\" src=\"https://h/a.jpg\">",
    ] {
        let out = run(&rw, Kind::Html, doc, None);
        assert!(!out.contains("#a0b1c2"), "{doc}\n→ {out}");
    }
    // A style whose url(…) the style pass rewrites gets that, and no placeholder.
    let doc = "<img style=\"background-image:url(https://h/b.jpg)\" src=\"https://h/a.jpg\">";
    let out = run(&rw, Kind::Html, doc, None);
    assert!(!out.contains("#a0b1c2"), "{out}");
    assert!(out.contains("url(https://img.example/"), "{out}");
}

#[test]
fn a_painted_image_rewritten_again_is_unchanged() {
    // `run` rewrites its output again and compares; here, a post rewritten by the previous
    // run (its image already on imgrelay, its style painted) is the input.
    let rw = painter(Placeholder::Blur);
    let once = run(&rw, Kind::Html, "<img src=\"https://h/a.jpg\">", None);
    let again = rw
        .rewrite_document(once.as_bytes(), Kind::Html, None)
        .unwrap();
    assert_eq!(String::from_utf8(again.bytes).unwrap(), once);
    assert!(again.unmeasured.is_empty(), "{:?}", again.unmeasured);
}
