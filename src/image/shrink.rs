//! JPEG decoding, all of it by libjpeg-turbo (mozjpeg), so that every path a transform takes
//! gets the same verdict on a file: at the smallest DCT scale that keeps about twice the
//! pixels the resampler needs (shrink-on-load), or at full size. CMYK and YCCK come out as
//! CMYK and go through `color` with their profile; the result is sRGB. WebP's shrink-on-load
//! is in `webp_read`. Limits are checked on the header the codec itself reads.

use super::format::ImageFormat;
use super::header::{check_pixels, jpeg_is_complete, probe, undecodable};
use super::{color, geometry, jpeg_scans, Limits, Pixels};
use crate::{error::Error, transform::Transform};
use ::image::{metadata::Orientation, DynamicImage};

/// A still decoded for a transform, in sRGB: the pixels (possibly scaled down already) and
/// the full-size (oriented) dimensions of the source, against which the geometry is planned.
#[derive(Debug)]
pub struct Decoded {
    pub px: Pixels,
    pub full: (u32, u32),
}

/// Runs `f`, which calls into libjpeg through `mozjpeg`. libjpeg's error handler cannot
/// return, so `mozjpeg` reports corrupt data by unwinding with the message as payload; that
/// is a decode error like any other decoder's. Any other panic goes on unwinding.
pub(super) fn libjpeg<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(
        |payload| match payload.downcast::<String>() {
            Ok(message) if message.starts_with("libjpeg") => Err(refusal(&message)),
            Ok(other) => std::panic::resume_unwind(other),
            Err(other) => std::panic::resume_unwind(other),
        },
    )
}

/// libjpeg's refusal, named for the client where it is a JPEG feature imgrelay does not read
/// (SPEC §2.2) rather than corrupt data.
fn refusal(message: &str) -> Error {
    if message.contains("Unsupported JPEG data precision") {
        Error::Undecodable("12-bit JPEG is not supported: only 8-bit samples are decoded")
    } else if message.contains("SOF type 0xc3") || message.contains("SOF type 0xcb") {
        Error::Undecodable("lossless JPEG is not supported")
    } else {
        undecodable(message)
    }
}

/// Decodes a JPEG for `t` (at full size for `None`): at the smallest M/8 among 1/8, 1/4, 1/2
/// that keeps the pixels the resampler needs, else at 8/8.
pub(super) fn jpeg(bytes: &[u8], limits: &Limits, t: Option<&Transform>) -> Result<Decoded, Error> {
    libjpeg(|| jpeg_inner(bytes, limits, t))
}

