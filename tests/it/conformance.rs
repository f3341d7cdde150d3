//! What a file means, read as the formats define it (SPEC §2.2): one answer per file on every
//! transform path, colour through the embedded profile before resampling, animated WebP
//! timing, BMP/ICO header variants, arithmetic-coded and 12-bit JPEG. References were decoded
//! by other software (Pillow with LittleCMS, libwebp) and are checked in as PNG beside the
//! fixtures (`tests/fixtures/README.md` says how each was made); each case has a PSNR floor.

use crate::support::*;

/// An origin serving `files` under `/{name}`.
async fn origin_of(files: Vec<(&str, Vec<u8>)>) -> Origin {
    Origin::files(files.into_iter().map(|(n, b)| (format!("/{n}"), b))).await
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Peak signal-to-noise ratio of `b` against `reference`, over RGB, in dB.
pub(crate) fn psnr(reference: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(reference.dimensions(), b.dimensions(), "sizes differ");
    let n = reference.as_raw().len() as f64;
    let se: f64 = reference
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    if se == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64.powi(2) / (se / n)).log10()
}

pub(crate) fn rgb(body: &[u8]) -> image::RgbImage {
    image::load_from_memory(body)
        .expect("the answer decodes")
        .to_rgb8()
}

/// A 40×30 PNG with one byte of its image data flipped: its chunk CRC no longer matches.
fn corrupt_png() -> Vec<u8> {
    let mut file = png(40, 30);
    let idat = file.windows(4).position(|w| w == b"IDAT").unwrap();
    file[idat + 10] ^= 0x55;
    file
}

/// A 64×48 JPEG cut after two thirds of its bytes.
fn truncated_jpeg() -> Vec<u8> {
    let file = jpeg(64, 48);
    file[..file.len() * 2 / 3].to_vec()
}

/// Regression: a transform that needed no re-encode (no resize, same format, nothing to strip)
/// served the source's bytes unchecked, so a corrupt PNG or a truncated JPEG got 200 for
/// `w=64&output=png` or `output=jpg` and 422 for `q=100`.
#[tokio::test]
async fn a_corrupt_source_is_refused_on_every_transform_path() {
    let (png, jpg) = (corrupt_png(), truncated_jpeg());
    let origin = origin_of(vec![("bad.png", png.clone()), ("cut.jpg", jpg.clone())]).await;
    let relay = Relay::start(|_| {}).await;
    for (name, natural) in [("bad.png", "png"), ("cut.jpg", "jpg")] {
        let url = enc(&origin.url(&format!("/{name}")));
        for params in [
            format!("w=64&output={natural}"),
            format!("output={natural}"),
            "w=64".to_string(),
            "w=16".to_string(),
            "q=100".to_string(),
            "output=webp".to_string(),
        ] {
            let a = relay.get(&format!("/?url={url}&{params}")).await;
            assert_eq!(a.status, 422, "{name} with {params}: {}", a.text());
            assert_eq!(a.header("x-imgrelay-error"), Some("undecodable"));
        }
    }
    // The pass-through form stays byte-exact and unvalidated (SPEC §2.1).
    for (name, bytes) in [("bad.png", &png), ("cut.jpg", &jpg)] {
        let a = relay.pass(&origin.url(&format!("/{name}"))).await;
        assert_eq!(a.status, 200, "{name}");
        assert_eq!(&a.body, bytes, "{name} passed through as it is");
    }
}

/// The same file whole is served as it is on the path that checks it, byte for byte.
#[tokio::test]
async fn a_sound_source_that_needs_no_reencode_is_served_as_it_is() {
    let (png, jpg) = (png(40, 30), jpeg(64, 48));
    let origin = origin_of(vec![("ok.png", png.clone()), ("ok.jpg", jpg.clone())]).await;
    let relay = Relay::start(|_| {}).await;
    for (name, bytes, params) in [
        ("ok.png", &png, "w=64&output=png"),
        ("ok.jpg", &jpg, "output=jpg"),
    ] {
        let url = enc(&origin.url(&format!("/{name}")));
        let a = relay.get(&format!("/?url={url}&{params}")).await;
        assert_eq!(a.status, 200, "{name}: {}", a.text());
        assert_eq!(&a.body, bytes, "{name} served unchanged");
        let timing = a.header("server-timing").unwrap_or_default();
        assert!(timing.contains("decode;dur="), "checked: {timing}");
    }
}

/// Fetches `conformance/{name}` through imgrelay with `params` and returns the answer.
async fn through(name: &str, params: &str) -> Answer {
    through_in("conformance", name, params).await
}

