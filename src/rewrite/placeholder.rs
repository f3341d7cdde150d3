//! Placeholders (`rewrite.placeholder`): what an image's box shows until its picture arrives,
//! written into the image's `style` from what a running imgrelay measured of it
//! (`output=json`'s `dominant_color` and `placeholder`). Pure: it decides the declarations
//! and merges them into a `style` value; `html/img.rs` writes them with the rewriter's
//! attribute writer.

use super::{css, measure::Measure};
use crate::config::Placeholder;

/// The longest `data:` URI written into a page: `output=json` makes them of at most 400
/// bytes; a longer answer (another server, a changed encoder) is not pasted into articles.
const MAX_URI: usize = 1024;

/// The declarations that paint `m`'s placeholder, or `None`: mode `none`, a picture with
/// transparency (the placeholder would show through it), or nothing usable measured. `blur`
/// falls back to the colour when the answer has no placeholder, and keeps the colour under
/// the picture for a page whose Content-Security-Policy refuses `data:` images.
pub(crate) fn declarations(mode: Placeholder, m: &Measure) -> Option<String> {
    if mode == Placeholder::None || m.has_alpha {
        return None;
    }
    let color = m.dominant_color.as_deref().filter(|c| is_hex_color(c));
    let uri = m.placeholder.as_deref().filter(|u| is_data_uri(u));
    match (mode, color, uri) {
        (Placeholder::Blur, color, Some(uri)) => {
            let under = color.map(|c| format!("{c} ")).unwrap_or_default();
            Some(format!(
                "background:{under}url({uri}) 50% 50%/cover no-repeat"
            ))
        }
        (_, Some(c), _) => Some(format!("background-color:{c}")),
        _ => None,
    }
}

/// Whether a `style` value already sets a background (any `background…` property), or holds
/// a `url(…)`, which the style pass rewrites on its own: either way it is left alone.
pub(crate) fn has_background(style: &str) -> bool {
    style.to_ascii_lowercase().contains("background") || !css::urls(style).is_empty()
}

/// `style` (as written, untouched) followed by `add`, with a `;` between when `style` does
/// not end one declaration already.
pub(crate) fn merged(style: &str, add: &str) -> String {
    let kept = style.trim_end();
    if kept.is_empty() {
        add.to_string()
    } else if kept.ends_with(';') {
        format!(
            "{style}{}{add}",
            if style.len() == kept.len() { " " } else { "" }
        )
    } else {
        format!("{kept}; {add}")
    }
}

/// `#rrggbb`, as `output=json` writes it.
fn is_hex_color(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// `data:image/{webp,png,jpeg,gif,avif};base64,` and base64, no longer than [`MAX_URI`]:
/// nothing that could close the `url(…)`, the declaration or the attribute.
fn is_data_uri(u: &str) -> bool {
    let Some(rest) = u.strip_prefix("data:image/") else {
        return false;
    };
    let Some((kind, b64)) = rest.split_once(";base64,") else {
        return false;
    };
    u.len() <= MAX_URI
        && ["webp", "png", "jpeg", "gif", "avif"].contains(&kind)
        && !b64.is_empty()
        && b64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(alpha: bool, color: Option<&str>, uri: Option<&str>) -> Measure {
        Measure {
            width: 800,
            height: 600,
            has_alpha: alpha,
            dominant_color: color.map(String::from),
            placeholder: uri.map(String::from),
        }
    }

    const URI: &str = "data:image/webp;base64,UklGRkIAAABXRUJQVlA4IDYAAADwAQCdASoQAAoAA4Ba";

    #[test]
    fn each_mode_writes_its_declarations() {
        let m = measure(false, Some("#a0b1c2"), Some(URI));
        assert_eq!(declarations(Placeholder::None, &m), None);
        assert_eq!(
            declarations(Placeholder::Color, &m).as_deref(),
            Some("background-color:#a0b1c2")
        );
        assert_eq!(
            declarations(Placeholder::Blur, &m).unwrap(),
            format!("background:#a0b1c2 url({URI}) 50% 50%/cover no-repeat")
        );
        // blur without a placeholder in the answer: the colour
        let m = measure(false, Some("#a0b1c2"), None);
        assert_eq!(
            declarations(Placeholder::Blur, &m).as_deref(),
            Some("background-color:#a0b1c2")
        );
    }

    #[test]
    fn pictures_with_alpha_and_answers_that_could_break_out_get_none() {
        let m = measure(true, Some("#a0b1c2"), Some(URI));
        assert_eq!(declarations(Placeholder::Blur, &m), None);
        assert_eq!(declarations(Placeholder::Color, &m), None);
        for color in ["red", "#a0b1c", "#a0b1c2;x", "#a0b1c2\"", "#gggggg"] {
            let m = measure(false, Some(color), None);
            assert_eq!(declarations(Placeholder::Color, &m), None, "{color}");
        }
        let long = format!("{URI}{}", "A".repeat(MAX_URI + 1 - URI.len()));
        let at_edge = measure(false, None, Some(&long[..MAX_URI]));
        assert!(declarations(Placeholder::Blur, &at_edge).is_some());
        for uri in [
            long.as_str(),
            "data:image/svg+xml;base64,PHN2Zz4=",
            "data:image/webp;base64,AA)x",
            "data:image/webp;base64,AA\"",
            "data:image/webp;base64,",
            "https://example.com/a.webp",
            "data:text/html;base64,PGI+",
        ] {
            let m = measure(false, None, Some(uri));
            assert_eq!(declarations(Placeholder::Blur, &m), None, "{uri}");
        }
    }

    #[test]
    fn a_background_already_set_is_seen_in_any_spelling() {
        for s in [
            "background:red",
            "BACKGROUND-COLOR: #fff",
            "width:600px;background-image:none",
            "list-style: url(a.png)",
        ] {
            assert!(has_background(s), "{s}");
        }
        for s in ["", "width: 600px;", "color:red"] {
            assert!(!has_background(s), "{s}");
        }
    }

    #[test]
    fn merging_keeps_the_style_as_written() {
        let add = "background-color:#000000";
        assert_eq!(merged("", add), add);
        assert_eq!(merged("  ", add), add);
        assert_eq!(
            merged("width: 600px;", add),
            "width: 600px; background-color:#000000"
        );
        assert_eq!(
            merged("width: 600px; ", add),
            "width: 600px; background-color:#000000"
        );
        assert_eq!(
            merged("WIDTH:600PX", add),
            "WIDTH:600PX; background-color:#000000"
        );
    }
}
