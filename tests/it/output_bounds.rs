//! SPEC §2.2's output rule at its edges: no answer has a side over `limits.max_output_px`, with
//! or without `w`/`h` (scaled down, never cropped), and a result a format cannot store is a 422
//! that says so. Sources are one pixel wide (or high) and made at test time, so even the
//! 65536-pixel edges stay cheap to encode.

use crate::support::*;

/// A grey PNG of `w`×`h` with a gradient along its long side.
fn strip(w: u32, h: u32) -> Vec<u8> {
    let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x + y) % 251) as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The size of an answer: decoded for the formats `image` reads, from the `ispe` property for
/// AVIF.
fn answer_size(bytes: &[u8]) -> (u32, u32) {
    if bytes.get(4..12) == Some(b"ftypavif") {
        return avif_size(bytes);
    }
    decoded_size(bytes)
}

const FORMATS: [&str; 5] = ["jpg", "png", "webp", "avif", "gif"];

/// An origin serving `strip(w, h)` at `/{w}x{h}.png`.
async fn strips() -> Origin {
    Origin::start(|req| {
        let name = req.target.trim_start_matches('/').trim_end_matches(".png");
        let (w, h) = name.split_once('x').expect("/{w}x{h}.png");
        Reply::ok("image/png", &strip(w.parse().unwrap(), h.parse().unwrap()))
    })
    .await
}

/// Asks for `(w, h)` sources as `output`, with the extra query `q`, and checks the answer is
/// `expected` (a size, or `None` for a 422 `output_too_large`).
async fn check(
    relay: &Relay,
    origin: &Origin,
    (w, h): (u32, u32),
    output: &str,
    q: &str,
    expected: Option<(u32, u32)>,
) {
    let src = origin.url(&format!("/{w}x{h}.png"));
    let a = relay.get(&format!("/?url={src}&output={output}{q}")).await;
    let what = format!("{w}×{h} output={output}{q}");
    match expected {
        Some(size) => {
            assert_eq!(a.status, 200, "{what}: {}", a.text());
            assert_eq!(answer_size(&a.body), size, "{what}");
        }
        None => {
            assert_eq!(a.status, 422, "{what}: {}", a.text());
            assert_eq!(
                a.header("x-imgrelay-error"),
                Some("output_too_large"),
                "{what}"
            );
            let named = match output {
                "jpg" => "JPEG",
                "webp" => "WebP",
                other => &other.to_uppercase(),
            };
            assert!(
                a.text().contains(named),
                "{what}: the reason names the format: {}",
                a.text()
            );
        }
    }
}

/// Large outputs in a debug build on a shared machine: this suite checks sizes, not speed.
fn slow_machine(c: &mut imgrelay::config::Config) {
    c.transform.timeout = imgrelay::config::Dur(std::time::Duration::from_secs(300));
}

#[tokio::test]
async fn tall_png_to_jpeg_is_scaled_to_the_limit_not_cropped() {
    // Was a 200 with a 100×4464 JPEG: the height went to the encoder as 70000 as u16.
    let origin = strips().await;
    let relay = Relay::start(slow_machine).await;
    let src = origin.url("/100x70000.png");
    let a = relay.get(&format!("/?url={src}&output=jpg")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(decoded_size(&a.body), (12, 8192));
    let a = relay.get(&format!("/?url={src}&w=50&output=jpg")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(decoded_size(&a.body), (12, 8192), "w=50 gave 50×35000");
    let src = origin.url("/9000x600.png");
    let a = relay.get(&format!("/?url={src}&output=jpg")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(decoded_size(&a.body), (8192, 546), "was 9000 px wide");
}

#[tokio::test]
async fn tall_png_to_webp_and_avif_is_scaled_not_a_500() {
    let origin = strips().await;
    let relay = Relay::start(slow_machine).await;
    let src = origin.url("/1x70000.png");
    for output in ["webp", "avif"] {
        let a = relay.get(&format!("/?url={src}&output={output}")).await;
        assert_eq!(a.status, 200, "{output}: {}", a.text());
        assert_eq!(answer_size(&a.body), (1, 8192), "{output}");
    }
}

/// An imgrelay whose transforms may take long: AV1 encoding is slow in a debug build, and
/// these are the largest results the tests ask for.
async fn patient(max_output_px: u32) -> Relay {
    Relay::start(move |c| {
        c.limits.max_output_px = max_output_px;
        c.transform.timeout = imgrelay::config::Dur(std::time::Duration::from_secs(300));
    })
    .await
}

/// The extra queries each edge is asked with: none, and a box; AVIF (the slow encoder) once.
fn queries(output: &str, boxed: String) -> Vec<String> {
    if output == "avif" {
        vec![String::new()]
    } else {
        vec![String::new(), boxed]
    }
}

#[tokio::test]
async fn default_limit_edges_8192_and_8193_for_every_format() {
    let origin = strips().await;
    let relay = patient(8192).await;
    for output in FORMATS {
        for q in queries(output, "&w=1".into()) {
            check(&relay, &origin, (1, 8192), output, &q, Some((1, 8192))).await;
        }
        for q in queries(output, "&h=8192".into()) {
            check(&relay, &origin, (1, 8193), output, &q, Some((1, 8192))).await;
        }
        for q in queries(output, "&h=1".into()) {
            check(&relay, &origin, (8193, 1), output, &q, Some((8192, 1))).await;
        }
    }
}

#[tokio::test]
async fn an_enlarging_outside_fit_is_bounded_too() {
    // fit=outside with we=0 covers the box: 8192 × (8192 × 8192) before the bound.
    let origin = strips().await;
    let relay = Relay::start(|_| {}).await;
    let q = "&w=8192&h=1&fit=outside&we=0";
    check(&relay, &origin, (1, 8192), "png", q, Some((1, 8192))).await;
}

#[tokio::test]
async fn raised_limit_edges_at_each_formats_own_maximum() {
    let origin = strips().await;
    let relay = patient(70000).await;
    // (side, formats that hold it); the rest answer 422 naming the format.
    let edges: [(u32, &[&str]); 4] = [
        (16383, &FORMATS),
        (16384, &["jpg", "png", "avif", "gif"]),
        (65535, &["jpg", "png", "avif", "gif"]),
        (65536, &["png"]),
    ];
    for (side, fit) in edges {
        for output in FORMATS {
            let ok = fit.contains(&output);
            for q in queries(output, format!("&h={side}")) {
                let expected = ok.then_some((1, side));
                check(&relay, &origin, (1, side), output, &q, expected).await;
            }
        }
    }
    // Over the raised limit: scaled to it, where the format holds 70000.
    check(&relay, &origin, (1, 70001), "png", "", Some((1, 70000))).await;
    check(&relay, &origin, (1, 70001), "jpg", "", None).await;
}
