//! What `output=json` answers about a source (SPEC §2.2): its format, its size as displayed
//! (after EXIF orientation or `irot`/`imir`), its frames, whether any pixel is transparent, its
//! byte length, its dominant colour and, for an opaque picture, a placeholder: a tiny blurred
//! copy as a `data:` URI a page can paint while the image loads. Pure and synchronous like the
//! rest of `image`: the
//! first frame is decoded (small where the codec can shrink on load) so that a file that does
//! not decode is a 422 here as on every other transform path; frames are counted from the
//! container's blocks, not decoded.

use super::{decode, footprint, format::ImageFormat, Limits, Pixels};
use crate::{error::Error, transform::Transform};
use base64::Engine;
use serde::Serialize;

/// The edge the still is decoded at, at least, where a codec can decode small (JPEG, WebP):
/// enough pixels for a dominant colour, a fraction of the work of a full decode.
pub const SAMPLE_EDGE: u32 = 64;

/// The metadata of one source, as `output=json` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Info {
    /// `jpeg`, `png`, `gif`, `webp`, `avif`, `bmp` or `ico`.
    pub format: &'static str,
    /// As displayed: after EXIF orientation (`irot`/`imir` for AVIF).
    pub width: u32,
    pub height: u32,
    /// 1 for a still; the frames an animated GIF or WebP declares.
    pub frames: u64,
    /// Whether any pixel of the (first) frame is less than opaque.
    pub has_alpha: bool,
    /// The source's length in bytes.
    pub bytes: u64,
    /// `#rrggbb`: the colour most of the opaque picture is near (see [`dominant`]).
    pub dominant_color: String,
    /// A `data:image/webp;base64,…` URI of at most [`PLACEHOLDER_MAX`] bytes (see
    /// [`placeholder`]); absent when the picture has transparency, whose placeholder would
    /// show through it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
}

/// The transform the still is decoded for: a small box, so JPEG and WebP decode scaled.
pub fn sample_transform() -> Transform {
    Transform {
        w: Some(SAMPLE_EDGE),
        h: Some(SAMPLE_EDGE),
        ..Transform::default()
    }
}

/// Reads `bytes` (of the sniffed `format`) within `limits`.
pub fn read(bytes: &[u8], format: ImageFormat, limits: &Limits) -> Result<Info, Error> {
    let d = decode::still_for(bytes, format, limits, &sample_transform())?;
    let (width, height) = d.full;
    let frames = footprint::frame_count(bytes, format).unwrap_or(1).max(1);
    let has_alpha = has_transparency(&d.px);
    Ok(Info {
        format: name(format),
        width,
        height,
        frames,
        has_alpha,
        bytes: bytes.len() as u64,
        dominant_color: hex(dominant(&d.px)),
        placeholder: if has_alpha {
            None
        } else {
            placeholder(&d.px, PLACEHOLDER_MAX)
        },
    })
}

fn name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
        ImageFormat::Gif => "gif",
        ImageFormat::Webp => "webp",
        ImageFormat::Avif => "avif",
        ImageFormat::Bmp => "bmp",
        ImageFormat::Ico => "ico",
    }
}

fn has_transparency(px: &Pixels) -> bool {
    px.channels == 4 && px.data.chunks_exact(4).any(|p| p[3] < 255)
}

/// The dominant colour: pixels (at most about 4096 of them, evenly strided) are put in buckets
/// of 4 bits a channel; the fullest bucket's mean is the answer. A mean of all pixels would be
/// a colour the picture may not hold (a red and blue flag averages to purple); the fullest
/// bucket is what most of the picture looks like. Pixels under half opacity are not counted;
/// a picture with none left is white.
pub fn dominant(px: &Pixels) -> [u8; 3] {
    let ch = usize::from(px.channels);
    let count = px.data.len() / ch.max(1);
    let step = (count / 4096).max(1);
    let mut buckets = vec![(0u32, [0u64; 3]); 4096];
    for p in px.data.chunks_exact(ch).step_by(step) {
        if ch == 4 && p[3] < 128 {
            continue;
        }
        let i = usize::from(p[0] >> 4) << 8 | usize::from(p[1] >> 4) << 4 | usize::from(p[2] >> 4);
        let b = &mut buckets[i];
        b.0 += 1;
        for (sum, &v) in b.1.iter_mut().zip(p) {
            *sum += u64::from(v);
        }
    }
    // The first fullest bucket, so equal counts always give the same colour.
    let best = buckets
        .iter()
        .fold(None::<&(u32, [u64; 3])>, |best, b| match best {
            Some(x) if x.0 >= b.0 => Some(x),
            _ => Some(b),
        });
    match best {
        Some(&(n, sum)) if n > 0 => sum.map(|s| (s / u64::from(n)) as u8),
        _ => [255, 255, 255],
    }
}

