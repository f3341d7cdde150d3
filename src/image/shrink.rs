//! Shrink-on-load: a JPEG decoded by libjpeg-turbo (mozjpeg) with DCT scaling at the smallest
//! scale that keeps about twice the pixels the resampler needs (WebP's equivalent is in
//! `webp_read`). Limits are checked on the header the codec itself reads; `None` hands the
//! file to the general decoders.

use super::format::ImageFormat;
use super::header::{check_pixels, jpeg_is_complete, probe, undecodable};
use super::{geometry, jpeg_scans, Limits, Pixels};
use crate::{error::Error, transform::Transform};
use ::image::{metadata::Orientation, DynamicImage};

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

/// Runs `f`, which calls into libjpeg through `mozjpeg`. libjpeg's error handler cannot
/// return, so `mozjpeg` reports corrupt data by unwinding with the message as payload; that
/// is a decode error like any other decoder's. Any other panic goes on unwinding.
pub(super) fn libjpeg<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(
        |payload| match payload.downcast::<String>() {
            Ok(message) if message.starts_with("libjpeg") => Err(undecodable(message)),
            Ok(other) => std::panic::resume_unwind(other),
            Err(other) => std::panic::resume_unwind(other),
        },
    )
}

pub(super) fn jpeg_scaled(
    bytes: &[u8],
    limits: &Limits,
    t: &Transform,
) -> Result<Option<Decoded>, Error> {
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
    let swapped = swaps_sides(orientation);
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
pub(super) fn jpeg_decode_at(
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

/// Whether showing the pixels in `o` swaps their width and height.
pub(super) fn swaps_sides(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Source pixels (width, height) the resampler should get for `t` on a `full`-sized source:
/// twice what it reads per output pixel, for quality (what shrink-on-load must keep).
pub(super) fn needed_pixels(full: (u32, u32), t: &Transform, max_side: u32) -> (u64, u64) {
    let plan = geometry::plan(full.0, full.1, t, max_side);
    let need = |out: u32, crop: f64, side: u32| {
        (f64::from(out) * 2.0 * f64::from(side) / crop.max(1.0)).ceil() as u64
    };
    (
        need(plan.resized.0, plan.crop.2, full.0),
        need(plan.resized.1, plan.crop.3, full.1),
    )
}
