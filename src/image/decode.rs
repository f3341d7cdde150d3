//! Decoding: bytes of a sniffed format → oriented sRGB pixels, with every limit checked from
//! the header **before** a pixel buffer exists (a 35 KB PNG claiming 60000×60000 is refused in
//! microseconds). Animated GIF/WebP are decoded frame by frame into a callback, so a long
//! animation never sits in memory whole.

use super::format::ImageFormat;
use super::{color, geometry, jpeg_scans, webp_ffi, Limits, Pixels};
use crate::{error::Error, transform::Transform};
use ::image::{
    codecs::{gif::GifDecoder, webp::WebPDecoder},
    metadata::Orientation,
    AnimationDecoder, DynamicImage, ImageDecoder, ImageReader,
};
use std::io::Cursor;

/// A decoder's refusal, its message kept for the log.
fn undecodable(e: impl std::fmt::Display) -> Error {
    Error::Decode {
        detail: e.to_string(),
    }
}

fn image_format(f: ImageFormat) -> Result<::image::ImageFormat, Error> {
    Ok(match f {
        ImageFormat::Jpeg => ::image::ImageFormat::Jpeg,
        ImageFormat::Png => ::image::ImageFormat::Png,
        ImageFormat::Gif => ::image::ImageFormat::Gif,
        ImageFormat::Webp => ::image::ImageFormat::WebP,
        ImageFormat::Bmp => ::image::ImageFormat::Bmp,
        ImageFormat::Ico => ::image::ImageFormat::Ico,
        ImageFormat::Avif => {
            return Err(Error::Undecodable(
                "AVIF sources can be passed through but not transformed",
            ))
        }
    })
}

/// Width and height from the header alone: first our own reading of the fixed header fields
/// (so a bomb whose later chunks are garbage is still recognised as a bomb), then the decoder's.
pub fn probe(bytes: &[u8], format: ImageFormat) -> Result<(u32, u32), Error> {
    if let Some(size) = header_dimensions(bytes, format) {
        return Ok(size);
    }
    let reader = ImageReader::with_format(Cursor::new(bytes), image_format(format)?);
    reader.into_dimensions().map_err(undecodable)
}

/// The dimensions a file declares in its fixed header fields, without decoding anything.
fn header_dimensions(b: &[u8], format: ImageFormat) -> Option<(u32, u32)> {
    let be32 = |o: usize| Some(u32::from_be_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let le16 = |o: usize| {
        Some(u32::from(u16::from_le_bytes(
            b.get(o..o + 2)?.try_into().ok()?,
        )))
    };
    let le24 = |o: usize| {
        Some(u32::from_le_bytes([
            *b.get(o)?,
            *b.get(o + 1)?,
            *b.get(o + 2)?,
            0,
        ]))
    };
    match format {
        ImageFormat::Png if b.get(12..16) == Some(b"IHDR") => Some((be32(16)?, be32(20)?)),
        ImageFormat::Gif => Some((le16(6)?, le16(8)?)),
        ImageFormat::Bmp => {
            let w = i32::from_le_bytes(b.get(18..22)?.try_into().ok()?);
            let h = i32::from_le_bytes(b.get(22..26)?.try_into().ok()?);
            Some((w.unsigned_abs(), h.unsigned_abs()))
        }
        ImageFormat::Webp => match b.get(12..16)? {
            b"VP8X" => Some((le24(24)? + 1, le24(27)? + 1)),
            b"VP8 " => Some((le16(26)? & 0x3FFF, le16(28)? & 0x3FFF)),
            b"VP8L" => {
                let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
                Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
            }
            _ => None,
        },
        ImageFormat::Jpeg => {
            // Walk the marker segments to the first start-of-frame.
            let mut i = 2;
            while i + 9 < b.len() && b[i] == 0xFF {
                let m = b[i + 1];
                let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
                if matches!(m, 0xC0..=0xCF) && !matches!(m, 0xC4 | 0xC8 | 0xCC) {
                    let h = u32::from(u16::from_be_bytes([b[i + 5], b[i + 6]]));
                    let w = u32::from(u16::from_be_bytes([b[i + 7], b[i + 8]]));
                    return Some((w, h));
                }
                i += 2 + len;
            }
            None
        }
        _ => None,
    }
}

fn check_pixels(w: u32, h: u32, limits: &Limits) -> Result<(), Error> {
    if u64::from(w) * u64::from(h) > limits.max_source_pixels || w == 0 || h == 0 {
        return Err(Error::TooManyPixels);
    }
    Ok(())
}

/// A JPEG cut short still decodes with libjpeg-style decoders (grey bottom, a warning). The
/// main image's end-of-image marker must follow its last start-of-scan: inside entropy-coded
/// data `FF` is always stuffed, so `FF D9` there is a real marker.
fn jpeg_is_complete(b: &[u8]) -> bool {
    let last = |m: u8| b.windows(2).rposition(|w| w[0] == 0xFF && w[1] == m);
    matches!((last(0xDA), last(0xD9)), (Some(sos), Some(eoi)) if eoi > sos)
}

/// Decodes a still image (the first frame of an animation), oriented and in sRGB.
pub fn still(bytes: &[u8], format: ImageFormat, limits: &Limits) -> Result<Pixels, Error> {
    let (mut px, icc) = still_unconverted(bytes, format, limits)?;
    if let Some(icc) = icc {
        color::to_srgb(&mut px, &icc);
    }
    Ok(px)
}

/// [`still`] without the colour conversion: the pixels and their ICC profile, if any.
fn still_unconverted(
    bytes: &[u8],
    format: ImageFormat,
    limits: &Limits,
) -> Result<(Pixels, Option<Vec<u8>>), Error> {
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(Error::Undecodable("the image is truncated"));
    }
    let (w, h) = probe(bytes, format)?;
    check_pixels(w, h, limits)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format(format)?);
    reader.limits(limits.decoder_limits());
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    let (w, h) = decoder.dimensions();
    check_pixels(w, h, limits)?;
    let orientation = decoder.orientation().ok();
    let icc = decoder.icc_profile().ok().flatten();
    let mut img = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok((Pixels::from_dynamic(img), icc))
}

