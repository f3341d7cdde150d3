//! `output=json` (SPEC §2.2): a source's metadata as a build tool or `imgrelay rewrite
//! --info-from` reads it, through a real imgrelay and a loopback origin: the fields (size as
//! displayed, frames, transparency, bytes, dominant colour), and the rules every variant
//! follows: signing, caching, purging, the pixel limit, a 422 for a corrupt file, a 400 for
//! any parameter beside `url` and `s`.

#[path = "../common/pixels.rs"]
mod pixels;

use crate::support::*;
use imgrelay::{config::Secret, sign};

/// A 40×30 PNG: opaque red but for a transparent 10×30 band on the left.
fn red_with_clear_band() -> Vec<u8> {
    let img = image::RgbaImage::from_fn(40, 30, |x, _| {
        if x < 10 {
            image::Rgba([0, 0, 255, 0])
        } else {
            image::Rgba([220, 20, 30, 255])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn origin() -> Origin {
    let files: Vec<(String, Vec<u8>)> = [
        "orient6.jpg",
        "anim.gif",
        "anim.webp",
        "photo.jpg",
        "alpha-lossless.webp",
    ]
    .iter()
    .map(|n| (format!("/{n}"), fixture(n)))
    .chain([
        ("/band.png".to_string(), red_with_clear_band()),
        (
            "/cut.png".to_string(),
            red_with_clear_band()[..200].to_vec(),
        ),
        ("/page.html".to_string(), b"<html>hello</html>".to_vec()),
    ])
    .collect();
    Origin::files(files).await
}

fn json(a: &Answer) -> serde_json::Value {
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("application/json"));
    serde_json::from_slice(&a.body).unwrap()
}

fn info_target(origin: &Origin, path: &str) -> String {
    format!("/?url={}&output=json", origin.url(path))
}

#[tokio::test]
async fn output_json_describes_the_source_as_displayed() {
    let origin = origin().await;
    let relay = Relay::start(|_| {}).await;

    let photo = fixture("orient6.jpg");
    let stored = image::load_from_memory(&photo).unwrap();
    let j = json(&relay.get(&info_target(&origin, "/orient6.jpg")).await);
    assert_eq!(j["format"], "jpeg");
    // EXIF orientation 6: displayed a quarter turn from how it is stored.
    assert_eq!(j["width"], stored.height());
    assert_eq!(j["height"], stored.width());
    assert_eq!(j["frames"], 1);
    assert_eq!(j["has_alpha"], false);
    assert_eq!(j["bytes"], photo.len());

    let j = json(&relay.get(&info_target(&origin, "/band.png")).await);
    assert_eq!(
        (&j["format"], &j["width"], &j["height"]),
        (&"png".into(), &40.into(), &30.into())
    );
    assert_eq!(j["has_alpha"], true);
    assert_eq!(
        j["dominant_color"], "#dc141e",
        "the opaque red, not the clear band"
    );

    for (path, format) in [("/anim.gif", "gif"), ("/anim.webp", "webp")] {
        let j = json(&relay.get(&info_target(&origin, path)).await);
        assert_eq!(j["format"], format);
        assert!(j["frames"].as_u64().unwrap() > 1, "{path}: {j}");
    }
    // A lossless WebP whose every pixel is opaque has nothing to see through.
    let j = json(
        &relay
            .get(&info_target(&origin, "/alpha-lossless.webp"))
            .await,
    );
    assert_eq!(
        (&j["format"], &j["has_alpha"]),
        (&"webp".into(), &false.into())
    );
    let colour = j["dominant_color"].as_str().unwrap().to_string();
    assert!(colour.len() == 7 && colour.starts_with('#'), "{colour}");

    // HEAD: the same headers, no body.
    let head = request(relay.addr, "HEAD", &info_target(&origin, "/photo.jpg"), &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn output_json_takes_only_url_and_s() {
    let origin = origin().await;
    let relay = Relay::start(|_| {}).await;
    for extra in [
        "w=100",
        "q=50",
        "default=127.0.0.1/x.jpg",
        "we",
        "fit=cover",
    ] {
        let a = relay
            .get(&format!("{}&{extra}", info_target(&origin, "/photo.jpg")))
            .await;
        assert_eq!(a.status, 400, "{extra}: {}", a.text());
        assert!(a.text().contains("output=json"), "{}", a.text());
    }
    assert!(origin.seen().is_empty(), "refused before any fetch");
}

#[tokio::test]
async fn output_json_refuses_what_a_transform_refuses() {
    let origin = origin().await;
    let relay = Relay::start(|c| c.limits.max_source_pixels = 1000).await;
    let a = relay.get(&info_target(&origin, "/photo.jpg")).await;
    assert_eq!(
        (a.status, a.header("x-imgrelay-error")),
        (422, Some("pixel_limit"))
    );
    let relay = Relay::start(|_| {}).await;
    let a = relay.get(&info_target(&origin, "/cut.png")).await;
    assert_eq!(a.status, 422, "a truncated PNG: {}", a.text());
    assert_eq!(
        relay.get(&info_target(&origin, "/page.html")).await.status,
        415
    );
    assert_eq!(
        relay
            .get(&info_target(&origin, "/missing.jpg"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn output_json_is_signed_cached_and_purged_like_any_variant() {
    let origin = origin().await;
    let key = Secret("a-signing-key-that-is-32-bytes-long".into());
    let k = key.clone();
    let relay = Relay::start(move |c| {
        c.security.signing_keys = vec![k];
        c.cache.memory_bytes = imgrelay::config::Bytes(16 << 20);
        c.server.admin_token = Secret("info-token".into());
    })
    .await;
    let target = info_target(&origin, "/photo.jpg");
    assert_eq!(relay.get(&target).await.status, 403, "unsigned");
    let s = sign::signature(key.expose().as_bytes(), target.as_bytes());
    let signed = format!("{target}&s={s}");
    let first = relay.get(&signed).await;
    assert_eq!(first.header("x-cache"), Some("MISS"));
    let fields = json(&first);
    assert!(first.header("xkey").is_some());
    let again = relay.get(&signed).await;
    assert_eq!(again.header("x-cache"), Some("HIT-MEMORY"));
    assert_eq!(json(&again), fields);
    assert_eq!(origin.seen().len(), 1);

    let purge = format!(
        "/purge?url={}",
        form_urlencoded::byte_serialize(origin.url("/photo.jpg").as_bytes()).collect::<String>()
    );
    let purged = request(
        relay.addr,
        "POST",
        &purge,
        &[
            ("Authorization", "Bearer info-token"),
            ("Content-Length", "0"),
        ],
    )
    .await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    assert_eq!(relay.get(&signed).await.header("x-cache"), Some("MISS"));
    assert_eq!(origin.seen().len(), 2, "the purge took the original too");
}

/// The picture a `data:image/webp;base64,…` placeholder holds.
fn placeholder_image(uri: &str) -> image::RgbImage {
    use base64::Engine;
    let b64 = uri
        .strip_prefix("data:image/webp;base64,")
        .unwrap_or_else(|| panic!("not a WebP data URI: {uri}"));
    let webp = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    image::load_from_memory_with_format(&webp, image::ImageFormat::WebP)
        .unwrap()
        .into_rgb8()
}

#[tokio::test]
async fn output_json_carries_a_small_blurred_placeholder_of_opaque_images() {
    let origin = origin().await;
    let relay = Relay::start(|_| {}).await;
    for name in ["photo.jpg", "orient6.jpg", "alpha-lossless.webp"] {
        let j = json(&relay.get(&info_target(&origin, &format!("/{name}"))).await);
        let uri = j["placeholder"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no placeholder in {j}"));
        assert!(uri.len() <= 400, "{name}: {} bytes", uri.len());
        let small = placeholder_image(uri);
        let source = image::load_from_memory(&fixture(name)).unwrap().into_rgb8();
        // Tiny, shaped like the picture as displayed (orient6 is taller than wide).
        let (w, h) = (j["width"].as_f64().unwrap(), j["height"].as_f64().unwrap());
        assert_eq!(small.width().max(small.height()), 16, "{name}");
        let aspect = f64::from(small.width()) / f64::from(small.height());
        assert!(
            (aspect - w / h).abs() < 0.15,
            "{name}: {aspect} vs {}",
            w / h
        );
        // Its colour is the picture's, on average, within a few levels.
        let (got, want) = (pixels::mean(&small), pixels::mean(&source));
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() < 12.0,
                "{name}: mean {got:?}, picture {want:?}"
            );
        }
    }
    // A picture with transparency has none: a placeholder would show through it.
    let j = json(&relay.get(&info_target(&origin, "/band.png")).await);
    assert_eq!(j["has_alpha"], true);
    assert!(j.get("placeholder").is_none(), "{j}");
}
