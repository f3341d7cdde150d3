//! The transform API end to end: every input format × every output format on real pictures,
//! fit geometry, orientation, colour, animation, limits, signing and overload.

use crate::support::*;
use imgrelay::{
    config::{Dur, Secret},
    image::format::ImageFormat,
    sign,
};
use std::{sync::Arc, time::Duration};

const FIXTURES: &[&str] = &[
    "photo.jpg",
    "photo-progressive.jpg",
    "photo-gray.jpg",
    "photo-cmyk.jpg",
    "orient6.jpg",
    "orient6.webp",
    "art-rgba.png",
    "art-palette.png",
    "lossy.webp",
    "alpha-lossless.webp",
    "anim.gif",
    "anim.webp",
    "small.bmp",
];

/// An origin serving every fixture under `/f/{name}` plus extra generated files.
async fn fixture_origin(extra: Vec<(&'static str, Vec<u8>)>) -> Origin {
    let fixtures = FIXTURES.iter().map(|n| (*n, fixture(n)));
    Origin::files(fixtures.chain(extra).map(|(n, b)| (format!("/f/{n}"), b))).await
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn size_of(body: &[u8], format: ImageFormat) -> (u32, u32) {
    match format {
        ImageFormat::Avif => avif_size(body),
        _ => decoded_size(body),
    }
}

#[tokio::test]
async fn every_input_format_to_every_output_format() {
    let origin = fixture_origin(vec![]).await;
    let relay = Relay::start(|_| {}).await;
    for name in FIXTURES {
        for (output, want) in [
            ("jpg", ImageFormat::Jpeg),
            ("png", ImageFormat::Png),
            ("webp", ImageFormat::Webp),
            ("avif", ImageFormat::Avif),
            ("gif", ImageFormat::Gif),
        ] {
            let a = relay
                .get(&format!(
                    "/?url={}&w=64&output={output}",
                    enc(&origin.url(&format!("/f/{name}")))
                ))
                .await;
            assert_eq!(a.status, 200, "{name} → {output}: {}", a.text());
            assert_eq!(
                ImageFormat::sniff(&a.body),
                Some(want),
                "{name} → {output}: magic"
            );
            assert_eq!(
                a.header("content-type"),
                Some(want.mime()),
                "{name} → {output}"
            );
            let (w, h) = size_of(&a.body, want);
            assert_eq!(w, 64, "{name} → {output}: width");
            assert!(h > 0 && h < 200, "{name} → {output}: height {h}");
        }
    }
}

#[tokio::test]
async fn fit_modes_dpr_and_enlargement() {
    let origin = fixture_origin(vec![]).await;
    let relay = Relay::start(|_| {}).await;
    let src = enc(&origin.url("/f/photo.jpg")); // 480×300
    for (params, size) in [
        ("w=200&h=200", (200, 125)),
        ("w=200&h=200&fit=inside", (200, 125)),
        ("w=200&h=200&fit=outside", (320, 200)),
        ("w=200&h=200&fit=cover", (200, 200)),
        ("w=200&h=200&fit=cover&a=top-left", (200, 200)),
        ("w=200&h=200&fit=fill", (200, 200)),
        ("w=200&h=200&fit=contain", (200, 200)),
        ("w=100&h=100&dpr=2&fit=cover", (200, 200)),
        ("h=150", (240, 150)),
        ("w=960", (480, 300)),
        ("w=960&we=0", (960, 600)),
        ("w=960&h=960&fit=fill", (480, 300)),
    ] {
        let a = relay.get(&format!("/?url={src}&{params}")).await;
        assert_eq!(a.status, 200, "{params}: {}", a.text());
        assert_eq!(decoded_size(&a.body), size, "{params}");
    }
}

fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

#[tokio::test]
async fn exif_orientation_is_applied_and_metadata_stripped() {
    let origin = fixture_origin(vec![]).await;
    let relay = Relay::start(|_| {}).await;
    let upright = relay
        .get(&format!(
            "/?url={}&w=240&output=png",
            enc(&origin.url("/f/photo.jpg"))
        ))
        .await;
    let turned = relay
        .get(&format!(
            "/?url={}&w=240&output=png",
            enc(&origin.url("/f/orient6.jpg"))
        ))
        .await;
    let (u, t) = (
        image::load_from_memory(&upright.body).unwrap().to_rgb8(),
        image::load_from_memory(&turned.body).unwrap().to_rgb8(),
    );
    assert_eq!(
        t.dimensions(),
        (240, 150),
        "orientation 6 comes out landscape"
    );
    assert!(
        mean_abs_diff(&u, &t) < 6.0,
        "and upright: {}",
        mean_abs_diff(&u, &t)
    );
    // The same for a WebP carrying EXIF (libwebp's fast path would ignore it).
    let webp = relay
        .get(&format!(
            "/?url={}&w=240&output=png",
            enc(&origin.url("/f/orient6.webp"))
        ))
        .await;
    let w = image::load_from_memory(&webp.body).unwrap().to_rgb8();
    assert_eq!(w.dimensions(), (240, 150), "a WebP's orientation 6 too");
    assert!(
        mean_abs_diff(&u, &w) < 8.0,
        "and upright: {}",
        mean_abs_diff(&u, &w)
    );

    let jpeg_out = relay
        .get(&format!(
            "/?url={}&w=240",
            enc(&origin.url("/f/orient6.jpg"))
        ))
        .await;
    assert!(
        !imgrelay::image::has_metadata(&jpeg_out.body, ImageFormat::Jpeg),
        "EXIF stripped"
    );
    assert!(!jpeg_out.body.windows(4).any(|w| w == b"Exif"));
}

#[tokio::test]
async fn a_cmyk_jpeg_matches_its_rgb_twin() {
    let origin = fixture_origin(vec![]).await;
    let relay = Relay::start(|_| {}).await;
    let target = |name: &str| format!("/?url={}&w=240&output=png", enc(&origin.url(name)));
    let rgb = image::load_from_memory(&relay.get(&target("/f/photo.jpg")).await.body)
        .unwrap()
        .to_rgb8();
    let cmyk = image::load_from_memory(&relay.get(&target("/f/photo-cmyk.jpg")).await.body)
        .unwrap()
        .to_rgb8();
    let d = mean_abs_diff(&rgb, &cmyk);
    assert!(
        d < 8.0,
        "CMYK decoded far from its RGB twin: mean |Δ| = {d}"
    );
}

/// `photo-progressive.jpg` whose second scan (luma AC 1–5) claims a spectral band ending at
/// coefficient 64: libjpeg refuses the file when it reads that scan.
fn progressive_with_a_bad_ac_scan() -> Vec<u8> {
    let mut file = fixture("photo-progressive.jpg");
    let second = file
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == &[0xFF, 0xDA])
        .nth(1)
        .unwrap()
        .0;
    // marker, length, Ns = 1, component and tables, Ss, Se
    assert_eq!(
        (file[second + 4], file[second + 5], file[second + 7]),
        (1, 1, 1)
    );
    file[second + 8] = 64;
    file
}

#[tokio::test]
async fn a_progressive_jpeg_shrunk_to_an_eighth_is_decoded_from_its_dc_scans() {
    let origin = fixture_origin(vec![]).await;
    let relay = Relay::start(|_| {}).await;
    let target = |name: &str, w: u32| format!("/?url={}&w={w}&output=png", enc(&origin.url(name)));
    // At 48 (1/8 of 480) only the DC scans are read: the file comes out like its baseline
    // twin (decoded at 1/4 with every coefficient).
    let decode = |body: &[u8]| image::load_from_memory(body).unwrap().to_rgb8();
    let baseline = decode(&relay.get(&target("/f/photo.jpg", 48)).await.body);
    let a = relay.get(&target("/f/photo-progressive.jpg", 48)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let progressive = decode(&a.body);
    assert_eq!(progressive.dimensions(), (48, 30));
    let d = mean_abs_diff(&baseline, &progressive);
    assert!(d < 4.0, "far from its baseline twin: mean |Δ| = {d}");
}

/// Regression: an AC scan whose header libjpeg refuses made the file undecodable at 240 px
/// wide (422) but not at 48, where the DC-only decode dropped the scan unread (200). One file,
/// one answer (SPEC §2.2): 422 at every width.
#[tokio::test]
async fn a_progressive_jpeg_with_a_bad_ac_scan_is_refused_at_every_scale() {
    let bad = ("bad-ac-scan.jpg", progressive_with_a_bad_ac_scan());
    let origin = fixture_origin(vec![bad]).await;
    let relay = Relay::start(|_| {}).await;
    for w in [240, 120, 48, 16] {
        let a = relay
            .get(&format!(
                "/?url={}&w={w}&output=png",
                enc(&origin.url("/f/bad-ac-scan.jpg"))
            ))
            .await;
        assert_eq!(a.status, 422, "w={w}: {}", a.text());
    }
}

fn frames_of(body: &[u8], format: ImageFormat) -> Vec<(u32, (u32, u32))> {
    use image::AnimationDecoder;
    let cursor = std::io::Cursor::new(body);
    let frames: Vec<image::Frame> = match format {
        ImageFormat::Gif => image::codecs::gif::GifDecoder::new(cursor)
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap(),
        ImageFormat::Webp => image::codecs::webp::WebPDecoder::new(cursor)
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap(),
        other => panic!("{other:?} is not animated"),
    };
    frames
        .iter()
        .map(|f| {
            let (n, d) = f.delay().numer_denom_ms();
            (n / d.max(1), f.buffer().dimensions())
        })
        .collect()
}

#[tokio::test]
async fn animations_keep_their_frames_and_delays() {
    let origin = fixture_origin(vec![]).await;
    let relay = Relay::start(|_| {}).await;
    for (src, output, want) in [
        ("/f/anim.gif", "webp", ImageFormat::Webp),
        ("/f/anim.gif", "gif", ImageFormat::Gif),
        ("/f/anim.webp", "gif", ImageFormat::Gif),
        ("/f/anim.webp", "webp", ImageFormat::Webp),
    ] {
        let a = relay
            .get(&format!(
                "/?url={}&w=60&output={output}",
                enc(&origin.url(src))
            ))
            .await;
        assert_eq!(a.status, 200, "{src} → {output}: {}", a.text());
        let frames = frames_of(&a.body, want);
        assert_eq!(frames.len(), 5, "{src} → {output}");
        for (i, (delay, size)) in frames.iter().enumerate() {
            assert_eq!(*size, (60, 38), "{src} → {output} frame {i}");
            // the last frame's duration is not carried by every encoder path
            if i + 1 < frames.len() {
                assert!(
                    (70..=90).contains(delay),
                    "{src} → {output} frame {i} delay {delay}"
                );
            }
        }
    }
    // A still output takes the first frame.
    let a = relay
        .get(&format!(
            "/?url={}&w=60&output=png",
            enc(&origin.url("/f/anim.gif"))
        ))
        .await;
    assert_eq!(decoded_size(&a.body), (60, 38));
}

fn png_header_claiming(w: u32, h: u32) -> Vec<u8> {
    // A valid signature and IHDR with a correct CRC, then nothing: a "pixel bomb".
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut crc = 0xFFFF_FFFFu32;
    for &b in &ihdr {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0d".to_vec();
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&(!crc).to_be_bytes());
    png.extend_from_slice(&[0u8; 35_000]);
    png
}

fn gif_with_frames(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
        for i in 0..n {
            let px = image::RgbaImage::from_pixel(2, 2, image::Rgba([i as u8, 0, 0, 255]));
            enc.encode_frame(image::Frame::new(px)).unwrap();
        }
    }
    out
}

#[tokio::test]
async fn bombs_truncations_and_garbage_are_422() {
    let photo = fixture("photo.jpg");
    let origin = fixture_origin(vec![
        ("bomb.png", png_header_claiming(60_000, 60_000)),
        ("frames.gif", gif_with_frames(600)),
        ("ok-frames.gif", gif_with_frames(512)),
        ("truncated.jpg", photo[..photo.len() / 2].to_vec()),
        (
            "garbage.jpg",
            [&b"\xFF\xD8\xFF\xE0"[..], &[0x5A; 4000]].concat(),
        ),
        ("truncated.png", fixture("art-rgba.png")[..20_000].to_vec()),
    ])
    .await;
    let relay = Relay::start(|_| {}).await;
    for (name, output, code) in [
        ("bomb.png", "png", "pixel_limit"),
        ("frames.gif", "gif", "frame_limit"),
        ("truncated.jpg", "jpg", "undecodable"),
        ("garbage.jpg", "jpg", "undecodable"),
        ("truncated.png", "png", "undecodable"),
    ] {
        let a = relay
            .get(&format!(
                "/?url={}&w=50&output={output}",
                enc(&origin.url(&format!("/f/{name}")))
            ))
            .await;
        assert_eq!(a.status, 422, "{name}: {}", a.text());
        assert_eq!(a.header("x-imgrelay-error"), Some(code), "{name}");
        assert_eq!(a.header("cache-control"), Some("no-store"));
    }
    // Exactly at the frame limit is fine.
    let a = relay
        .get(&format!(
            "/?url={}&w=2&output=gif",
            enc(&origin.url("/f/ok-frames.gif"))
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(frames_of(&a.body, ImageFormat::Gif).len(), 512);
}

#[tokio::test]
async fn source_pixel_limit_is_inclusive() {
    let origin = fixture_origin(vec![]).await;
    let src = enc(&origin.url("/f/photo.jpg")); // 480×300 = 144000 px
    let at = Relay::start(|c| c.limits.max_source_pixels = 144_000).await;
    assert_eq!(at.get(&format!("/?url={src}&w=10")).await.status, 200);
    let under = Relay::start(|c| c.limits.max_source_pixels = 143_999).await;
    assert_eq!(under.get(&format!("/?url={src}&w=10")).await.status, 422);
}

#[tokio::test]
async fn bad_parameters_are_400() {
    let relay = Relay::start(|_| {}).await;
    for q in [
        "w=0",
        "w=8193",
        "q=101",
        "fit=squash",
        "a=north",
        "output=tiff",
        "dpr=10",
        "w=10&w=20",
        "blur=0",
        "fpx=0.5",
        "a=entropy&fpy=0.5",
        "a=focal&fpx=2",
    ] {
        let a = relay.get(&format!("/?url=h/a.jpg&{q}")).await;
        assert_eq!(a.status, 400, "{q}");
    }
}

#[tokio::test]
async fn output_auto_negotiates_with_accept_and_varies() {
    let origin = fixture_origin(vec![]).await;
    let relay = Relay::start(|_| {}).await;
    let target = format!(
        "/?url={}&w=50&output=auto",
        enc(&origin.url("/f/photo.jpg"))
    );
    for (accept, want) in [
        ("image/avif,image/webp,*/*", ImageFormat::Avif),
        ("image/webp,*/*", ImageFormat::Webp),
        ("*/*", ImageFormat::Jpeg),
    ] {
        let a = request(relay.addr, "GET", &target, &[("Accept", accept)]).await;
        assert_eq!(ImageFormat::sniff(&a.body), Some(want), "{accept}");
        assert_eq!(a.header("vary"), Some("Accept"));
    }
    let fixed = relay
        .get(&format!(
            "/?url={}&w=50&output=webp",
            enc(&origin.url("/f/photo.jpg"))
        ))
        .await;
    assert_eq!(fixed.header("vary"), None, "no Vary unless output=auto");
    let timing = fixed.header("server-timing").unwrap();
    for stage in ["fetch;dur=", "decode;dur=", "resize;dur=", "encode;dur="] {
        assert!(timing.contains(stage), "{timing}");
    }
}

#[tokio::test]
async fn nothing_to_change_serves_the_original_bytes() {
    let origin = fixture_origin(vec![]).await;
    let relay = Relay::start(|_| {}).await;
    // photo.jpg carries only JFIF: a box larger than the picture changes nothing.
    let a = relay
        .get(&format!(
            "/?url={}&w=2000",
            enc(&origin.url("/f/photo.jpg"))
        ))
        .await;
    assert_eq!(a.body, fixture("photo.jpg"));
    // orient6.jpg carries EXIF: it must be re-encoded even without a resize.
    let a = relay
        .get(&format!(
            "/?url={}&w=2000",
            enc(&origin.url("/f/orient6.jpg"))
        ))
        .await;
    assert_ne!(a.body, fixture("orient6.jpg"));
    assert_eq!(decoded_size(&a.body), (480, 300));
}

/// `target` signed with `key` as SPEC §2.3 says: `&s=` + the signature of everything before it.
fn signed(key: &Secret, target: &str) -> String {
    format!(
        "{target}&s={}",
        sign::signature(key.expose().as_bytes(), target.as_bytes())
    )
}

#[tokio::test]
async fn signatures_are_required_verified_and_rotated() {
    let origin = fixture_origin(vec![]).await;
    let old = Secret("an-old-key-that-is-32-bytes-long!!".into());
    let new = Secret("the-new-key-that-is-32-bytes-long!".into());
    let (o, n) = (old.clone(), new.clone());
    let relay = Relay::start(move |c| c.security.signing_keys = vec![n, o]).await;
    let target = format!("/?url={}&w=100", enc(&origin.url("/f/photo.jpg")));

    assert_eq!(relay.get(&target).await.status, 403, "unsigned");
    let a = relay.get(&signed(&new, &target)).await;
    assert_eq!(a.status, 200, "signed with the current key: {}", a.text());
    assert_eq!(
        relay.get(&signed(&old, &target)).await.status,
        200,
        "rotated-out key still verifies"
    );
    let tampered = signed(&new, &target).replace("w=100", "w=101");
    assert_eq!(relay.get(&tampered).await.status, 403);
    let s = sign::signature(new.expose().as_bytes(), target.as_bytes());
    let reordered = format!("/?w=100&url={}&s={s}", enc(&origin.url("/f/photo.jpg")));
    assert_eq!(
        relay.get(&reordered).await.status,
        403,
        "M is the target as sent"
    );
    let s_not_last = format!("{}&q=50", signed(&new, &target));
    assert_eq!(relay.get(&s_not_last).await.status, 400);
    let foreign = signed(&Secret("someone-elses-key-of-32-bytes!!!!".into()), &target);
    assert_eq!(relay.get(&foreign).await.status, 403);
}

#[tokio::test]
async fn default_must_pass_the_source_rules() {
    let origin = fixture_origin(vec![]).await;
    let relay =
        Relay::start(|c| c.security.allowed_hosts = vec!["127.0.0.1".parse().unwrap()]).await;
    let broken = enc(&origin.url("/f/missing.jpg"));
    let ok = relay
        .get(&format!(
            "/?url={broken}&w=10&default={}",
            enc(&origin.url("/f/photo.jpg"))
        ))
        .await;
    assert_eq!(
        (ok.status, ok.header("location").map(str::to_string)),
        (302, Some(origin.url("/f/photo.jpg")))
    );
    let evil = relay
        .get(&format!(
            "/?url={broken}&w=10&default={}",
            enc("https://evil.example/x.jpg")
        ))
        .await;
    assert_eq!(evil.status, 403);
}

#[tokio::test]
async fn overload_is_503_at_once_while_healthz_answers() {
    let photo = fixture("photo.jpg");
    let origin = Origin::start(move |_| {
        Reply::Delayed(
            Duration::from_millis(1500),
            Box::new(Reply::ok("image/jpeg", &photo)),
        )
    })
    .await;
    let relay = Arc::new(
        Relay::start(|c| {
            c.transform.queue = 1;
            c.transform.timeout = Dur(Duration::from_secs(30));
        })
        .await,
    );
    let target = |name: &str| format!("/?url={}&w=10", enc(&origin.url(name)));
    let (r, t) = (relay.clone(), target("/slow.jpg"));
    let first = tokio::spawn(async move { r.get(&t).await.status });
    while origin.seen().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Another image: the one queue slot is taken by the first fetch.
    let second = relay.get(&target("/other.jpg")).await;
    assert_eq!(second.status, 503);
    assert_eq!(second.header("retry-after"), Some("1"));
    assert_eq!(second.header("x-imgrelay-error"), Some("overloaded"));
    assert_eq!(relay.get("/healthz").await.status, 200);
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(origin.seen().len(), 1, "the refused request never fetched");
}