/// A still decoded for a transform: the pixels (possibly scaled down already), the full-size
/// (oriented) dimensions of the source, against which the geometry is planned, and the ICC
/// profile the pixels are still in. The caller converts to sRGB after resampling, where it
/// touches up to a hundred times fewer pixels (`color::to_srgb`).
#[derive(Debug)]
pub struct Decoded {
    pub px: Pixels,
    pub full: (u32, u32),
    pub icc: Option<Vec<u8>>,
}

/// Decodes a still for `t`: a JPEG whose output needs fewer pixels than it has is decoded by
/// libjpeg-turbo (mozjpeg) with DCT scaling at the smallest M/8 that keeps about twice the
/// pixels the resampler needs (shrink-on-load), a WebP by libwebp scaled the same way;
/// everything else goes through the general decoders.
pub fn still_for(
    bytes: &[u8],
    format: ImageFormat,
    limits: &Limits,
    t: &Transform,
) -> Result<Decoded, Error> {
    let scaled = match format {
        ImageFormat::Jpeg => libjpeg(|| jpeg_scaled(bytes, limits, t))?,
        ImageFormat::Webp => webp_scaled(bytes, limits, t)?,
        _ => None,
    };
    if let Some(decoded) = scaled {
        return Ok(decoded);
    }
    let (px, icc) = still_unconverted(bytes, format, limits)?;
    let full = (px.width, px.height);
    Ok(Decoded { px, full, icc })
}

/// Runs `f`, which calls into libjpeg through `mozjpeg`. libjpeg's error handler cannot
/// return, so `mozjpeg` reports corrupt data by unwinding with the message as payload; that
/// is a decode error like any other decoder's. Any other panic goes on unwinding.
fn libjpeg<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(
        |payload| match payload.downcast::<String>() {
            Ok(message) if message.starts_with("libjpeg") => Err(undecodable(message)),
            Ok(other) => std::panic::resume_unwind(other),
            Err(other) => std::panic::resume_unwind(other),
        },
    )
}

