//! What `output=json` answers about a source (SPEC §2.2): its format, its size as displayed
//! (after EXIF orientation or `irot`/`imir`), its frames, whether any pixel is transparent, its
//! byte length and its dominant colour. Pure and synchronous like the rest of `image`: the
//! first frame is decoded (small where the codec can shrink on load) so that a file that does
//! not decode is a 422 here as on every other transform path; frames are counted from the
//! container's blocks, not decoded.

use super::{decode, footprint, format::ImageFormat, Limits, Pixels};
use crate::{error::Error, transform::Transform};
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
    Ok(Info {
        format: name(format),
        width,
        height,
        frames,
        has_alpha: has_transparency(&d.px),
        bytes: bytes.len() as u64,
        dominant_color: hex(dominant(&d.px)),
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
}
