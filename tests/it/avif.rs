//! AVIF sources end to end: made at test time by imgrelay's own encoder, served by a loopback
//! origin, transformed to every output format, decoded back and looked at; broken and
//! oversized files are 422s.

use crate::support::*;
use imgrelay::image::{avif, decode, format::ImageFormat, Limits};

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `w`×`h`: red on the left half, blue on the right; with `alpha`, the left half is fully
/// transparent.
fn halves(w: u32, h: u32, alpha: bool) -> Vec<u8> {
    let channels = if alpha { 4 } else { 3 };
    let mut px = Vec::new();
    for _y in 0..h {
        for x in 0..w {
            let left = x < w / 2;
            px.extend_from_slice(if left { &[220, 30, 40] } else { &[30, 40, 220] });
            if alpha {
                px.push(if left { 0 } else { 255 });
            }
        }
    }
    avif::encode(&px, channels, w as usize, h as usize, 90).unwrap()
}

/// RGB of the answer's pixel (x, y), whatever format it came in. JPEG goes through
/// libjpeg-turbo, as in browsers: zune-jpeg (the `image` crate's) misreads the colours of
/// JPEGs with optimised Huffman tables over flat areas.
fn pixel(body: &[u8], x: u32, y: u32) -> [u8; 3] {
    let rgba = match ImageFormat::sniff(body) {
        Some(ImageFormat::Avif) => decode::still(body, ImageFormat::Avif, &Limits::default())
            .unwrap()
            .into_rgba(),
        Some(ImageFormat::Jpeg) => {
            let d = mozjpeg::Decompress::new_mem(body).unwrap();
            let mut started = d.rgb().unwrap();
            let (w, h) = (started.width() as u32, started.height() as u32);
            let rgb: Vec<u8> = started.read_scanlines().unwrap();
            image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, rgb).unwrap())
                .into_rgba8()
        }
        _ => image::load_from_memory(body).unwrap().into_rgba8(),
    };
    let p = rgba.get_pixel(x, y);
    [p[0], p[1], p[2]]
}

fn near(got: [u8; 3], want: [u8; 3]) -> bool {
    got.iter().zip(want).all(|(&g, w)| g.abs_diff(w) <= 30)
}

async fn origin(files: Vec<(&'static str, Vec<u8>)>) -> Origin {
    Origin::start(move |req| {
        match files
            .iter()
            .find(|(name, _)| req.target == format!("/{name}"))
        {
            Some((_, body)) => Reply::ok("image/avif", body),
            None => Reply::status(404),
        }
    })
    .await
}

#[tokio::test]
async fn an_avif_source_to_every_output_format() {
    let origin = origin(vec![("a.avif", halves(200, 100, false))]).await;
    let relay = Relay::start(|_| {}).await;
    let src = enc(&origin.url("/a.avif"));
    for (output, want) in [
        ("&output=jpg", ImageFormat::Jpeg),
        ("&output=png", ImageFormat::Png),
        ("&output=webp", ImageFormat::Webp),
        ("&output=avif", ImageFormat::Avif),
        ("", ImageFormat::Avif),
    ] {
        let a = relay.get(&format!("/?url={src}&w=100{output}")).await;
        assert_eq!(a.status, 200, "{output}: {}", a.text());
        assert_eq!(ImageFormat::sniff(&a.body), Some(want), "{output}");
        let size = match want {
            ImageFormat::Avif => avif_size(&a.body),
            _ => decoded_size(&a.body),
        };
        assert_eq!(size, (100, 50), "{output}");
        assert!(
            near(pixel(&a.body, 10, 25), [220, 30, 40]),
            "{output}: left is red"
        );
        assert!(
            near(pixel(&a.body, 90, 25), [30, 40, 220]),
            "{output}: right is blue"
        );
    }
}

#[tokio::test]
async fn avif_alpha_is_kept_or_flattened_on_bg_for_jpeg() {
    let origin = origin(vec![("alpha.avif", halves(64, 32, true))]).await;
    let relay = Relay::start(|_| {}).await;
    let src = enc(&origin.url("/alpha.avif"));
    let a = relay
        .get(&format!("/?url={src}&w=64&output=jpg&bg=00ff00"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(near(pixel(&a.body, 5, 16), [0, 255, 0]), "transparent → bg");
    let p = pixel(&a.body, 60, 16);
    assert!(near(p, [30, 40, 220]), "opaque stays: {p:?}");
    let a = relay.get(&format!("/?url={src}&w=64&output=png")).await;
    let png = image::load_from_memory(&a.body).unwrap().into_rgba8();
    assert!(png.get_pixel(5, 16)[3] < 10, "{:?}", png.get_pixel(5, 16));
    assert_eq!(png.get_pixel(60, 16)[3], 255);
}

#[tokio::test]
async fn truncated_and_oversized_avif_are_422() {
    let whole = halves(64, 48, false);
    let truncated = whole[..whole.len() / 2].to_vec();
    // A header claiming 60000×60000 over AV1 data of zeros: the size is the AV1 sequence
    // header's, and there is none.
    let mut bomb = whole.clone();
    let ispe = bomb.windows(4).position(|w| w == b"ispe").unwrap();
    bomb[ispe + 8..ispe + 16].copy_from_slice(&[0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60]);
    let mdat = bomb.windows(4).position(|w| w == b"mdat").unwrap();
    bomb[mdat + 4..].fill(0);
    // A 192×128 grid of six tiles, against a pixel limit one pixel short of it, then at it.
    let grid = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/avif/grid.avif"
    ))
    .unwrap();
    let origin = origin(vec![
        ("cut.avif", truncated),
        ("bomb.avif", bomb),
        ("grid.avif", grid),
    ])
    .await;
    let target = |name: &str| {
        format!(
            "/?url={}&w=32&output=jpg",
            enc(&origin.url(&format!("/{name}")))
        )
    };
    let relay = Relay::start(|c| c.limits.max_source_pixels = 192 * 128 - 1).await;
    for (name, code) in [
        ("cut.avif", "undecodable"),
        ("bomb.avif", "undecodable"),
        ("grid.avif", "pixel_limit"),
    ] {
        let a = relay.get(&target(name)).await;
        assert_eq!(a.status, 422, "{name}: {}", a.text());
        assert_eq!(a.header("x-imgrelay-error"), Some(code), "{name}");
    }
    let relay = Relay::start(|c| c.limits.max_source_pixels = 192 * 128).await;
    let a = relay.get(&target("grid.avif")).await;
    assert_eq!(a.status, 200, "at the limit: {}", a.text());
    assert_eq!(decoded_size(&a.body), (32, 21));
}

#[tokio::test]
async fn an_animated_avif_answers_its_first_frame() {
    let anim = fixture("anim.avif");
    let origin = origin(vec![("anim.avif", anim)]).await;
    let relay = Relay::start(|_| {}).await;
    let src = enc(&origin.url("/anim.avif"));
    for output in ["png", "webp", "gif"] {
        let a = relay
            .get(&format!("/?url={src}&w=24&output={output}"))
            .await;
        assert_eq!(a.status, 200, "{output}: {}", a.text());
        assert_eq!(decoded_size(&a.body), (24, 16), "{output}");
        let p = pixel(&a.body, 12, 8);
        assert!(
            near(p, [220, 30, 40]),
            "{output}: the first frame is red: {p:?}"
        );
    }
}