/// The longest side of a placeholder, in pixels: a page stretches it over the image's box,
/// where the browser's smooth upscaling and the blur below leave colour and layout, no detail.
pub const PLACEHOLDER_EDGE: u32 = 16;

/// The blur (Gaussian sigma, in placeholder pixels) taken off before encoding: it hides the
/// blocks a 16-pixel picture shows when stretched, and leaves the encoder less to store.
const PLACEHOLDER_BLUR: f32 = 1.0;

/// The quality the placeholder is encoded at (lossy WebP): what is left after the blur is a
/// few gradients, which low quality keeps.
const PLACEHOLDER_QUALITY: f32 = 40.0;

/// The longest `data:` URI a placeholder may be; a picture whose placeholder would be longer
/// (noise that survives the blur) has none, so a page's markup stays small.
pub const PLACEHOLDER_MAX: usize = 400;

/// A tiny blurred copy of `px` (opaque) as a `data:image/webp;base64,…` URI of at most `max`
/// bytes, or `None` when it would be longer. Lossy WebP: its frame header is 30 bytes where a
/// PNG's chunks take 57 and a JPEG's tables hundreds, and every browser that lazy-loads
/// images decodes it.
pub fn placeholder(px: &Pixels, max: usize) -> Option<String> {
    let small = px
        .clone()
        .into_dynamic()
        .thumbnail(PLACEHOLDER_EDGE, PLACEHOLDER_EDGE)
        .fast_blur(PLACEHOLDER_BLUR)
        .into_rgb8();
    let (w, h) = small.dimensions();
    let webp = webp::Encoder::from_rgb(small.as_raw(), w, h)
        .encode_simple(false, PLACEHOLDER_QUALITY)
        .ok()?;
    let uri = format!(
        "data:image/webp;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&*webp)
    );
    (uri.len() <= max).then_some(uri)
}

/// `#rrggbb`.
pub fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, rgba: [u8; 4], channels: u8) -> Pixels {
        let px = &rgba[..usize::from(channels)];
        Pixels {
            width: w,
            height: h,
            channels,
            data: px.repeat((w * h) as usize),
        }
    }

    #[test]
    fn the_dominant_colour_is_the_fullest_bucket_not_the_mean() {
        // Three quarters red, one quarter blue: red, not a purple the picture never shows.
        let mut px = solid(100, 100, [200, 10, 10, 255], 3);
        for p in px.data.chunks_exact_mut(3).take(2500) {
            p.copy_from_slice(&[10, 10, 200]);
        }
        assert_eq!(hex(dominant(&px)), "#c80a0a");
    }

    #[test]
    fn transparent_pixels_do_not_count_and_a_clear_picture_is_white() {
        let mut px = solid(10, 10, [0, 0, 0, 0], 4);
        assert_eq!(dominant(&px), [255, 255, 255]);
        assert!(has_transparency(&px));
        px.data[..4].copy_from_slice(&[0, 128, 0, 255]);
        assert_eq!(dominant(&px), [0, 128, 0]);
        assert!(!has_transparency(&solid(4, 4, [1, 2, 3, 255], 4)));
    }

    #[test]
    fn info_reads_the_oriented_size_and_frames_of_fixtures() {
        let limits = Limits::default();
        let jpeg = crate::image::fixture("orient6.jpg");
        let i = read(&jpeg, ImageFormat::Jpeg, &limits).unwrap();
        // EXIF orientation 6 turns the stored picture a quarter: its sides swap.
        let (w, h) = decode::probe(&jpeg, ImageFormat::Jpeg).unwrap();
        assert_eq!((i.format, i.width, i.height), ("jpeg", h, w));
        assert_eq!((i.frames, i.has_alpha), (1, false));
        assert_eq!(i.bytes, jpeg.len() as u64);
        let gif = crate::image::fixture("anim.gif");
        let i = read(&gif, ImageFormat::Gif, &limits).unwrap();
        assert!(i.frames > 1, "{i:?}");
    }

    #[test]
    fn a_placeholder_longer_than_its_bound_is_left_out() {
        let d = decode::still_for(
            &crate::image::fixture("photo.jpg"),
            ImageFormat::Jpeg,
            &Limits::default(),
            &sample_transform(),
        )
        .unwrap();
        let uri = placeholder(&d.px, PLACEHOLDER_MAX).unwrap();
        assert!(uri.starts_with("data:image/webp;base64,"), "{uri}");
        // At its own length it fits; one byte less, and there is none.
        assert_eq!(placeholder(&d.px, uri.len()), Some(uri.clone()));
        assert_eq!(placeholder(&d.px, uri.len() - 1), None);
    }

    #[test]
    fn a_placeholder_is_made_for_pictures_one_pixel_wide_or_high() {
        for (w, h) in [(1, 1), (1, 300), (300, 1)] {
            let uri = placeholder(&solid(w, h, [10, 200, 30, 255], 3), PLACEHOLDER_MAX);
            assert!(uri.is_some(), "{w}x{h}");
        }
    }
}
