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

/// Encodes one still image. `px` must already be flattened for JPEG.
pub fn still(px: &Pixels, format: Format, quality: u8) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    match format {
        Format::Jpeg => {
            let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
            enc.set_optimized_huffman_tables(true);
            let color = if px.channels == 4 {
                jpeg_encoder::ColorType::Rgba
            } else {
                jpeg_encoder::ColorType::Rgb
            };
            enc.encode(&px.data, px.width as u16, px.height as u16, color)
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
    match format {
        Format::Gif => {
            let mut out = Vec::new();
            {
                let mut enc = GifEncoder::new_with_speed(&mut out, 10);
                enc.set_repeat(Repeat::Infinite)
                    .map_err(|e| failed("gif")(&e))?;
                for (img, delay) in frames {
                    let frame =
                        Frame::from_parts(img.clone(), 0, 0, Delay::from_numer_denom_ms(*delay, 1));
                    enc.encode_frame(frame).map_err(|e| failed("gif")(&e))?;
                }
            }
            Ok(out)
        }
        Format::Webp => {
            let mut config = webp::WebPConfig::new().map_err(|e| failed("webp")(&e))?;
            config.quality = f32::from(quality.min(99));
            let mut enc = webp::AnimEncoder::new(w, h, &config);
            enc.set_loop_count(0);
            let mut t = 0i32;
            for (img, delay) in frames {
                enc.add_frame(webp::AnimFrame::from_rgba(img.as_raw(), w, h, t));
                t = t.saturating_add(*delay as i32);
            }
            let mem = enc.try_encode().map_err(|e| failed("webp")(&e))?;
            Ok(mem.to_vec())
        }
        other => still(
            &Pixels::from_dynamic(::image::DynamicImage::ImageRgba8(first.clone())),
            other,
            quality,
        ),
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
                Err(Error::Internal(_))
            ));
        }
        let ok = Pixels::from_dynamic(::image::DynamicImage::new_rgb8(16383, 1));
        assert!(still(&ok, Format::Webp, 80).is_ok());
    }
}
