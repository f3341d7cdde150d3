//! Pixel operations after decoding: crop + resample (fast_image_resize, alpha premultiplied
//! across the filter), letterbox canvas, blur, sharpen, and flattening alpha onto a colour.

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
    let resized = if plan.is_identity(px.width, px.height) {
        px
    } else {
        resample(&px, plan)?
    };
    if plan.canvas == plan.resized {
        return Ok(resized);
    }
    Ok(letterbox(resized, plan, bg))
}

fn resample(px: &Pixels, plan: &Plan) -> Result<Pixels, Error> {
    let internal = |e: &dyn std::fmt::Display| Error::Internal(format!("resize: {e}"));
    let pt = pixel_type(px.channels);
    let src = ImageRef::new(px.width, px.height, &px.data, pt).map_err(|e| internal(&e))?;
    let (w, h) = plan.resized;
    let mut dst = Image::new(w, h, pt);
    let (l, t, cw, ch) = plan.crop;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(l, t, cw, ch);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e: fr::ResizeError| internal(&e))?;
    Ok(Pixels {
        width: w,
        height: h,
        channels: px.channels,
        data: dst.into_vec(),
    })
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