fn jpeg_inner(bytes: &[u8], limits: &Limits, t: Option<&Transform>) -> Result<Decoded, Error> {
    use mozjpeg::Marker;
    if !jpeg_is_complete(bytes) {
        return Err(Error::Undecodable("the image is truncated"));
    }
    let (w, h) = probe(bytes, ImageFormat::Jpeg)?;
    check_pixels(w, h, limits)?;
    let markers = [Marker::APP(1), Marker::APP(2), Marker::APP(14)];
    let d = mozjpeg::Decompress::with_markers(&markers)
        .from_mem(bytes)
        .map_err(undecodable)?;
    // The frame libjpeg will decode: the header walk of `probe` stops at bytes libjpeg skips
    // between markers, and may have found another start-of-frame than libjpeg's.
    let (w, h) = (d.width() as u32, d.height() as u32);
    check_pixels(w, h, limits)?;
    let mut meta = Meta {
        space: Space::of(&d)?,
        orientation: Orientation::NoTransforms,
        full: (w, h),
        icc_parts: Vec::new(),
    };
    let mut exif = None;
    for m in d.markers() {
        match m.marker {
            Marker::APP(1) if exif.is_none() => {
                exif = m.data.strip_prefix(b"Exif\0\0").map(<[u8]>::to_vec)
            }
            Marker::APP(2) => {
                if let Some(part) = m.data.strip_prefix(b"ICC_PROFILE\0") {
                    let body = part.get(2..).unwrap_or_default().to_vec();
                    meta.icc_parts
                        .push((part.first().copied().unwrap_or(0), body));
                }
            }
            // Photoshop's CMYK (and YCCK) files, marked by Adobe's APP14, store every ink
            // inverted (0 = full ink); libjpeg hands the samples over as stored.
            Marker::APP(14) if m.data.starts_with(b"Adobe") => {
                if let Space::Cmyk { inverted } = &mut meta.space {
                    *inverted = true;
                }
            }
            _ => {}
        }
    }
    meta.orientation = exif
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let swapped = swaps_sides(meta.orientation);
    meta.full = if swapped { (h, w) } else { (w, h) };
    let Some(t) = t else {
        return jpeg_decode_at(d, 8, meta);
    };
    // Source pixels the resampler reads, times two for quality, in the file's own orientation.
    let (nw, nh) = needed_pixels(meta.full, t, limits.max_output_px);
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
            return jpeg_decode_at(d, 1, meta);
        }
    }
    // Otherwise the smallest scale M/8 that keeps those pixels, among those libjpeg-turbo has
    // SIMD inverse DCTs for (1/8, 1/4, 1/2): its 3/8, 5/8… are plain C and slower than 4/8.
    let m = [1u8, 2, 4]
        .into_iter()
        .find(|&m| fits(u64::from(m), 1))
        .unwrap_or(8);
    jpeg_decode_at(d, m, meta)
}

/// Decodes every scan of a JPEG at 1/8 and drops the pixels: the verdict of [`jpeg`] on the
/// file, whatever the scale, for a transform that serves the source's own bytes. (libjpeg
/// reads the same entropy-coded data at every scale; the 1×1 IDCT is all that is saved.)
pub(super) fn jpeg_check(bytes: &[u8], limits: &Limits) -> Result<(), Error> {
    libjpeg(|| {
        if !jpeg_is_complete(bytes) {
            return Err(Error::Undecodable("the image is truncated"));
        }
        let mut d = mozjpeg::Decompress::new_mem(bytes).map_err(undecodable)?;
        check_pixels(d.width() as u32, d.height() as u32, limits)?;
        let space = Space::of(&d)?;
        d.scale(1);
        d.do_block_smoothing(false);
        d.do_fancy_upsampling(false);
        let mut started = space.start(d)?;
        let _: Vec<u8> = started.read_scanlines().map_err(undecodable)?;
        started.finish().map_err(undecodable)
    })
}

/// What [`jpeg_inner`] learnt from a JPEG's header.
struct Meta {
    space: Space,
    orientation: Orientation,
    full: (u32, u32),
    icc_parts: Vec<(u8, Vec<u8>)>,
}

/// The samples libjpeg is asked for.
#[derive(Clone, Copy)]
enum Space {
    Gray,
    Rgb,
    Cmyk { inverted: bool },
}

impl Space {
    /// What libjpeg can give for the file's colour space.
    fn of(d: &mozjpeg::Decompress<&[u8]>) -> Result<Space, Error> {
        use mozjpeg::ColorSpace;
        Ok(match d.color_space() {
            ColorSpace::JCS_GRAYSCALE => Space::Gray,
            ColorSpace::JCS_YCbCr | ColorSpace::JCS_RGB => Space::Rgb,
            ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => Space::Cmyk { inverted: false },
            _ => {
                return Err(Error::Undecodable(
                    "the JPEG's colour space is not supported",
                ))
            }
        })
    }

    fn start(
        self,
        d: mozjpeg::Decompress<&[u8]>,
    ) -> Result<mozjpeg::decompress::DecompressStarted<&[u8]>, Error> {
        match self {
            Space::Gray => d.grayscale(),
            Space::Rgb => d.rgb(),
            Space::Cmyk { .. } => d.to_colorspace(mozjpeg::ColorSpace::JCS_CMYK),
        }
        .map_err(undecodable)
    }
}

