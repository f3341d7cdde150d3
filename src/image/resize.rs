//! Pixel operations after decoding: crop + resample (fast_image_resize, alpha premultiplied
//! across the filter), letterbox canvas, blur, sharpen, and flattening alpha onto a colour.
//!
//! Resampling is Lanczos3 throughout, in one or two steps: a reduction of [`TWO_STEP_RATIO`] or
//! more first averages boxes down to [`TWO_STEP_MID`] times the target size, then Lanczos3 does
//! the rest (libvips's shrink-then-reduce): a large reduction costs a fraction of one Lanczos3
//! pass, whose kernel spans 6 × the ratio in source pixels, for a small loss of fidelity
//! (BENCHMARKS.md has the figures behind the two constants). An alpha channel that is opaque
//! everywhere (common in wallpapers and screenshots) is neither premultiplied nor kept: the
//! result has 3 channels, unless a letterbox needs alpha.

use super::{geometry::Plan, Pixels};
use crate::error::Error;
use fast_image_resize::{
    self as fr, images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions,
    Resizer,
};

fn pixel_type(channels: u8) -> PixelType {
    if channels == 4 {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    }
}

/// Crops and resamples `px` as `plan` says, then places it on the plan's canvas.
pub fn apply(px: Pixels, plan: &Plan, bg: [u8; 4]) -> Result<Pixels, Error> {
    if plan.is_identity(px.width, px.height) {
        return Ok(if plan.canvas == plan.resized {
            px
        } else {
            letterbox(px, plan, bg)
        });
    }
    let opaque = px.channels == 4 && is_opaque(&px.data);
    let resized = resample(&px, plan, !opaque)?;
    drop(px);
    if plan.canvas == plan.resized {
        return Ok(if opaque { drop_alpha(resized) } else { resized });
    }
    Ok(letterbox(resized, plan, bg))
}

/// From this reduction on (in both axes), resampling goes in two steps…
pub const TWO_STEP_RATIO: f64 = 4.0;
/// …the first of which boxes the source down to this many times the target size.
pub const TWO_STEP_MID: u32 = 3;

fn resample(px: &Pixels, plan: &Plan, use_alpha: bool) -> Result<Pixels, Error> {
    let internal = |e: &dyn std::fmt::Display| Error::Internal(format!("resize: {e}"));
    let pt = pixel_type(px.channels);
    let src = ImageRef::new(px.width, px.height, &px.data, pt).map_err(|e| internal(&e))?;
    let (w, h) = plan.resized;
    let (l, t, cw, ch) = plan.crop;
    let mut resizer = Resizer::new();
    let mut run = |src: &ImageRef<'_>, dst: &mut Image<'_>, filter, crop: Option<_>| {
        let mut options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(filter))
            .use_alpha(use_alpha);
        if let Some((l, t, cw, ch)) = crop {
            options = options.crop(l, t, cw, ch);
        }
        resizer
            .resize(src, dst, &options)
            .map_err(|e: fr::ResizeError| internal(&e))
    };
    let ratio = (cw / f64::from(w)).min(ch / f64::from(h));
    let mut dst = Image::new(w, h, pt);
    if ratio >= TWO_STEP_RATIO {
        let mut mid = Image::new(w * TWO_STEP_MID, h * TWO_STEP_MID, pt);
        run(&src, &mut mid, FilterType::Box, Some((l, t, cw, ch)))?;
        let mid =
            ImageRef::new(mid.width(), mid.height(), mid.buffer(), pt).map_err(|e| internal(&e))?;
        run(&mid, &mut dst, FilterType::Lanczos3, None)?;
    } else {
        run(&src, &mut dst, FilterType::Lanczos3, Some((l, t, cw, ch)))?;
    }
    Ok(Pixels {
        width: w,
        height: h,
        channels: px.channels,
        data: dst.into_vec(),
    })
}

/// A box-filtered copy of `region` (left, top, width, height) of `px` at `w`×`h`, for looking
/// at (`smart_crop`), not for output: straight alpha, no second step.
pub(super) fn shrink(
    px: &Pixels,
    region: (f64, f64, f64, f64),
    w: u32,
    h: u32,
) -> Result<Pixels, Error> {
    let internal = |e: &dyn std::fmt::Display| Error::Internal(format!("resize: {e}"));
    let pt = pixel_type(px.channels);
    let src = ImageRef::new(px.width, px.height, &px.data, pt).map_err(|e| internal(&e))?;
    let mut dst = Image::new(w, h, pt);
    let (l, t, cw, ch) = region;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Box))
        .use_alpha(false)
        .crop(l, t, cw, ch);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| internal(&e))?;
    Ok(Pixels {
        width: w,
        height: h,
        channels: px.channels,
        data: dst.into_vec(),
    })
}

/// Whether every pixel of RGBA `data` has alpha 255 (stops at the first block that has not).
fn is_opaque(data: &[u8]) -> bool {
    data.chunks(4096)
        .all(|block| block.chunks_exact(4).fold(255u8, |a, p| a & p[3]) == 255)
}

/// RGBA → RGB, for pixels known to be opaque.
fn drop_alpha(px: Pixels) -> Pixels {
    if px.channels != 4 {
        return px;
    }
    let mut data = Vec::with_capacity(px.data.len() / 4 * 3);
    for p in px.data.chunks_exact(4) {
        data.extend_from_slice(&p[..3]);
    }
    Pixels {
        channels: 3,
        data,
        ..px
    }
}

