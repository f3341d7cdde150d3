//! What a file's header says before any pixel exists: its dimensions (our own reading of the
//! fixed fields first, so a bomb with garbage after its header is still recognised), whether a
//! JPEG is complete, and the source pixel limit checked against them.

use super::format::ImageFormat;
use super::{avif_read, webp_ffi, Limits};
use crate::error::Error;
use ::image::ImageReader;
use std::io::Cursor;

/// A decoder's refusal, its message kept for the log.
pub(super) fn undecodable(e: impl std::fmt::Display) -> Error {
    Error::Decode {
        detail: e.to_string(),
    }
}

pub(super) fn image_format(f: ImageFormat) -> Result<::image::ImageFormat, Error> {
    Ok(match f {
        ImageFormat::Jpeg => ::image::ImageFormat::Jpeg,
        ImageFormat::Png => ::image::ImageFormat::Png,
        ImageFormat::Gif => ::image::ImageFormat::Gif,
        ImageFormat::Bmp => ::image::ImageFormat::Bmp,
        ImageFormat::Ico => ::image::ImageFormat::Ico,
        // Read by `avif_read` and `webp_read`, never by the general decoders (the image
        // crate's WebP decoder is only in the tests' build, where it checks our output).
        ImageFormat::Avif => return Err(Error::Undecodable("AVIF takes its own decoder")),
        ImageFormat::Webp => return Err(Error::Undecodable("WebP takes its own decoder")),
    })
}

/// Width and height from the header alone: first our own reading of the fixed header fields
/// (so a bomb whose later chunks are garbage is still recognised as a bomb), then the decoder's.
pub fn probe(bytes: &[u8], format: ImageFormat) -> Result<(u32, u32), Error> {
    if format == ImageFormat::Avif {
        return avif_read::probe(bytes);
    }
    if let Some(size) = header_dimensions(bytes, format) {
        return Ok(size);
    }
    if format == ImageFormat::Webp {
        return webp_ffi::features(bytes)
            .map(|f| (f.width, f.height))
            .ok_or(Error::Undecodable("the WebP header is unreadable"));
    }
    let reader = ImageReader::with_format(Cursor::new(bytes), image_format(format)?);
    reader.into_dimensions().map_err(undecodable)
}

/// The dimensions a file declares in its fixed header fields, without decoding anything.
pub(super) fn header_dimensions(b: &[u8], format: ImageFormat) -> Option<(u32, u32)> {
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
        // An OS/2 1.x core header (12 bytes) has 16-bit sides; every later header 32-bit ones.
        ImageFormat::Bmp if be32(14)? == 12u32.swap_bytes() => Some((le16(18)?, le16(20)?)),
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
            let sof = jpeg_frame(b)?;
            let h = u32::from(u16::from_be_bytes([sof[1], sof[2]]));
            let w = u32::from(u16::from_be_bytes([sof[3], sof[4]]));
            Some((w, h))
        }
        _ => None,
    }
}

/// The body of a JPEG's first start-of-frame segment, from its precision byte on (at least
/// the six bytes of precision, height, width and component count), by walking the marker
/// segments.
pub(super) fn jpeg_frame(b: &[u8]) -> Option<&[u8]> {
    let mut i = 2;
    while i + 9 < b.len() && b[i] == 0xFF {
        let m = b[i + 1];
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        if matches!(m, 0xC0..=0xCF) && !matches!(m, 0xC4 | 0xC8 | 0xCC) {
            return b.get(i + 4..i + 10);
        }
        i += 2 + len;
    }
    None
}

pub(super) fn check_pixels(w: u32, h: u32, limits: &Limits) -> Result<(), Error> {
    if u64::from(w) * u64::from(h) > limits.max_source_pixels || w == 0 || h == 0 {
        return Err(Error::TooManyPixels);
    }
    Ok(())
}

/// A JPEG cut short still decodes with libjpeg-style decoders (grey bottom, a warning). The
/// main image's end-of-image marker must follow its last start-of-scan: inside entropy-coded
/// data `FF` is always stuffed, so `FF D9` there is a real marker.
pub(super) fn jpeg_is_complete(b: &[u8]) -> bool {
    let last = |m: u8| b.windows(2).rposition(|w| w[0] == 0xFF && w[1] == m);
    matches!((last(0xDA), last(0xD9)), (Some(sos), Some(eoi)) if eoi > sos)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a WebP whose fixed header fields could not be read was probed by the image
    /// crate's WebP decoder, which only the tests' build has; the release build refused it
    /// another way. libwebp reads (or refuses) it in both.
    #[test]
    fn a_webp_is_probed_by_libwebp_when_its_fields_are_unreadable() {
        let file = super::super::fixture("lossy.webp");
        let size = header_dimensions(&file, ImageFormat::Webp).unwrap();
        // the first chunk renamed: our reading of the fields gives up, libwebp says why
        let mut renamed = file.clone();
        renamed[12..16].copy_from_slice(b"VP8?");
        assert_eq!(header_dimensions(&renamed, ImageFormat::Webp), None);
        assert!(matches!(
            probe(&renamed, ImageFormat::Webp),
            Err(Error::Undecodable("the WebP header is unreadable"))
        ));
        assert_eq!(probe(&file, ImageFormat::Webp).unwrap(), size);
        assert!(image_format(ImageFormat::Webp).is_err());
    }
}
