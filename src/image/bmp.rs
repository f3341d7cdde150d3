//! BMP variants the `image` crate's decoder misreads, put right at our call (the decoder itself
//! is the crate's): an OS/2 2.x header (16 to 64 bytes, which it refuses as an unknown header)
//! is rewritten as the Windows BITMAPINFOHEADER it extends, and the pixels an RLE bitmap's runs
//! skip (delta and early end-of-line codes) become transparent, as browsers show them, where
//! the crate paints them black. Pure byte work on a copy: no pixel is decoded here.

use super::Pixels;
use crate::error::Error;
use std::borrow::Cow;

const FILE_HEADER: usize = 14;
const INFO_HEADER: usize = 40;

fn le32(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

/// The DIB header's size: 12 (OS/2 1.x core header), 40/52/56/108/124 (Windows), 16..=64
/// otherwise (OS/2 2.x).
fn header_size(b: &[u8]) -> Option<usize> {
    le32(b, FILE_HEADER).map(|s| s as usize)
}

/// Whether the bitmap has an OS/2 2.x header.
fn is_os2_v2(size: usize) -> bool {
    (16..=64).contains(&size) && !matches!(size, INFO_HEADER | 52 | 56)
}

/// The file as the `image` crate reads it: an OS/2 2.x header becomes a BITMAPINFOHEADER (its
/// first 40 bytes mean the same, absent fields are zero, the palette's 4-byte entries and the
/// pixel data follow as they did); every other file is left as it is. OS/2's own compressions
/// (Huffman 1D, RLE24) are refused by name.
pub(super) fn readable(b: &[u8]) -> Result<Cow<'_, [u8]>, Error> {
    let corrupt = || Error::Undecodable("the BMP header is corrupt");
    let Some(size) = header_size(b).filter(|&s| is_os2_v2(s)) else {
        return Ok(Cow::Borrowed(b));
    };
    let header = b.get(FILE_HEADER..FILE_HEADER + size).ok_or_else(corrupt)?;
    let compression = if size >= 20 {
        le32(header, 16)
    } else {
        Some(0)
    };
    match compression {
        Some(0..=2) => {}
        Some(3) => {
            return Err(Error::Undecodable(
                "OS/2 Huffman-coded BMP is not supported",
            ))
        }
        Some(4) => return Err(Error::Undecodable("OS/2 RLE24 BMP is not supported")),
        _ => return Err(corrupt()),
    }
    let mut out = Vec::with_capacity(b.len() + INFO_HEADER);
    out.extend_from_slice(&b[..FILE_HEADER]);
    let mut info = header[..size.min(INFO_HEADER)].to_vec();
    info.resize(INFO_HEADER, 0);
    info[..4].copy_from_slice(&(INFO_HEADER as u32).to_le_bytes());
    out.extend_from_slice(&info);
    out.extend_from_slice(&b[FILE_HEADER + size..]);
    // The pixel data moved with the header's new length.
    let offset = le32(b, 10).ok_or_else(corrupt)? as usize;
    let moved = (offset + INFO_HEADER)
        .checked_sub(size)
        .filter(|&o| o >= FILE_HEADER + INFO_HEADER)
        .and_then(|o| u32::try_from(o).ok())
        .ok_or_else(corrupt)?;
    out[10..14].copy_from_slice(&moved.to_le_bytes());
    Ok(Cow::Owned(out))
}

/// For an RLE bitmap (Windows header, compression 1 or 2): a copy whose palette is all white,
/// so that decoding it paints every pixel a run sets white and leaves the skipped ones black.
/// `None` for any other bitmap.
pub(super) fn rle_coverage_probe(b: &[u8]) -> Option<Vec<u8>> {
    let size = header_size(b)?;
    if size < INFO_HEADER || !matches!(le32(b, FILE_HEADER + 16)?, 1 | 2) {
        return None;
    }
    let bits = u16::from_le_bytes(b.get(FILE_HEADER + 14..FILE_HEADER + 16)?.try_into().ok()?);
    let used = le32(b, FILE_HEADER + 32)? as usize;
    let entries = if used == 0 {
        1usize << bits.min(8)
    } else {
        used.min(256)
    };
    let start = FILE_HEADER + size;
    let mut out = b.to_vec();
    for entry in out.get_mut(start..start + entries * 4)?.chunks_exact_mut(4) {
        entry.copy_from_slice(&[255, 255, 255, 0]);
    }
    Some(out)
}

/// Makes the pixels `coverage` (the probe's decode, RGB) shows black transparent in `px`;
/// leaves `px` as it is when the runs covered every pixel.
pub(super) fn apply_coverage(px: Pixels, coverage: &Pixels) -> Pixels {
    let step = usize::from(coverage.channels);
    let covered = |i: usize| coverage.data[i * step..i * step + 3] == [255, 255, 255];
    let n = (px.width as usize) * (px.height as usize);
    if coverage.width != px.width || coverage.height != px.height || (0..n).all(covered) {
        return px;
    }
    let mut rgba = Pixels::from_dynamic(::image::DynamicImage::ImageRgba8(px.to_rgba()));
    for i in (0..n).filter(|&i| !covered(i)) {
        rgba.data[i * 4..i * 4 + 4].copy_from_slice(&[0, 0, 0, 0]);
    }
    rgba
}