fn jpeg_scaled(bytes: &[u8], limits: &Limits, t: &Transform) -> Result<Option<Decoded>, Error> {
    use mozjpeg::{ColorSpace, Marker};
    if !jpeg_is_complete(bytes) {
        return Err(Error::Undecodable("the image is truncated"));
    }
    let (w, h) = probe(bytes, ImageFormat::Jpeg)?;
    check_pixels(w, h, limits)?;
    let d = mozjpeg::Decompress::with_markers(&[Marker::APP(1), Marker::APP(2)])
        .from_mem(bytes)
        .map_err(undecodable)?;
    // The frame libjpeg will decode: the header walk of `probe` stops at bytes libjpeg skips
    // between markers, and may have found another start-of-frame than libjpeg's.
    let (w, h) = (d.width() as u32, d.height() as u32);
    check_pixels(w, h, limits)?;
    let gray = match d.color_space() {
        ColorSpace::JCS_GRAYSCALE => true,
        ColorSpace::JCS_YCbCr | ColorSpace::JCS_RGB => false,
        _ => return Ok(None), // CMYK/YCCK: the general decoder handles their colour
    };
    let mut exif = None;
    let mut icc_parts = Vec::new();
    for m in d.markers() {
        match m.marker {
            Marker::APP(1) if exif.is_none() => {
                exif = m.data.strip_prefix(b"Exif\0\0").map(<[u8]>::to_vec)
            }
            Marker::APP(2) => {
                if let Some(part) = m.data.strip_prefix(b"ICC_PROFILE\0") {
                    let body = part.get(2..).unwrap_or_default().to_vec();
                    icc_parts.push((part.first().copied().unwrap_or(0), body));
                }
            }
            _ => {}
        }
    }
    let orientation = exif
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let swapped = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let full = if swapped { (h, w) } else { (w, h) };
    // Source pixels the resampler reads, times two for quality, in the file's own orientation.
    let (nw, nh) = needed_pixels(full, t, limits.max_output_px);
    let (nw, nh) = if swapped { (nh, nw) } else { (nw, nh) };
    let fits = |m: u64, margin: u64| {
        (u64::from(w) * m).div_ceil(8) * margin >= nw
            && (u64::from(h) * m).div_ceil(8) * margin >= nh
    };
    // A progressive file whose 1/8 scale still covers the output pixel for pixel is decoded
    // there from its DC scans alone (`jpeg_scans`): its AC refinement scans are most of its
    // decoding time, and the 8×8 block means the 1×1 IDCT gives are a fair box filter.
    if fits(1, 2) {
        if let Some(dc_only) = jpeg_scans::dc_only_at_eighth(bytes) {
            let d = mozjpeg::Decompress::new_mem(&dc_only).map_err(undecodable)?;
            return jpeg_decode_at(d, 1, gray, orientation, full, icc_parts);
        }
    }
    // Otherwise the smallest scale M/8 that keeps those pixels, among those libjpeg-turbo has
    // SIMD inverse DCTs for (1/8, 1/4, 1/2): its 3/8, 5/8… are plain C and slower than 4/8.
    let Some(m) = [1u8, 2, 4].into_iter().find(|&m| fits(u64::from(m), 1)) else {
        return Ok(None);
    };
    jpeg_decode_at(d, m, gray, orientation, full, icc_parts)
}

/// Decodes the JPEG `d` has read the header of at scale `m`/8; the rest is what
/// [`jpeg_scaled`] learnt from that header.
fn jpeg_decode_at(
    mut d: mozjpeg::Decompress<&[u8]>,
    m: u8,
    gray: bool,
    orientation: Orientation,
    full: (u32, u32),
    mut icc_parts: Vec<(u8, Vec<u8>)>,
) -> Result<Option<Decoded>, Error> {
    d.scale(m);
    // At 1/8 the luma IDCT reads nothing but DC, which block smoothing never changes; with
    // the AC scans dropped, it would estimate coefficients nothing reads.
    d.do_block_smoothing(m != 1);
    // Scaled output goes on to be averaged down by the resampler: libjpeg-turbo's merged
    // upsampling (chroma upsampled and converted in one SIMD pass) is enough there.
    d.do_fancy_upsampling(false);
    let mut started = if gray { d.grayscale() } else { d.rgb() }.map_err(undecodable)?;
    let (sw, sh) = (started.width() as u32, started.height() as u32);
    let data: Vec<u8> = started.read_scanlines().map_err(undecodable)?;
    started.finish().map_err(undecodable)?;
    let img = if gray {
        ::image::GrayImage::from_raw(sw, sh, data).map(DynamicImage::ImageLuma8)
    } else {
        ::image::RgbImage::from_raw(sw, sh, data).map(DynamicImage::ImageRgb8)
    };
    let Some(mut img) = img else {
        return Err(Error::Undecodable(
            "the image data is corrupt or unsupported",
        ));
    };
    img.apply_orientation(orientation);
    let icc = (!icc_parts.is_empty()).then(|| {
        icc_parts.sort_by_key(|(seq, _)| *seq);
        icc_parts.into_iter().flat_map(|(_, p)| p).collect()
    });
    Ok(Some(Decoded {
        px: Pixels::from_dynamic(img),
        full,
        icc,
    }))
}

