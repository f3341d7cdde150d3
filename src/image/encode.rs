//! Encoding: pixels → bytes of the output format, with no metadata of any kind. JPEG is
//! baseline with optimised Huffman tables (no trellis: it is slow); WebP through libwebp
//! (lossless at q=100); AVIF through rav1e at a fast speed; PNG and GIF through `image`, PNG
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

/// rav1e's speed (1–10) for AVIF. Measured on the harness's JPEG→AVIF scenario (22 photos to
/// 512 px, one thread each): speed 8 did 5.2 req/s, 9 did 9.1, 10 did 14.0, at 8.9, 9.6 and
/// 11.3 KB for 38.5, 38.1 and 37.8 dB; 9 keeps most of 8's efficiency at 1.75× its speed.
const AVIF_SPEED: u8 = 9;

/// The ravif quality for the API's `q`. ravif's scale spends fewer bits than libaom/sharp's
/// at equal numbers (q60: 8.9 KB at 38.5 dB against sharp's 13.3 KB at 41.0 dB), so `q` is
/// shifted up to give files of the size other image servers give for the same `q`.
fn avif_quality(q: u8) -> f32 {
    (f32::from(q) + 12.0).clamp(1.0, 100.0)
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
            let mem = if quality >= 100 {
                enc.encode_lossless()
            } else {
                enc.encode(f32::from(quality))
            };
            out.extend_from_slice(&mem);
        }
        Format::Avif => {
            use rgb::FromSlice;
            let enc = ravif::Encoder::new()
                .with_quality(avif_quality(quality))
                .with_speed(AVIF_SPEED)
                .with_num_threads(Some(1));
            let (w, h) = (px.width as usize, px.height as usize);
            let encoded = if px.channels == 4 {
                enc.encode_rgba(ravif::Img::new(px.data.as_rgba(), w, h))
            } else {
                enc.encode_rgb(ravif::Img::new(px.data.as_rgb(), w, h))
            }
            .map_err(|e| failed("avif")(&e))?;
            out = encoded.avif_file;
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
    fn avif_quality_is_shifted_and_stays_in_ravifs_range() {
        assert_eq!(avif_quality(60), 72.0);
        assert_eq!(avif_quality(1), 13.0);
        assert_eq!(avif_quality(95), 100.0, "ravif panics above 100");
        assert_eq!(avif_quality(100), 100.0);
    }
}
