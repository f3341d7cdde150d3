//! Decoding: bytes of a sniffed format → oriented sRGB pixels, with every limit checked from
//! the header (`header`) **before** a pixel buffer exists (a 35 KB PNG claiming 60000×60000 is
//! refused in microseconds). A still for a transform is decoded small where a codec can
//! (`shrink`); animated GIF/WebP are decoded frame by frame into a callback, so a long
//! animation never sits in memory whole. Colour is converted (`color`) as each decoder hands
//! its samples over, before anything resamples them; `check` gives a file's verdict without
//! keeping pixels, for a transform that serves the source's own bytes.

use super::format::ImageFormat;
pub use super::header::probe;
use super::header::{check_pixels, image_format, undecodable};
pub use super::shrink::Decoded;
use super::shrink::{jpeg, jpeg_check};
use super::{avif_read, bmp, color, webp_read, Limits, Pixels};
use crate::{error::Error, transform::Transform};
use ::image::{codecs::gif::GifDecoder, AnimationDecoder, DynamicImage, ImageDecoder, ImageReader};
use std::io::Cursor;

/// Decodes a still image (the first frame of an animation), oriented and in sRGB.
pub fn still(bytes: &[u8], format: ImageFormat, limits: &Limits) -> Result<Pixels, Error> {
    decoded(bytes, format, limits, None).map(|d| d.px)
}

/// Decodes a still for `t`: a JPEG whose output needs fewer pixels than it has is decoded by
/// libjpeg-turbo (mozjpeg) with DCT scaling at the smallest M/8 that keeps about twice the
/// pixels the resampler needs (shrink-on-load), a WebP by libwebp scaled the same way;
/// everything else goes through the general decoders. Whatever the path, the pixels come out
/// in sRGB (`color`), before anything resamples them.
pub fn still_for(
    bytes: &[u8],
    format: ImageFormat,
    limits: &Limits,
    t: &Transform,
) -> Result<Decoded, Error> {
    decoded(bytes, format, limits, Some(t))
}

fn decoded(
    bytes: &[u8],
    format: ImageFormat,
    limits: &Limits,
    t: Option<&Transform>,
) -> Result<Decoded, Error> {
    let (mut px, icc) = match format {
        // Converted to sRGB inside (a JPEG's CMYK samples exist nowhere else).
        ImageFormat::Jpeg => return jpeg(bytes, limits, t),
        ImageFormat::Webp => return webp_read::still(bytes, limits, t),
        ImageFormat::Avif => avif_read::decode(bytes, limits)?,
        _ => general(bytes, format, limits)?,
    };
    if let Some(icc) = icc {
        color::to_srgb(&mut px, &icc);
    }
    let full = (px.width, px.height);
    Ok(Decoded { px, full })
}

/// The `image` crate's decoders (PNG, GIF, BMP, ICO): the pixels and their ICC profile. A BMP
/// goes through `bmp` first, for the variants the crate misreads.
fn general(
    bytes: &[u8],
    format: ImageFormat,
    limits: &Limits,
) -> Result<(Pixels, Option<Vec<u8>>), Error> {
    if format != ImageFormat::Bmp {
        return general_as_is(bytes, format, limits);
    }
    let bytes = bmp::readable(bytes)?;
    let (px, icc) = general_as_is(&bytes, format, limits)?;
    let px = match bmp::rle_coverage_probe(&bytes) {
        Some(probe) => match general_as_is(&probe, format, limits) {
            Ok((coverage, _)) => bmp::apply_coverage(px, &coverage),
            Err(_) => px,
        },
        None => px,
    };
    Ok((px, icc))
}

fn general_as_is(
    bytes: &[u8],
    format: ImageFormat,
    limits: &Limits,
) -> Result<(Pixels, Option<Vec<u8>>), Error> {
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

/// Whether the source decodes, with the verdict its decode for any transform would give (SPEC
/// §2.2, one file, one answer): for a transform that serves the source's own bytes. A JPEG is
/// read through every scan at 1/8 scale; other formats are decoded whole.
pub fn check(bytes: &[u8], format: ImageFormat, limits: &Limits) -> Result<(), Error> {
    match format {
        ImageFormat::Jpeg => jpeg_check(bytes, limits),
        _ => still(bytes, format, limits).map(drop),
    }
}

/// Whether the source holds more than one frame (GIF and WebP only). A GIF's frames are
/// composed on a canvas of its logical screen size, allocated with the first frame: the
/// decoder gets the limits so that a canvas past them is refused, not allocated.
pub fn is_animated(bytes: &[u8], format: ImageFormat, limits: &Limits) -> bool {
    match format {
        ImageFormat::Webp => webp_read::is_animated(bytes),
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
    type Frames<'a> = Box<dyn Iterator<Item = Result<(Pixels, u32), Error>> + 'a>;
    let (w, h, frames): (u32, u32, Frames<'_>) = match format {
        ImageFormat::Gif => {
            let d = GifDecoder::new(Cursor::new(bytes)).map_err(undecodable)?;
            let (w, h) = d.dimensions();
            check_pixels(w, h, limits)?;
            let frames = d.into_frames().map(|frame| {
                let frame = frame.map_err(undecodable)?;
                let (num, den) = frame.delay().numer_denom_ms();
                let delay = num.checked_div(den).unwrap_or(100);
                let px = Pixels::from_dynamic(DynamicImage::ImageRgba8(frame.into_buffer()));
                Ok((px, delay))
            });
            (w, h, Box::new(frames))
        }
        ImageFormat::Webp => {
            let frames = webp_read::frames(bytes, limits)?;
            (frames.width, frames.height, Box::new(frames))
        }
        _ => return Err(Error::Internal("frames() on a still format".into())),
    };
    let per_frame = u64::from(w) * u64::from(h);
    for (i, frame) in frames.enumerate() {
        let n = i as u64 + 1;
        if n > u64::from(limits.max_frames) || n * per_frame > limits.max_animation_pixels {
            return Err(Error::TooManyFrames);
        }
        let (px, delay) = frame?;
        each(px, delay)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::header::{header_dimensions, jpeg_is_complete};
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
    fn a_webp_with_exif_orientation_is_planned_on_its_oriented_size() {
        let bytes = crate::image::fixture("orient6.webp");
        let t = Transform {
            w: Some(60),
            ..Transform::default()
        };
        let d = still_for(&bytes, ImageFormat::Webp, &Limits::default(), &t).unwrap();
        assert_eq!(d.full, (480, 300), "EXIF orientation 6 applied");
        assert!(
            d.px.width < 480 && d.px.width >= 120,
            "shrunk on load: {}",
            d.px.width
        );
        let aspect = f64::from(d.px.width) / f64::from(d.px.height);
        assert!(
            (aspect - 1.6).abs() < 0.05,
            "oriented like the source: {aspect}"
        );
    }

    #[test]
    fn shrink_on_load_decodes_small_and_plans_against_the_full_size() {
        let bytes = crate::image::fixture("photo.jpg");
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
        let file = crate::image::fixture("fuzz/libjpeg-fatal-error.jpg");
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