/// Source pixels (width, height) the resampler should get for `t` on a `full`-sized source:
/// twice what it reads per output pixel, for quality (what shrink-on-load must keep).
fn needed_pixels(full: (u32, u32), t: &Transform, max_side: u32) -> (u64, u64) {
    let plan = geometry::plan(full.0, full.1, t, max_side);
    let need = |out: u32, crop: f64, side: u32| {
        (f64::from(out) * 2.0 * f64::from(side) / crop.max(1.0)).ceil() as u64
    };
    (
        need(plan.resized.0, plan.crop.2, full.0),
        need(plan.resized.1, plan.crop.3, full.1),
    )
}

/// A still WebP through libwebp, scaled inside the decoder to what the resampler needs.
/// Animations, files with an EXIF or ICC chunk (libwebp applies neither orientation nor colour
/// profile; the general decoder does both) and data libwebp refuses fall back to the general
/// decoder.
fn webp_scaled(bytes: &[u8], limits: &Limits, t: &Transform) -> Result<Option<Decoded>, Error> {
    if webp_has_exif_or_icc(bytes) {
        return Ok(None);
    }
    let Some(f) = webp_ffi::features(bytes) else {
        return Ok(None);
    };
    if f.has_animation {
        return Ok(None);
    }
    let (w, h) = (f.width, f.height);
    check_pixels(w, h, limits)?;
    let (nw, nh) = needed_pixels((w, h), t, limits.max_output_px);
    let k = (nw as f64 / f64::from(w))
        .max(nh as f64 / f64::from(h))
        .min(1.0);
    let size = |side: u32| ((f64::from(side) * k).ceil() as u32).clamp(1, side);
    let (sw, sh) = (size(w), size(h));
    let data = webp_ffi::decode(bytes, &f, sw, sh).ok_or(Error::Undecodable(
        "the image data is corrupt or unsupported",
    ))?;
    let channels = if f.has_alpha { 4 } else { 3 };
    Ok(Some(Decoded {
        px: Pixels {
            width: sw,
            height: sh,
            channels,
            data,
        },
        full: (w, h),
        icc: None,
    }))
}

/// Whether an extended WebP (`VP8X` first chunk) declares an ICC profile (flag 0x20) or EXIF
/// (0x08) in its flags byte, the 21st of the file.
fn webp_has_exif_or_icc(b: &[u8]) -> bool {
    b.get(12..16) == Some(b"VP8X") && b.get(20).is_some_and(|flags| flags & 0x28 != 0)
}

/// Whether the source holds more than one frame (GIF and WebP only). A GIF's frames are
/// composed on a canvas of its logical screen size, allocated with the first frame: the
/// decoder gets the limits so that a canvas past them is refused, not allocated.
pub fn is_animated(bytes: &[u8], format: ImageFormat, limits: &Limits) -> bool {
    match format {
        ImageFormat::Webp => WebPDecoder::new(Cursor::new(bytes)).is_ok_and(|d| d.has_animation()),
        ImageFormat::Gif => {
            // Two image descriptors are enough to call it an animation.
            GifDecoder::new(Cursor::new(bytes))
                .and_then(|mut d| d.set_limits(limits.decoder_limits()).map(|()| d))
                .map(|d| d.into_frames().take(2).filter(Result::is_ok).count() > 1)
                .unwrap_or(false)
        }
        _ => false,
    }
}

