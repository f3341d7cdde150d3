//! WebP sources, read by libwebp (`webp_ffi`), the format's reference decoder: a still decoded
//! straight to the size a transform needs (shrink-on-load), the first frame or every frame of
//! an animation composited on its canvas, and the ICC profile and EXIF orientation taken from
//! the file's own chunks. Limits are checked on the size libwebp reads, before it allocates.

use super::header::check_pixels;
use super::shrink::{needed_pixels, swaps_sides, Decoded};
use super::webp_ffi::{self, Animation, Features};
use super::{color, Limits, Pixels};
use crate::{error::Error, transform::Transform};
use ::image::{metadata::Orientation, DynamicImage, RgbImage, RgbaImage};

const CORRUPT: Error = Error::Undecodable("the image data is corrupt or unsupported");

/// Decodes a still (the first frame of an animation), oriented and converted to sRGB from its
/// ICC profile. With `t`, a still is decoded at the smallest size that keeps
/// about twice the pixels the resampler needs for it; `full` is always the source's own size.
pub(super) fn still(
    bytes: &[u8],
    limits: &Limits,
    t: Option<&Transform>,
) -> Result<Decoded, Error> {
    let f = features(bytes, limits)?;
    let orientation = chunk(bytes, b"EXIF")
        .and_then(|exif| {
            Orientation::from_exif_chunk(exif.strip_prefix(b"Exif\0\0").unwrap_or(exif))
        })
        .unwrap_or(Orientation::NoTransforms);
    let swapped = swaps_sides(orientation);
    let full = if swapped {
        (f.height, f.width)
    } else {
        (f.width, f.height)
    };
    let mut img = if f.has_animation {
        let mut frames = Animation::new(bytes, &f).ok_or(CORRUPT)?;
        let (canvas, _) = frames.next_frame().ok().flatten().ok_or(CORRUPT)?;
        canvas_image(&f, canvas.to_vec())?
    } else {
        let (sw, sh) = match t {
            Some(t) => scaled_size(&f, full, swapped, t, limits),
            None => (f.width, f.height),
        };
        let data = webp_ffi::decode(bytes, &f, sw, sh).ok_or(CORRUPT)?;
        if f.has_alpha {
            RgbaImage::from_raw(sw, sh, data).map(DynamicImage::ImageRgba8)
        } else {
            RgbImage::from_raw(sw, sh, data).map(DynamicImage::ImageRgb8)
        }
        .ok_or(CORRUPT)?
    };
    img.apply_orientation(orientation);
    let mut px = Pixels::from_dynamic(img);
    if let Some(icc) = chunk(bytes, b"ICCP") {
        color::to_srgb(&mut px, icc);
    }
    Ok(Decoded { px, full })
}

/// Whether the file is an animation (its `VP8X` header says so).
pub(super) fn is_animated(bytes: &[u8]) -> bool {
    webp_ffi::features(bytes).is_some_and(|f| f.has_animation)
}

/// The frames of an animation, each the whole canvas in RGBA (converted to sRGB from the file's
/// ICC profile) with its delay in milliseconds.
#[derive(Debug)]
pub(super) struct Frames<'a> {
    pub(super) width: u32,
    pub(super) height: u32,
    animation: Animation<'a>,
    icc: Option<&'a [u8]>,
}

/// Opens an animation's frames after checking its canvas against the limits (the caller
/// counts the frames).
pub(super) fn frames<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Frames<'a>, Error> {
    let f = features(bytes, limits)?;
    let animation = Animation::new(bytes, &f).ok_or(CORRUPT)?;
    Ok(Frames {
        width: f.width,
        height: f.height,
        animation,
        icc: chunk(bytes, b"ICCP"),
    })
}

impl Iterator for Frames<'_> {
    type Item = Result<(Pixels, u32), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.animation.next_frame() {
            Ok(Some((canvas, delay))) => {
                let mut px = Pixels {
                    width: self.width,
                    height: self.height,
                    channels: 4,
                    data: canvas.to_vec(),
                };
                // Every frame in sRGB, as the still (the first frame) is.
                if let Some(icc) = self.icc {
                    color::to_srgb(&mut px, icc);
                }
                Some(Ok((px, delay)))
            }
            Ok(None) => None,
            Err(webp_ffi::Refused) => Some(Err(CORRUPT)),
        }
    }
}

/// The header as libwebp reads it, within the limits.
fn features(bytes: &[u8], limits: &Limits) -> Result<Features, Error> {
    let f = webp_ffi::features(bytes).ok_or(CORRUPT)?;
    check_pixels(f.width, f.height, limits)?;
    Ok(f)
}

