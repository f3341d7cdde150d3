//! Image type from magic bytes. The upstream `Content-Type` is never trusted: HTML labelled
//! `image/png` is refused, a JPEG labelled `application/octet-stream` is served as a JPEG.
//! SVG is deliberately not an image here (it is a document that can carry script).

/// The raster formats imgrelay accepts as sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    Avif,
    Bmp,
    Ico,
}

impl ImageFormat {
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Avif => "image/avif",
            ImageFormat::Bmp => "image/bmp",
            ImageFormat::Ico => "image/x-icon",
        }
    }

    /// Recognises a format from the first bytes of a file, or `None`.
    pub fn sniff(b: &[u8]) -> Option<ImageFormat> {
        let at = |i: usize, magic: &[u8]| b.get(i..i + magic.len()) == Some(magic);
        if at(0, b"\xFF\xD8\xFF") {
            Some(ImageFormat::Jpeg)
        } else if at(0, b"\x89PNG\r\n\x1a\n") {
            Some(ImageFormat::Png)
        } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
            Some(ImageFormat::Gif)
        } else if at(0, b"RIFF") && at(8, b"WEBPVP8") {
            Some(ImageFormat::Webp)
        } else if is_avif(b) {
            Some(ImageFormat::Avif)
        } else if at(0, b"BM")
            && b.get(14)
                .is_some_and(|&n| matches!(n, 12 | 40 | 52 | 56 | 64 | 108 | 124))
        {
            Some(ImageFormat::Bmp)
        } else if at(0, b"\0\0\x01\0") && b.get(4).is_some_and(|&n| n > 0) && b.get(9) == Some(&0) {
            Some(ImageFormat::Ico)
        } else {
            None
        }
    }
}

/// An ISO-BMFF `ftyp` box whose major or compatible brands include `avif` or `avis`.
fn is_avif(b: &[u8]) -> bool {
    if b.get(4..8) != Some(b"ftyp") {
        return false;
    }
    let size = b
        .get(0..4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize);
    let end = size.clamp(16, 256).min(b.len());
    let brand = |c: &[u8]| c == b"avif" || c == b"avis";
    b.get(8..12).is_some_and(brand)
        || b.get(16..end)
            .is_some_and(|rest| rest.chunks_exact(4).any(brand))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_format_by_its_magic() {
        let cases: &[(&[u8], ImageFormat)] = &[
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF", ImageFormat::Jpeg),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", ImageFormat::Png),
            (b"GIF89a\x01\0\x01\0", ImageFormat::Gif),
            (b"GIF87a\x01\0\x01\0", ImageFormat::Gif),
            (b"RIFF\x24\0\0\0WEBPVP8 ", ImageFormat::Webp),
            (b"RIFF\x24\0\0\0WEBPVP8L", ImageFormat::Webp),
            (b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf", ImageFormat::Avif),
            (
                b"\0\0\0\x20ftypmif1\0\0\0\0mif1avifmiafMA1B",
                ImageFormat::Avif,
            ),
            (
                b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0",
                ImageFormat::Bmp,
            ),
            (b"\0\0\x01\0\x01\0\x10\x10\0\0\x01\0", ImageFormat::Ico),
        ];
        for (bytes, want) in cases {
            assert_eq!(ImageFormat::sniff(bytes), Some(*want), "{bytes:?}");
        }
    }

    #[test]
    fn refuses_documents_and_near_misses() {
        for bytes in [
            &b"<!DOCTYPE html><html>"[..],
            b"{\"error\":\"nope\"}",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            b"<?xml version=\"1.0\"?><svg/>",
            b"",
            b"\xFF\xD8",
            b"RIFF\x24\0\0\0WAVEfmt ",
            b"\0\0\0\x1cftypmp42\0\0\0\0isommp42",
            b"BMW is a car",
            b"\0\0\x01\0\0\0",
        ] {
            assert_eq!(ImageFormat::sniff(bytes), None, "{bytes:?}");
        }
    }
}
