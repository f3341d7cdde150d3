//! Encoding: pixels → bytes of the output format, with no metadata of any kind. JPEG is
//! baseline with optimised Huffman tables (no trellis: it is slow); WebP through libwebp
//! (lossless at q=100); AVIF in `avif.rs`; PNG and GIF through `image`, PNG
//! with adaptive filters and fdeflate (`CompressionType::Fast`): on 512-pixel outputs it is
//! 30× faster than zlib level 6 for files about 6% larger.

use super::Pixels;
use crate::{error::Error, transform::Format};
use ::image::{
    codecs::{
        gif::{GifEncoder, Repeat},
        png::{CompressionType, FilterType, PngEncoder},
    },
    Delay, ExtendedColorType, Frame, ImageEncoder, RgbaImage,
};

fn failed(what: &'static str) -> impl Fn(&dyn std::fmt::Debug) -> Error {
    move |e| Error::Internal(format!("{what} encoder: {e:?}"))
}

/// Encodes one still image. `px` must already be flattened for JPEG. A size the format cannot
/// store is a 422 ([`Format::check_size`]), checked here as well as before decoding, so no
/// encoder ever sees a side it would truncate.
pub fn still(px: &Pixels, format: Format, quality: u8) -> Result<Vec<u8>, Error> {
    format.check_size(px.width, px.height)?;
    let mut out = Vec::new();
    match format {
        Format::Jpeg => {
            let side =
                |v: u32| u16::try_from(v).map_err(|_| Error::OutputTooLarge(format.max_side().1));
            let (w, h) = (side(px.width)?, side(px.height)?);
            let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
            enc.set_optimized_huffman_tables(true);
            let color = if px.channels == 4 {
                jpeg_encoder::ColorType::Rgba
            } else {
                jpeg_encoder::ColorType::Rgb
            };
            enc.encode(&px.data, w, h, color)
                .map_err(|e| failed("jpeg")(&e))?;
        }
        Format::Png => {
            let color = if px.channels == 4 {
                ExtendedColorType::Rgba8
            } else {
                ExtendedColorType::Rgb8
            };
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                .write_image(&px.data, px.width, px.height, color)
                .map_err(|e| failed("png")(&e))?;
        }
        Format::Webp => {
            let enc = if px.channels == 4 {
                webp::Encoder::from_rgba(&px.data, px.width, px.height)
            } else {
                webp::Encoder::from_rgb(&px.data, px.width, px.height)
            };
            // `encode_simple` returns libwebp's refusal; the crate's `encode` would panic on it.
            // (For lossless, libwebp's quality is its effort: 75 is its default.)
            let lossless = quality >= 100;
            let q = if lossless { 75.0 } else { f32::from(quality) };
            let mem = enc
                .encode_simple(lossless, q)
                .map_err(|e| failed("webp")(&e))?;
            out.extend_from_slice(&mem);
        }
        Format::Avif => {
            let (w, h) = (px.width as usize, px.height as usize);
            out = super::avif::encode(&px.data, usize::from(px.channels), w, h, quality)
                .map_err(|e| failed("avif")(&e))?;
        }
        Format::Gif => return animation(&[(px.to_rgba(), 0)], Format::Gif, quality),
    }
    Ok(out)
}

/// A sink for animation frames: the RGBA pixels and the delay (ms) of each, in order.
pub type FrameSink<'a> = dyn FnMut(RgbaImage, u32) -> Result<(), Error> + 'a;

/// Encodes an animated GIF from the frames `produce` hands to its sink, one at a time, as they
/// come: only the output grows, so a long animation never sits in memory decoded.
pub fn gif_streamed(
    produce: impl FnOnce(&mut FrameSink<'_>) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut count = 0u32;
    {
        let mut enc = GifEncoder::new_with_speed(&mut out, 10);
        enc.set_repeat(Repeat::Infinite)
            .map_err(|e| failed("gif")(&e))?;
        let mut sink = |img: RgbaImage, delay: u32| {
            Format::Gif.check_size(img.width(), img.height())?;
            count += 1;
            let frame = Frame::from_parts(img, 0, 0, Delay::from_numer_denom_ms(delay, 1));
            enc.encode_frame(frame).map_err(|e| failed("gif")(&e))
        };
        produce(&mut sink)?;
    }
    if count == 0 {
        return Err(Error::Undecodable("the animation has no frames"));
    }
    Ok(out)
}

/// Encodes frames with their delays (ms) as an animated GIF or WebP.
pub fn animation(
    frames: &[(RgbaImage, u32)],
    format: Format,
    quality: u8,
) -> Result<Vec<u8>, Error> {
    let Some((first, _)) = frames.first() else {
        return Err(Error::Undecodable("the animation has no frames"));
    };
    let (w, h) = first.dimensions();
    format.check_size(w, h)?;
    match format {
        Format::Gif => gif_streamed(|sink| {
            for (img, delay) in frames {
                sink(img.clone(), *delay)?;
            }
            Ok(())
        }),
        Format::Webp => {
            let mut config = webp::WebPConfig::new().map_err(|e| failed("webp")(&e))?;
            config.quality = f32::from(quality.min(99));
            let raw: Vec<(&[u8], u32)> = frames
                .iter()
                .map(|(f, d)| (f.as_raw().as_slice(), *d))
                .collect();
            let mut body = super::webp_ffi::encode_animation(&raw, w, h, &config)
                .map_err(|e| failed("webp")(&e))?;
            // The container's alpha flag says whether any frame has transparency (browsers
            // read it before any frame); libwebp leaves it off when the frames it encoded for
            // the changes happen to be opaque.
            if frames.iter().any(|(f, _)| f.pixels().any(|p| p[3] < 255)) {
                set_webp_alpha_flag(&mut body);
            }
            Ok(body)
        }
        other => still(
            &Pixels::from_dynamic(::image::DynamicImage::ImageRgba8(first.clone())),
            other,
            quality,
        ),
    }
}

/// Sets the alpha flag of a WebP's `VP8X` header (the first chunk of an extended file).
fn set_webp_alpha_flag(webp: &mut [u8]) {
    if webp.get(12..16) == Some(b"VP8X") {
        if let Some(flags) = webp.get_mut(20) {
            *flags |= 0x10;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_libwebp_refuses_is_an_error_not_a_panic() {
        // WebP sides stop at 16383 pixels.
        let px = Pixels::from_dynamic(::image::DynamicImage::new_rgb8(16384, 1));
        for q in [80, 100] {
            assert!(matches!(
                still(&px, Format::Webp, q),
                Err(Error::OutputTooLarge(_))
            ));
        }
        let ok = Pixels::from_dynamic(::image::DynamicImage::new_rgb8(16383, 1));
        assert!(still(&ok, Format::Webp, 80).is_ok());
    }

    #[test]
    fn jpeg_side_over_u16_is_refused_not_truncated() {
        // 1×65536 used to reach the encoder as 1×0 (65536 as u16).
        let tall = Pixels::from_dynamic(::image::DynamicImage::new_rgb8(1, 65536));
        let err = still(&tall, Format::Jpeg, 80).unwrap_err();
        assert!(matches!(err, Error::OutputTooLarge(_)), "{err:?}");
        assert_eq!(err.status().as_u16(), 422);
        let edge = Pixels::from_dynamic(::image::DynamicImage::new_rgb8(1, 65535));
        let body = still(&edge, Format::Jpeg, 80).unwrap();
        let img = ::image::load_from_memory(&body).unwrap();
        assert_eq!((img.width(), img.height()), (1, 65535));
    }
}