/// `through` for a fixture in `tests/fixtures/{dir}`.
pub(crate) async fn through_in(dir: &str, name: &str, params: &str) -> Answer {
    let origin = origin_of(vec![(name, fixture(&format!("{dir}/{name}")))]).await;
    let relay = Relay::start(|_| {}).await;
    let url = enc(&origin.url(&format!("/{name}")));
    relay.get(&format!("/?url={url}&{params}")).await
}

/// Asserts the answer is within `floor` dB of the checked-in reference (RGB).
fn assert_near(a: &Answer, reference: &str, floor: f64) {
    assert_near_in("conformance", a, reference, floor);
}

/// `assert_near` for a reference in `tests/fixtures/{dir}`.
pub(crate) fn assert_near_in(dir: &str, a: &Answer, reference: &str, floor: f64) {
    assert_eq!(a.status, 200, "{reference}: {}", a.text());
    let want = rgb(&fixture(&format!("{dir}/{reference}")));
    let got = psnr(&want, &rgb(&a.body));
    eprintln!("{reference}: {got:.1} dB");
    assert!(got >= floor, "{reference}: {got:.1} dB, floor {floor} dB");
}

/// Regression: a CMYK JPEG tagged with a (SWOP-like, LUT-based) CMYK profile was converted
/// naively, ignoring the profile: 27 dB from LittleCMS's conversion through it (51 dB now).
#[tokio::test]
async fn a_cmyk_jpeg_is_converted_through_its_profile() {
    let a = through("cmyk-swop.jpg", "output=png").await;
    assert_near(&a, "cmyk-swop.ref.png", 45.0);
    // Shrunk on load (DCT scaling) and converted before the resampler, the same colours.
    let small = through("cmyk-swop.jpg", "w=48&output=png").await;
    assert_eq!(small.status, 200, "{}", small.text());
    let want = image::imageops::resize(
        &rgb(&fixture("conformance/cmyk-swop.ref.png")),
        48,
        30,
        image::imageops::FilterType::Triangle,
    );
    let got = psnr(&want, &rgb(&small.body));
    assert!(got >= 38.0, "48 px wide: {got:.1} dB");
}

/// Regression: the ICC conversion ran after the resampler; with a LUT-based profile far from
/// linear, a 64-px thumbnail was 14 dB from convert-then-resize (48 dB now; the reference was
/// reduced by Pillow's Lanczos, another resampler than ours).
#[tokio::test]
async fn a_lut_profile_is_applied_before_resampling() {
    let a = through("rgb-lut.png", "w=64&output=png").await;
    assert_near(&a, "rgb-lut.64.ref.png", 40.0);
}

/// Regression: a grey ICC profile (here a linear tone curve) was ignored: 11 dB (59 dB now).
#[tokio::test]
async fn a_grey_profile_is_applied() {
    let a = through("gray-linear.png", "output=png").await;
    assert_near(&a, "gray-linear.ref.png", 50.0);
}

/// PSNR over premultiplied RGBA, so that the colour under a transparent pixel does not count.
pub(crate) fn psnr_rgba(reference: &image::RgbaImage, b: &image::RgbaImage) -> f64 {
    assert_eq!(reference.dimensions(), b.dimensions(), "sizes differ");
    let pre = |p: &image::Rgba<u8>| {
        let a = f64::from(p[3]) / 255.0;
        [
            f64::from(p[0]) * a,
            f64::from(p[1]) * a,
            f64::from(p[2]) * a,
            f64::from(p[3]),
        ]
    };
    let se: f64 = reference
        .pixels()
        .zip(b.pixels())
        .flat_map(|(x, y)| {
            let (x, y) = (pre(x), pre(y));
            (0..4).map(move |i| (x[i] - y[i]).powi(2))
        })
        .sum();
    let n = f64::from(reference.width() * reference.height() * 4);
    if se == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64.powi(2) / (se / n)).log10()
}

/// Asserts an image answer is within `floor` dB of the reference, alpha included.
fn assert_rgba_near(a: &Answer, reference: &str, floor: f64) {
    assert_rgba_near_in("conformance", a, reference, floor);
}

/// `assert_rgba_near` for a reference in `tests/fixtures/{dir}`.
pub(crate) fn assert_rgba_near_in(dir: &str, a: &Answer, reference: &str, floor: f64) {
    assert_eq!(a.status, 200, "{reference}: {}", a.text());
    let want = image::load_from_memory(&fixture(&format!("{dir}/{reference}")))
        .unwrap()
        .to_rgba8();
    let got = image::load_from_memory(&a.body).unwrap().to_rgba8();
    let db = psnr_rgba(&want, &got);
    eprintln!("{reference}: {db:.1} dB");
    assert!(db >= floor, "{reference}: {db:.1} dB, floor {floor} dB");
}