/// An animation's first canvas as an image, without its alpha channel when the file has none.
fn canvas_image(f: &Features, rgba: Vec<u8>) -> Result<DynamicImage, Error> {
    let img = RgbaImage::from_raw(f.width, f.height, rgba).ok_or(CORRUPT)?;
    Ok(if f.has_alpha {
        DynamicImage::ImageRgba8(img)
    } else {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(img).to_rgb8())
    })
}

/// The size to decode a still at for `t`: the source scaled by one factor, no smaller than
/// the resampler needs on either side, in the file's own (unoriented) orientation.
fn scaled_size(
    f: &Features,
    full: (u32, u32),
    swapped: bool,
    t: &Transform,
    limits: &Limits,
) -> (u32, u32) {
    let (nw, nh) = needed_pixels(full, t, limits.max_output_px);
    let (nw, nh) = if swapped { (nh, nw) } else { (nw, nh) };
    let k = (nw as f64 / f64::from(f.width))
        .max(nh as f64 / f64::from(f.height))
        .min(1.0);
    let size = |side: u32| ((f64::from(side) * k).ceil() as u32).clamp(1, side);
    (size(f.width), size(f.height))
}

/// The payload of the first chunk `id` of a RIFF/WebP file, if any. Chunks follow the 12-byte
/// file header as a four-letter id, a little-endian length and the payload, padded to an even
/// length.
fn chunk<'a>(bytes: &'a [u8], id: &[u8; 4]) -> Option<&'a [u8]> {
    let mut rest = bytes.get(12..)?;
    while let (Some(head), Some(body)) = (rest.get(..8), rest.get(8..)) {
        let len = usize::try_from(u32::from_le_bytes(head[4..8].try_into().ok()?)).ok()?;
        let payload = body.get(..len)?;
        if &head[..4] == id {
            return Some(payload);
        }
        rest = body.get(len + (len & 1)..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_found_by_id_and_padding_is_skipped() {
        let mut file = b"RIFF\0\0\0\0WEBP".to_vec();
        file.extend_from_slice(b"VP8X\x03\0\0\0abc\0"); // odd length: one byte of padding
        file.extend_from_slice(b"ICCP\x02\0\0\0xy");
        assert_eq!(chunk(&file, b"VP8X"), Some(&b"abc"[..]));
        assert_eq!(chunk(&file, b"ICCP"), Some(&b"xy"[..]));
        assert_eq!(chunk(&file, b"EXIF"), None);
        file.extend_from_slice(b"EXIF\xff\xff\0\0short");
        assert_eq!(chunk(&file, b"EXIF"), None, "a chunk longer than the file");
        assert_eq!(chunk(b"RIFF", b"VP8X"), None);
    }

    #[test]
    fn exif_orientation_is_applied() {
        let d = still(
            &crate::image::fixture("orient6.webp"),
            &Limits::default(),
            None,
        )
        .unwrap();
        assert_eq!(d.full, (480, 300));
        assert_eq!((d.px.width, d.px.height), (480, 300));
    }

    #[test]
    fn an_animation_gives_its_first_frame_as_a_still() {
        let bytes = crate::image::fixture("anim.webp");
        let f = webp_ffi::features(&bytes).unwrap();
        let d = still(&bytes, &Limits::default(), None).unwrap();
        assert_eq!((d.px.width, d.px.height), (f.width, f.height));
        let first = frames(&bytes, &Limits::default())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .0;
        let first = canvas_image(&f, first.data).unwrap();
        assert_eq!(Pixels::from_dynamic(first).data, d.px.data);
    }

    /// Found by the `decode` fuzz target: an animation frame whose lossy data made the pure-Rust
    /// WebP decoder index out of bounds (a panic) now meets libwebp, which reads or refuses it.
    #[test]
    fn a_frame_that_panicked_the_rust_webp_decoder_is_read_or_refused() {
        let bytes = crate::image::fixture("fuzz/image-webp-yuv-panic.webp");
        let limits = Limits::default();
        if let Ok(d) = still(&bytes, &limits, None) {
            assert_eq!(
                d.px.data.len() as u64,
                u64::from(d.px.width) * u64::from(d.px.height) * u64::from(d.px.channels)
            );
        }
        if let Ok(frames) = frames(&bytes, &limits) {
            let (w, h) = (frames.width, frames.height);
            for frame in frames.take(16) {
                let Ok((px, _)) = frame else { break };
                assert_eq!(
                    (px.width, px.height, px.data.len() as u64),
                    (w, h, u64::from(w) * u64::from(h) * 4)
                );
            }
        };
    }
}
