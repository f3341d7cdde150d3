//! AV1 samples → 8-bit RGBA, the step between the decoder (`avif_ffi`) and the picture
//! `avif_read` assembles: YCbCr by the matrix and range the container's `colr` nclx declares,
//! else the AV1 sequence header's (ISOBMFF 12.1.5.1: the container's colour information takes
//! precedence), samples of 10 and 12 bits scaled to 8, and alpha planes put beside the colour.
//! Each decoded picture is written at an offset into a canvas, so a grid's tiles land in place
//! and whatever reaches past the canvas's edge is dropped.

use super::avif_ffi::Frame;
use ::image::RgbaImage;

/// How the samples encode colour: H.273 matrix coefficients, and full or limited range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    pub matrix: u32,
    pub full_range: bool,
}

impl Signal {
    /// The container's declaration when there is one, else the frame's sequence header.
    pub fn of(f: &Frame<'_>, declared: Option<Signal>) -> Signal {
        declared.unwrap_or(Signal {
            matrix: f.matrix,
            full_range: f.full_range,
        })
    }
}

/// Sample `x` of row `y` of a plane, whatever its depth.
fn sample(plane: &[u8], stride: usize, bits: u8, x: usize, y: usize) -> u32 {
    if bits > 8 {
        let i = y * stride + x * 2;
        u32::from(u16::from_ne_bytes([plane[i], plane[i + 1]]))
    } else {
        u32::from(plane[y * stride + x])
    }
}

/// (Kr, Kb) of an H.273 matrix; `None` for identity (GBR stored as is).
fn coefficients(matrix: u32) -> Option<(f32, f32)> {
    match matrix {
        0 => None,
        1 => Some((0.2126, 0.0722)),
        4 => Some((0.30, 0.11)),
        9 | 10 => Some((0.2627, 0.0593)),
        _ => Some((0.299, 0.114)), // BT.601, also for "unspecified"
    }
}

/// Width and height of the part of frame `f`, placed at (`x0`, `y0`), that falls on `canvas`.
fn on_canvas(f: &Frame<'_>, canvas: &RgbaImage, (x0, y0): (u32, u32)) -> (usize, usize) {
    let (cw, ch) = canvas.dimensions();
    (
        f.width.min(cw.saturating_sub(x0) as usize),
        f.height.min(ch.saturating_sub(y0) as usize),
    )
}

/// The frame's colour, opaque, into `canvas` at (`x0`, `y0`).
pub fn put_colour(f: &Frame<'_>, signal: Signal, canvas: &mut RgbaImage, at: (u32, u32)) {
    let max = ((1u32 << f.bits) - 1) as f32;
    let shift = f.bits.saturating_sub(8);
    // Luma and chroma as 0..=1 and -0.5..=0.5 from their coded range.
    let (y_off, y_scale, c_scale) = if signal.full_range {
        (0.0, 1.0 / max, 1.0 / max)
    } else {
        let k = f32::from(1u16 << shift);
        (16.0 * k, 1.0 / (219.0 * k), 1.0 / (224.0 * k))
    };
    let mid = (1u32 << (f.bits - 1)) as f32;
    let to8 = |v: f32| (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
    let coeffs = coefficients(signal.matrix);
    let (w, h) = on_canvas(f, canvas, at);
    for (x, y) in (0..h).flat_map(|y| (0..w).map(move |x| (x, y))) {
        let (cx, cy) = (at.0 + x as u32, at.1 + y as u32);
        let luma = sample(f.planes[0], f.strides[0], f.bits, x, y) as f32;
        let px = match f.subsampling {
            None => {
                let v = to8((luma - y_off) * y_scale);
                [v, v, v, 255]
            }
            Some((sx, sy)) => {
                let (ux, uy) = (x >> sx, y >> sy);
                let u = sample(f.planes[1], f.strides[1], f.bits, ux, uy) as f32;
                let v = sample(f.planes[2], f.strides[2], f.bits, ux, uy) as f32;
                match coeffs {
                    // Identity: Y is G, U is B, V is R, all full-scale.
                    None => {
                        let n = |s: f32| to8((s - y_off) * y_scale);
                        [n(v), n(luma), n(u), 255]
                    }
                    Some((kr, kb)) => {
                        let yy = (luma - y_off) * y_scale;
                        let (cb, cr) = ((u - mid) * c_scale, (v - mid) * c_scale);
                        let r = yy + 2.0 * (1.0 - kr) * cr;
                        let b = yy + 2.0 * (1.0 - kb) * cb;
                        let g = (yy - kr * r - kb * b) / (1.0 - kr - kb);
                        [to8(r), to8(g), to8(b), 255]
                    }
                }
            }
        };
        canvas.put_pixel(cx, cy, ::image::Rgba(px));
    }
}

/// The frame's luma into `canvas`'s alpha channel at (`x0`, `y0`). An alpha plane is limited
/// range only when its own sequence header (or `colr`) says so.
pub fn put_alpha(f: &Frame<'_>, signal: Signal, canvas: &mut RgbaImage, at: (u32, u32)) {
    let max = ((1u32 << f.bits) - 1) as f32;
    let (off, scale) = if signal.full_range {
        (0.0, 255.0 / max)
    } else {
        let k = f32::from(1u16 << f.bits.saturating_sub(8));
        (16.0 * k, 255.0 / (219.0 * k))
    };
    let (w, h) = on_canvas(f, canvas, at);
    for (x, y) in (0..h).flat_map(|y| (0..w).map(move |x| (x, y))) {
        let (cx, cy) = (at.0 + x as u32, at.1 + y as u32);
        let a = sample(f.planes[0], f.strides[0], f.bits, x, y) as f32;
        canvas.get_pixel_mut(cx, cy)[3] = ((a - off) * scale + 0.5).clamp(0.0, 255.0) as u8;
    }
}

/// Colour stored multiplied by alpha (`prem`) back to straight alpha.
pub fn unpremultiply(rgba: &mut RgbaImage) {
    for p in rgba.pixels_mut() {
        let a = u32::from(p[3]);
        if a > 0 && a < 255 {
            for c in 0..3 {
                p[c] = ((u32::from(p[c]) * 255 + a / 2) / a).min(255) as u8;
            }
        }
    }
}