/// Regression: an OS/2 1.x BMP (12-byte header) had its 16-bit sides read as 32-bit ones
/// (127×64 read as 4194431×524289: 422 pixel_limit), and an OS/2 2.x header (64 bytes) was
/// refused by the image crate as unknown. With them, the Windows variants beside them.
#[tokio::test]
async fn bmp_and_ico_header_variants_are_read_as_written() {
    for (file, reference, floor) in [
        ("os2v1.bmp", "os2v1.ref.png", 60.0),
        ("os2v2.bmp", "os2v2.ref.png", 60.0),
        ("bitfields565.bmp", "bitfields565.ref.png", 45.0),
        ("bitfields-alpha.bmp", "bitfields-alpha.ref.png", 45.0),
        ("and-mask.ico", "and-mask.ref.png", 60.0),
    ] {
        let a = through(file, "output=png").await;
        assert_rgba_near(&a, reference, floor);
    }
}

/// Regression: the pixels an RLE bitmap's runs skip (a delta escape, lines ended early) were
/// painted black; they are transparent, as browsers show them.
#[tokio::test]
async fn pixels_an_rle_bmp_skips_are_transparent() {
    let a = through("rle8-delta.bmp", "output=png").await;
    assert_rgba_near(&a, "rle8-delta.ref.png", 60.0);
}

/// Regression: an arithmetic-coded JPEG was refused although libjpeg-turbo decodes it.
#[tokio::test]
async fn an_arithmetic_coded_jpeg_is_decoded() {
    let a = through("arith.jpg", "output=png").await;
    assert_near(&a, "arith.ref.png", 45.0);
    let small = through("arith.jpg", "w=24&output=png").await;
    assert_eq!(small.status, 200, "{}", small.text());
    assert_eq!(decoded_size(&small.body), (24, 15));
}

/// Regression: a 12-bit JPEG was refused with a generic reason; the reason names the feature.
#[tokio::test]
async fn a_12_bit_jpeg_is_refused_naming_the_feature() {
    for params in ["output=png", "w=8&output=png", "output=jpg", "q=100"] {
        let a = through("precision12.jpg", params).await;
        assert_eq!(a.status, 422, "{params}: {}", a.text());
        assert!(a.text().contains("12-bit JPEG"), "{params}: {}", a.text());
    }
}

/// Regression: animated WebP output gave its last frame the mean of the other delays (the end
/// timestamp was not passed to libwebp: 1000 ms became 200), and the container's alpha flag
/// must be set when any frame has transparency (here only the third).
#[tokio::test]
async fn animated_webp_output_keeps_every_delay_and_its_alpha_flag() {
    use image::AnimationDecoder;
    let a = through("delays.gif", "output=webp").await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(&a.body[12..16], b"VP8X");
    assert_ne!(a.body[20] & 0x10, 0, "alpha flag set");
    assert_ne!(a.body[20] & 0x02, 0, "animation flag set");
    let frames = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&a.body))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    let delays: Vec<u32> = frames
        .iter()
        .map(|f| {
            let (n, d) = f.delay().numer_denom_ms();
            n / d
        })
        .collect();
    assert_eq!(delays, [100, 200, 300, 1000]);
    assert!(
        frames[2].buffer().pixels().any(|p| p[3] == 0),
        "the third frame's hole is transparent"
    );
}

/// Regression: the frames of an animated WebP were not converted from its ICC profile, though
/// its still (the first frame, for a still output) was: one file, two colourings (9 dB apart;
/// 30 dB now, what lossy WebP's 4:2:0 leaves of these saturated colours).
#[tokio::test]
async fn an_animated_webp_is_converted_from_its_profile_frame_by_frame() {
    use image::AnimationDecoder;
    let still = through("anim-lut.webp", "w=60&output=png").await;
    assert_eq!(still.status, 200, "{}", still.text());
    let animated = through("anim-lut.webp", "w=60&output=webp&q=100").await;
    assert_eq!(animated.status, 200, "{}", animated.text());
    let frames = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&animated.body))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert!(frames.len() > 1, "still animated");
    let first = image::DynamicImage::ImageRgba8(frames[0].buffer().clone()).to_rgb8();
    let db = psnr(&rgb(&still.body), &first);
    assert!(db >= 25.0, "first frame against the still: {db:.1} dB");
}
