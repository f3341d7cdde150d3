//! The image pipeline: decode → resize → encode. Pure and synchronous: no I/O, no async, no
//! clock but the stage timings; `api` runs it on the blocking pool behind `work`'s permits.
//!
//! Limits are checked before allocation (`decode`), geometry is planned without pixels
//! (`geometry`), and every output is re-encoded from pixels, so no metadata (EXIF with GPS,
//! XMP, comments, ICC) survives; pixels are sRGB from the moment they are decoded (`color`).

pub mod avif;
pub mod avif_ffi;
pub mod avif_read;
pub mod avif_yuv;
mod bmp;
pub mod color;
pub mod decode;
pub mod encode;
pub mod footprint;
pub mod format;
pub mod geometry;
mod header;
pub mod info;
pub mod jpeg_scans;
pub mod resize;
mod shrink;
pub mod smart_crop;
pub mod webp_ffi;
mod webp_read;

use crate::{
    config,
    error::Error,
    transform::{Fit, Format, Transform},
};
use ::image::{DynamicImage, RgbaImage};
use format::ImageFormat;
use std::time::{Duration, Instant};

/// 8-bit sRGB pixels, 3 (RGB) or 4 (RGBA, straight alpha) channels.
#[derive(Debug, Clone)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
}

impl Pixels {
    pub fn from_dynamic(img: DynamicImage) -> Pixels {
        let (width, height) = (img.width(), img.height());
        if img.color().has_alpha() {
            Pixels {
                width,
                height,
                channels: 4,
                data: img.into_rgba8().into_raw(),
            }
        } else {
            Pixels {
                width,
                height,
                channels: 3,
                data: img.into_rgb8().into_raw(),
            }
        }
    }

    pub fn into_dynamic(self) -> DynamicImage {
        let (w, h) = (self.width, self.height);
        let fallback = || DynamicImage::new_rgb8(w, h);
        if self.channels == 4 {
            RgbaImage::from_raw(w, h, self.data).map_or_else(fallback, DynamicImage::ImageRgba8)
        } else {
            ::image::RgbImage::from_raw(w, h, self.data)
                .map_or_else(fallback, DynamicImage::ImageRgb8)
        }
    }

    pub fn to_rgba(&self) -> RgbaImage {
        self.clone().into_rgba()
    }

    pub fn into_rgba(self) -> RgbaImage {
        self.into_dynamic().into_rgba8()
    }
}

/// The `[limits]` the pipeline enforces: the decoder's, and the output's longest side.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_source_pixels: u64,
    pub max_frames: u32,
    pub max_animation_pixels: u64,
    pub max_output_px: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from(&config::Limits::default())
    }
}

impl From<&config::Limits> for Limits {
    fn from(l: &config::Limits) -> Self {
        Limits {
            max_source_pixels: l.max_source_pixels,
            max_frames: l.max_frames,
            max_animation_pixels: l.max_animation_pixels,
            max_output_px: l.max_output_px,
        }
    }
}

impl Limits {
    /// The same bounds in the `image` crate's terms, as a second line of defence inside the
    /// decoders (dimensions are checked from the header first).
    fn decoder_limits(&self) -> ::image::Limits {
        let side = u32::try_from(self.max_source_pixels).unwrap_or(u32::MAX);
        let mut l = ::image::Limits::default();
        l.max_image_width = Some(side);
        l.max_image_height = Some(side);
        l.max_alloc = Some(self.max_source_pixels.saturating_mul(8));
        l
    }
}

/// One transform job, every option resolved.
#[derive(Debug, Clone)]
pub struct Job {
    pub source: ImageFormat,
    pub transform: Transform,
    pub output: Format,
    pub quality: u8,
    pub limits: Limits,
}

/// Time spent per stage, for `Server-Timing`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub decode: Duration,
    pub resize: Duration,
    pub encode: Duration,
}

/// The encoded result.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub timings: Timings,
}

/// The background: `bg=` if given; else transparent where the output has alpha and white
/// where it does not (JPEG flattening).
fn background(job: &Job) -> [u8; 4] {
    match job.transform.bg {
        Some(c) => c.0,
        None if job.output.has_alpha() && job.transform.fit == Some(Fit::Contain) => [0, 0, 0, 0],
        None => [255, 255, 255, 255],
    }
}

/// Resizes and applies effects to pixels already in sRGB. `full` is the source's full (oriented) size, which the
/// geometry is planned against even when `px` was decoded smaller. `planned` holds the plan
/// across the frames of an animation: made (and a smart crop window chosen) on the first frame,
/// kept for the others, so the window does not wander from frame to frame.
fn transform_pixels(
    px: Pixels,
    full: (u32, u32),
    job: &Job,
    bg: [u8; 4],
    t: &mut Timings,
    planned: &mut Option<geometry::Plan>,
) -> Result<Pixels, Error> {
    let started = Instant::now();
    let plan = match *planned {
        Some(plan) => plan,
        None => {
            let mut plan = geometry::plan(full.0, full.1, &job.transform, job.limits.max_output_px)
                .for_decoded(full, (px.width, px.height));
            let smart = job.transform.anchor.and_then(smart_crop::Strategy::of);
            if let (Some(strategy), Some(Fit::Cover)) = (smart, job.transform.fit) {
                plan = smart_crop::place(&px, plan, strategy)?;
            }
            *planned = Some(plan);
            plan
        }
    };
    let letterbox = plan.canvas != plan.resized;
    // A letterbox with a transparent background needs an alpha channel to be transparent.
    let px = if letterbox && bg[3] < 255 && px.channels == 3 {
        Pixels::from_dynamic(DynamicImage::ImageRgba8(px.to_rgba()))
    } else {
        px
    };
    let px = resize::apply(px, &plan, bg)?;
    let tenths = |v: Option<u16>| v.map(|s| f32::from(s) / 10.0);
    let px = resize::effects(px, tenths(job.transform.blur), tenths(job.transform.sharp));
    t.resize += started.elapsed();
    Ok(px)
}