/// `fit=contain`: the image centred on a canvas of `bg`.
fn letterbox(px: Pixels, plan: &Plan, bg: [u8; 4]) -> Pixels {
    let (cw, ch) = plan.canvas;
    let c = usize::from(px.channels);
    let mut data: Vec<u8> = bg[..c]
        .iter()
        .copied()
        .cycle()
        .take(cw as usize * ch as usize * c)
        .collect();
    let (ox, oy) = (plan.offset.0 as usize, plan.offset.1 as usize);
    let row = px.width as usize * c;
    for y in 0..px.height as usize {
        let dst = ((oy + y) * cw as usize + ox) * c;
        data[dst..dst + row].copy_from_slice(&px.data[y * row..(y + 1) * row]);
    }
    Pixels {
        width: cw,
        height: ch,
        channels: px.channels,
        data,
    }
}

/// Gaussian blur (`blur=` sigma) and unsharp mask (`sharp=` sigma), after resampling.
pub fn effects(px: Pixels, blur: Option<f32>, sharp: Option<f32>) -> Pixels {
    if blur.is_none() && sharp.is_none() {
        return px;
    }
    let mut img = px.into_dynamic();
    if let Some(sigma) = blur {
        img = img.fast_blur(sigma);
    }
    if let Some(sigma) = sharp {
        img = img.unsharpen(sigma, 2);
    }
    Pixels::from_dynamic(img)
}

/// Composites alpha onto `bg` (for JPEG, which has none): 3 channels out.
pub fn flatten(px: Pixels, bg: [u8; 4]) -> Pixels {
    if px.channels == 3 {
        return px;
    }
    let blend = |c: u8, b: u8, a: u8| {
        ((u32::from(c) * u32::from(a) + u32::from(b) * (255 - u32::from(a)) + 127) / 255) as u8
    };
    let data = px
        .data
        .chunks_exact(4)
        .flat_map(|p| {
            [
                blend(p[0], bg[0], p[3]),
                blend(p[1], bg[1], p[3]),
                blend(p[2], bg[2], p[3]),
            ]
        })
        .collect();
    Pixels {
        width: px.width,
        height: px.height,
        channels: 3,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_blends_onto_the_background() {
        let px = Pixels {
            width: 2,
            height: 1,
            channels: 4,
            data: vec![255, 0, 0, 255, 0, 0, 0, 0],
        };
        let out = flatten(px, [255, 255, 255, 255]);
        assert_eq!(out.data, vec![255, 0, 0, 255, 255, 255]);
    }

    #[test]
    fn letterbox_centres_the_image() {
        let px = Pixels {
            width: 2,
            height: 1,
            channels: 3,
            data: vec![1; 6],
        };
        let plan = Plan {
            crop: (0.0, 0.0, 2.0, 1.0),
            resized: (2, 1),
            canvas: (2, 3),
            offset: (0, 1),
        };
        let out = apply(px, &plan, [0, 0, 0, 255]).unwrap();
        assert_eq!((out.width, out.height), (2, 3));
        assert_eq!(
            out.data,
            vec![0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
        );
    }

    /// A gradient, RGBA with the given alpha everywhere.
    fn gradient(w: u32, h: u32, alpha: u8) -> Pixels {
        let data = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [(x * 255 / w) as u8, (y * 255 / h) as u8, 128, alpha]
            })
            .collect();
        Pixels {
            width: w,
            height: h,
            channels: 4,
            data,
        }
    }

    fn plan_to(w: u32, h: u32, to: (u32, u32)) -> Plan {
        Plan {
            crop: (0.0, 0.0, f64::from(w), f64::from(h)),
            resized: to,
            canvas: to,
            offset: (0, 0),
        }
    }

    #[test]
    fn opaque_alpha_is_dropped_and_real_alpha_kept() {
        let out = apply(gradient(64, 32, 255), &plan_to(64, 32, (16, 8)), [0; 4]).unwrap();
        assert_eq!((out.channels, out.data.len()), (3, 16 * 8 * 3));
        let out = apply(gradient(64, 32, 200), &plan_to(64, 32, (16, 8)), [0; 4]).unwrap();
        assert_eq!(out.channels, 4);
        assert!(out.data.chunks_exact(4).all(|p| p[3] == 200));
        // A letterbox onto a transparent canvas keeps the channel it needs.
        let mut plan = plan_to(64, 32, (16, 8));
        plan.canvas = (16, 16);
        plan.offset = (0, 4);
        let out = apply(gradient(64, 32, 255), &plan, [0; 4]).unwrap();
        assert_eq!(out.channels, 4);
        assert_eq!(out.data[3], 0, "the letterbox is transparent");
    }

    #[test]
    fn two_step_reduction_stays_close_to_one_lanczos_pass() {
        // 10× in each axis: box to 3× the target, then Lanczos3.
        let px = gradient(640, 320, 255);
        let two = apply(px.clone(), &plan_to(640, 320, (64, 32)), [0; 4]).unwrap();
        let one = resample(&px, &plan_to(640, 320, (64, 32)), false).unwrap();
        let one = drop_alpha(one);
        let worst = two
            .data
            .iter()
            .zip(&one.data)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 3, "differs by {worst} levels");
    }

    #[test]
    fn resample_to_the_planned_size() {
        let px = Pixels {
            width: 40,
            height: 20,
            channels: 4,
            data: vec![128; 40 * 20 * 4],
        };
        let plan = Plan {
            crop: (0.0, 0.0, 40.0, 20.0),
            resized: (10, 5),
            canvas: (10, 5),
            offset: (0, 0),
        };
        let out = apply(px, &plan, [0; 4]).unwrap();
        assert_eq!((out.width, out.height, out.data.len()), (10, 5, 200));
        assert!(
            out.data.iter().all(|&v| v == 128),
            "a flat image stays flat"
        );
    }
}