/// Decodes the JPEG `d` has read the header of at scale `m`/8, converts it to sRGB and
/// orients it.
fn jpeg_decode_at(
    mut d: mozjpeg::Decompress<&[u8]>,
    m: u8,
    mut meta: Meta,
) -> Result<Decoded, Error> {
    d.scale(m);
    // At 1/8 the luma IDCT reads nothing but DC, which block smoothing never changes; with
    // the AC scans dropped, it would estimate coefficients nothing reads.
    d.do_block_smoothing(m != 1);
    // Scaled output goes on to be averaged down by the resampler: libjpeg-turbo's merged
    // upsampling (chroma upsampled and converted in one SIMD pass) is enough there.
    d.do_fancy_upsampling(m == 8);
    let mut started = meta.space.start(d)?;
    let (sw, sh) = (started.width() as u32, started.height() as u32);
    let mut data: Vec<u8> = started.read_scanlines().map_err(undecodable)?;
    started.finish().map_err(undecodable)?;
    let icc: Option<Vec<u8>> = (!meta.icc_parts.is_empty()).then(|| {
        meta.icc_parts.sort_by_key(|(seq, _)| *seq);
        std::mem::take(&mut meta.icc_parts)
            .into_iter()
            .flat_map(|(_, p)| p)
            .collect()
    });
    let img = match meta.space {
        Space::Gray => ::image::GrayImage::from_raw(sw, sh, data).map(DynamicImage::ImageLuma8),
        Space::Rgb => ::image::RgbImage::from_raw(sw, sh, data).map(DynamicImage::ImageRgb8),
        Space::Cmyk { inverted } => {
            if inverted {
                data.iter_mut().for_each(|v| *v = 255 - *v);
            }
            let rgb = color::cmyk_to_srgb(&data, icc.as_deref());
            ::image::RgbImage::from_raw(sw, sh, rgb).map(DynamicImage::ImageRgb8)
        }
    };
    let Some(mut img) = img else {
        return Err(Error::Undecodable(
            "the image data is corrupt or unsupported",
        ));
    };
    img.apply_orientation(meta.orientation);
    let mut px = Pixels::from_dynamic(img);
    if let (Some(icc), false) = (&icc, matches!(meta.space, Space::Cmyk { .. })) {
        color::to_srgb(&mut px, icc);
    }
    Ok(Decoded {
        px,
        full: meta.full,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A YCCK JPEG as Photoshop writes one (inks stored inverted, Adobe's APP14 saying YCCK)
    /// decodes to the colours of its inks: libjpeg turns YCCK into CMYK, we undo the inversion.
    #[test]
    fn an_adobe_ycck_jpeg_decodes_to_the_colours_of_its_inks() {
        let (w, h) = (32usize, 16usize);
        let inks: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = ((i % w) as u8, (i / w) as u8);
                [x * 8, y * 16, 128, 40]
            })
            .collect();
        let stored: Vec<u8> = inks.iter().map(|v| 255 - v).collect();
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_CMYK);
        c.set_color_space(mozjpeg::ColorSpace::JCS_YCCK);
        c.set_size(w, h);
        c.set_quality(95.0);
        let mut started = c.start_compress(Vec::new()).unwrap();
        started.write_scanlines(&stored).unwrap();
        let file = started.finish().unwrap();
        assert!(file.windows(5).any(|m| m == b"Adobe"), "an Adobe marker");

        let d = jpeg(&file, &Limits::default(), None).unwrap();
        assert_eq!((d.px.width, d.px.height), (32, 16));
        let want = color::cmyk_to_srgb(&inks, None);
        let diff: u64 = want
            .iter()
            .zip(&d.px.data)
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = diff as f64 / want.len() as f64;
        assert!(mean < 3.0, "mean |Δ| = {mean}");
    }
}