/// Decodes every frame of an animated GIF/WebP into `each(frame, delay_ms)`, enforcing the frame
/// count and frames × pixels limits as it goes.
pub fn frames(
    bytes: &[u8],
    format: ImageFormat,
    limits: &Limits,
    mut each: impl FnMut(Pixels, u32) -> Result<(), Error>,
) -> Result<(), Error> {
    let (w, h, frames) = match format {
        ImageFormat::Gif => {
            let d = GifDecoder::new(Cursor::new(bytes)).map_err(undecodable)?;
            let (w, h) = d.dimensions();
            (w, h, d.into_frames())
        }
        ImageFormat::Webp => {
            let d = WebPDecoder::new(Cursor::new(bytes)).map_err(undecodable)?;
            let (w, h) = d.dimensions();
            (w, h, d.into_frames())
        }
        _ => return Err(Error::Internal("frames() on a still format".into())),
    };
    check_pixels(w, h, limits)?;
    let per_frame = u64::from(w) * u64::from(h);
    for (i, frame) in frames.enumerate() {
        let n = i as u64 + 1;
        if n > u64::from(limits.max_frames) || n * per_frame > limits.max_animation_pixels {
            return Err(Error::TooManyFrames);
        }
        let frame = frame.map_err(undecodable)?;
        let (num, den) = frame.delay().numer_denom_ms();
        let delay = num.checked_div(den).unwrap_or(100);
        each(
            Pixels::from_dynamic(DynamicImage::ImageRgba8(frame.into_buffer())),
            delay,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_jpeg_is_detected() {
        let mut out = Cursor::new(Vec::new());
        ::image::RgbImage::from_pixel(64, 64, ::image::Rgb([9, 99, 199]))
            .write_to(&mut out, ::image::ImageFormat::Jpeg)
            .unwrap();
        let full = out.into_inner();
        assert!(jpeg_is_complete(&full));
        assert!(!jpeg_is_complete(&full[..full.len() * 2 / 3]));
        let mut trailing = full.clone();
        trailing.extend_from_slice(&[0; 100]);
        assert!(jpeg_is_complete(&trailing), "bytes after EOI are harmless");
    }

    #[test]
    fn a_pixel_bomb_is_refused_from_its_header() {
        // A valid PNG header claiming 60000×60000, followed by nothing.
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&60000u32.to_be_bytes());
        png.extend_from_slice(&60000u32.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0]);
        png.extend_from_slice(&[0; 4]); // CRC: the header reader never gets that far
        assert_eq!(probe(&png, ImageFormat::Png).unwrap(), (60000, 60000));
        let err = still(&png, ImageFormat::Png, &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::TooManyPixels), "{err:?}");
    }

    #[test]
    fn webp_with_exif_or_icc_takes_the_general_decoder() {
        let fixture = |name: &str| {
            std::fs::read(format!(
                "{}/tests/fixtures/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        let mut header = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0".to_vec();
        for (flags, expected) in [(0x20, true), (0x08, true), (0x28, true), (0x10, false)] {
            header[20] = flags;
            assert_eq!(webp_has_exif_or_icc(&header), expected, "flags {flags:#x}");
        }
        assert!(!webp_has_exif_or_icc(&fixture("lossy.webp")));
        assert!(webp_has_exif_or_icc(&fixture("orient6.webp")));
        let t = Transform {
            w: Some(60),
            ..Transform::default()
        };
        let d = still_for(
            &fixture("orient6.webp"),
            ImageFormat::Webp,
            &Limits::default(),
            &t,
        )
        .unwrap();
        assert_eq!(d.full, (480, 300), "EXIF orientation 6 applied");
    }

    #[test]
    fn shrink_on_load_decodes_small_and_plans_against_the_full_size() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/photo.jpg"
        ))
        .unwrap();
        let small = Transform {
            w: Some(60),
            ..Transform::default()
        };
        let Decoded { px, full, .. } =
            still_for(&bytes, ImageFormat::Jpeg, &Limits::default(), &small).unwrap();
        assert_eq!(full, (480, 300));
        assert!(
            px.width >= 120 && px.height >= 76,
            "keeps twice the 60×38 target"
        );
        // 2/8 gives 120×75, one row short, so the next SIMD scale, 4/8: 240×150, not 8/8.
        assert_eq!(
            (px.width, px.height),
            (240, 150),
            "the smallest of 1/8, 1/4, 1/2 that keeps it"
        );
        let large = Transform {
            w: Some(300),
            ..Transform::default()
        };
        let px = still_for(&bytes, ImageFormat::Jpeg, &Limits::default(), &large)
            .unwrap()
            .px;
        assert_eq!(
            (px.width, px.height),
            (480, 300),
            "no scaling when the target is over half"
        );
    }

    /// A JPEG whose marker walk the header check and libjpeg read differently: fill bytes and a
    /// stuffed zero after SOI, which libjpeg skips, make our walk jump into a comment holding
    /// a 16×16 start-of-frame; libjpeg reads the real 64×48 one.
    fn jpeg_with_a_decoy_frame_header() -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        ::image::RgbImage::from_pixel(64, 48, ::image::Rgb([9, 99, 199]))
            .write_to(&mut out, ::image::ImageFormat::Jpeg)
            .unwrap();
        let real = out.into_inner();
        let decoy_sof = [0xFF, 0xC0, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0];
        let mut file = vec![0xFF, 0xD8, 0xFF, 0xFF, 0x00, 0x0A, 0xFF, 0xFE, 0, 19];
        file.extend_from_slice(b"fake");
        file.extend_from_slice(&decoy_sof);
        file.extend_from_slice(&real[2..]);
        file
    }

    #[test]
    fn jpeg_limits_hold_for_the_frame_libjpeg_decodes() {
        let file = jpeg_with_a_decoy_frame_header();
        assert_eq!(header_dimensions(&file, ImageFormat::Jpeg), Some((16, 16)));
        let limits = Limits {
            max_source_pixels: 1000,
            ..Limits::default()
        };
        // A small output takes the shrink-on-load path, which decodes at 1/8.
        let t = Transform {
            w: Some(1),
            ..Transform::default()
        };
        let err = still_for(&file, ImageFormat::Jpeg, &limits, &t).unwrap_err();
        assert!(matches!(err, Error::TooManyPixels), "{err:?}");
        let big_enough = Limits {
            max_source_pixels: 64 * 48,
            ..Limits::default()
        };
        let d = still_for(&file, ImageFormat::Jpeg, &big_enough, &t).unwrap();
        assert_eq!(
            d.full,
            (64, 48),
            "planned against the frame that is decoded"
        );
    }

    /// Found by the `decode` fuzz target: libjpeg's fatal errors unwind out of `mozjpeg`, and
    /// a corrupt JPEG on the shrink-on-load path was a panic instead of a decode error.
    #[test]
    fn libjpeg_fatal_errors_are_decode_errors() {
        let file = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/fuzz/libjpeg-fatal-error.jpg"
        ))
        .unwrap();
        let t = Transform {
            w: Some(1),
            ..Transform::default()
        };
        let err = still_for(&file, ImageFormat::Jpeg, &Limits::default(), &t).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    }

    /// Found by the `decode` fuzz target (a GIF claiming an 18000×18000 screen): counting
    /// frames allocated the canvas of the logical screen before any limit was checked.
    #[test]
    fn counting_gif_frames_respects_the_pixel_limit() {
        let mut gif = Vec::new();
        {
            let mut enc = ::image::codecs::gif::GifEncoder::new(&mut gif);
            for shade in [0u8, 200] {
                let px = ::image::RgbaImage::from_pixel(64, 64, ::image::Rgba([shade, 9, 9, 255]));
                enc.encode_frame(::image::Frame::new(px)).unwrap();
            }
        }
        assert!(is_animated(&gif, ImageFormat::Gif, &Limits::default()));
        let tight = Limits {
            max_source_pixels: 100,
            ..Limits::default()
        };
        assert!(!is_animated(&gif, ImageFormat::Gif, &tight));
    }

    #[test]
    fn header_dimensions_of_each_format() {
        for (format, fmt) in [
            (ImageFormat::Png, ::image::ImageFormat::Png),
            (ImageFormat::Jpeg, ::image::ImageFormat::Jpeg),
            (ImageFormat::Gif, ::image::ImageFormat::Gif),
            (ImageFormat::Bmp, ::image::ImageFormat::Bmp),
            (ImageFormat::Webp, ::image::ImageFormat::WebP),
        ] {
            let mut out = Cursor::new(Vec::new());
            ::image::RgbaImage::from_pixel(37, 23, ::image::Rgba([1, 2, 3, 255]))
                .write_to(&mut out, fmt)
                .or_else(|_| {
                    ::image::RgbImage::from_pixel(37, 23, ::image::Rgb([1, 2, 3]))
                        .write_to(&mut out, fmt)
                })
                .unwrap();
            let bytes = out.into_inner();
            assert_eq!(
                header_dimensions(&bytes, format),
                Some((37, 23)),
                "{format:?}"
            );
        }
    }
}