/// Runs the whole pipeline on the source bytes.
pub fn render(bytes: &[u8], job: &Job) -> Result<Rendered, Error> {
    let bg = background(job);
    let mut t = Timings::default();
    if job.output.can_animate() && decode::is_animated(bytes, job.source, &job.limits) {
        return render_animation(bytes, job, bg, t);
    }

    let started = Instant::now();
    let d = decode::still_for(bytes, job.source, &job.limits, &job.transform)?;
    t.decode = started.elapsed();
    let mut px = transform_pixels(d.px, d.full, job, bg, &mut t, &mut None)?;
    if job.output == Format::Jpeg {
        px = resize::flatten(px, bg);
    }
    let started = Instant::now();
    let body = encode::still(&px, job.output, job.quality)?;
    t.encode = started.elapsed();
    Ok(Rendered {
        body,
        width: px.width,
        height: px.height,
        timings: t,
    })
}

/// An animation, frame by frame: GIF output is encoded as each frame comes, WebP output
/// collects the resized frames first (the `webp` crate's encoder takes them all at once).
fn render_animation(
    bytes: &[u8],
    job: &Job,
    bg: [u8; 4],
    mut t: Timings,
) -> Result<Rendered, Error> {
    let started = Instant::now();
    let mut size = (0, 0);
    let mut encoding = Duration::ZERO;
    let mut planned = None;
    let body = if job.output == Format::Gif {
        encode::gif_streamed(|sink| {
            decode::frames(bytes, job.source, &job.limits, |px, delay| {
                let full = (px.width, px.height);
                let px = transform_pixels(px, full, job, bg, &mut t, &mut planned)?;
                size = (px.width, px.height);
                let started = Instant::now();
                let r = sink(px.into_rgba(), delay);
                encoding += started.elapsed();
                r
            })
        })?
    } else {
        let mut frames = Vec::new();
        decode::frames(bytes, job.source, &job.limits, |px, delay| {
            let full = (px.width, px.height);
            let px = transform_pixels(px, full, job, bg, &mut t, &mut planned)?;
            size = (px.width, px.height);
            frames.push((px.into_rgba(), delay));
            Ok(())
        })?;
        let started = Instant::now();
        let body = encode::animation(&frames, job.output, job.quality)?;
        encoding += started.elapsed();
        body
    };
    t.encode = encoding;
    t.decode = started.elapsed().saturating_sub(t.resize + encoding);
    Ok(Rendered {
        body,
        width: size.0,
        height: size.1,
        timings: t,
    })
}

/// The output format that keeps the source's format where imgrelay can encode it.
pub fn natural_output(source: ImageFormat) -> Format {
    match source {
        ImageFormat::Jpeg => Format::Jpeg,
        ImageFormat::Gif => Format::Gif,
        ImageFormat::Webp => Format::Webp,
        ImageFormat::Avif => Format::Avif,
        ImageFormat::Png | ImageFormat::Bmp | ImageFormat::Ico => Format::Png,
    }
}

/// Whether a file carries anything the transform form must strip: EXIF, XMP, ICC, comments
/// (JPEG APPn/COM segments other than JFIF; PNG ancillary text, EXIF, ICC and time chunks).
/// Other formats are always re-encoded.
pub fn has_metadata(b: &[u8], format: ImageFormat) -> bool {
    match format {
        ImageFormat::Jpeg => {
            let mut i = 2;
            while i + 4 <= b.len() && b[i] == 0xFF {
                let marker = b[i + 1];
                if marker == 0xDA {
                    return false; // start of scan: no more metadata segments
                }
                let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
                let jfif = marker == 0xE0 && b.get(i + 4..i + 9) == Some(b"JFIF\0");
                if (0xE1..=0xEF).contains(&marker) || marker == 0xFE || (marker == 0xE0 && !jfif) {
                    return true;
                }
                i += 2 + len;
            }
            true // unparseable: re-encode to be safe
        }
        ImageFormat::Png => {
            let mut i = 8;
            while i + 8 <= b.len() {
                let len = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
                let kind = &b[i + 4..i + 8];
                if matches!(
                    kind,
                    b"tEXt" | b"zTXt" | b"iTXt" | b"eXIf" | b"iCCP" | b"tIME"
                ) {
                    return true;
                }
                if kind == b"IEND" {
                    return false;
                }
                i = i.saturating_add(12 + len);
            }
            true
        }
        _ => true,
    }
}

/// The bytes of `tests/fixtures/{name}`, for this module's tests.
#[cfg(test)]
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}
