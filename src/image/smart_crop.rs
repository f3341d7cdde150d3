//! Content-aware placement of the `fit=cover` window for `a=entropy` and `a=attention`: the
//! window keeps the size `geometry` planned and slides along the axis the crop leaves free, to
//! where a score of the pixels is highest. Pure; no I/O.
//!
//! The score is computed on a small copy of the decoded source, resized so that the short side
//! (the one the window spans whole) has the output's size, kept within [`MIN_SIDE`] and
//! [`MAX_SIDE`] pixels: resize so the short side fits, then choose the window along the long
//! axis. That costs one cheap box-filtered resample of the source and a pass over a few
//! ten thousand pixels, little next to the resample of the output itself.
//!
//! - `entropy`: the Shannon entropy of the window's luminance histogram (256 levels), which is
//!   high where there is detail and texture and low over flat sky, walls and backdrops;
//! - `attention`: the sum over the window of a per-pixel saliency, the sum of three responses
//!   of 0..=255 each: luminance frequency (the absolute Laplacian), colour saturation
//!   (max − min of R, G, B) and skin tone (a YCbCr range test).
//!
//! Transparent pixels count as black. Among equal best scores the window takes the middle
//! position, so a subject on a plain background is centred and a flat picture is cropped
//! centred, as without a strategy.

use super::{geometry::Plan, resize, Pixels};
use crate::{error::Error, transform::Anchor};

/// The window-choosing strategies; every other anchor is placed by `geometry` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Entropy,
    Attention,
}

impl Strategy {
    pub fn of(anchor: Anchor) -> Option<Strategy> {
        match anchor {
            Anchor::Entropy => Some(Strategy::Entropy),
            Anchor::Attention => Some(Strategy::Attention),
            _ => None,
        }
    }
}

/// The analysis copy's short side: at least this many pixels, so a small thumbnail still
/// sees its subject…
const MIN_SIDE: f64 = 64.0;
/// …and at most this many, so a large output costs no more than a small one.
const MAX_SIDE: f64 = 256.0;

/// `plan`, made for `px`, with its crop window moved along the free axis to where `strategy`
/// scores highest. Unchanged when the window spans the whole picture both ways.
pub fn place(px: &Pixels, mut plan: Plan, strategy: Strategy) -> Result<Plan, Error> {
    let (w, h) = (f64::from(px.width), f64::from(px.height));
    let (l, t, cw, ch) = plan.crop;
    let horizontal = w - cw >= 1.0;
    if !horizontal && h - ch < 1.0 {
        return Ok(plan);
    }
    // The band the window slides in (its whole length, the window's span across), the
    // window's length along it, and the output's size across, all in decoded pixels.
    let (band, along, win, across, out_across) = if horizontal {
        ((0.0, t, w, ch), w, cw, ch, plan.resized.1)
    } else {
        ((l, 0.0, cw, h), h, ch, cw, plan.resized.0)
    };
    let scale = (f64::from(out_across) / across)
        .max(MIN_SIDE / across)
        .min(MAX_SIDE / across)
        .min(1.0);
    let side = |v: f64| ((v * scale).round() as u32).max(1);
    let (n_along, n_across) = (side(along), side(across));
    let (tw, th) = if horizontal {
        (n_along, n_across)
    } else {
        (n_across, n_along)
    };
    let small = resize::shrink(px, band, tw, th)?;
    let values = match strategy {
        Strategy::Entropy => luma(&small),
        Strategy::Attention => saliency(&small),
    };
    let lines = Lines::new(values, tw as usize, th as usize, horizontal);
    let per_px = f64::from(n_along) / along;
    let win_px = ((win * per_px).round() as usize).clamp(1, lines.count);
    let at = match strategy {
        Strategy::Entropy => best(&entropy_scores(&lines, win_px)),
        Strategy::Attention => best(&sum_scores(&lines, win_px)),
    };
    let start = (at as f64 / per_px).clamp(0.0, along - win);
    if horizontal {
        plan.crop.0 = start;
    } else {
        plan.crop.1 = start;
    }
    Ok(plan)
}

/// Per-pixel values of a picture, read as lines across the free axis: columns when the window
/// slides horizontally, rows when it slides vertically.
struct Lines {
    values: Vec<u16>,
    width: usize,
    horizontal: bool,
    /// Lines along the free axis, and values on each.
    count: usize,
    len: usize,
}

impl Lines {
    fn new(values: Vec<u16>, width: usize, height: usize, horizontal: bool) -> Lines {
        let (count, len) = if horizontal {
            (width, height)
        } else {
            (height, width)
        };
        Lines {
            values,
            width,
            horizontal,
            count,
            len,
        }
    }

    fn line(&self, i: usize) -> impl Iterator<Item = u16> + '_ {
        (0..self.len).map(move |j| {
            let (x, y) = if self.horizontal { (i, j) } else { (j, i) };
            self.values[y * self.width + x]
        })
    }
}

/// The index of the highest score. Equal best scores in a row (a window sliding over flat
/// background with the whole subject inside) resolve to the middle of the run nearest the
/// centre: the subject is centred in the window, and a flat picture is cropped centred.
fn best(scores: &[f64]) -> usize {
    let top = scores.iter().copied().fold(f64::MIN, f64::max);
    let tied = |i: usize| (top - scores[i]).abs() <= 1e-9 * top.abs().max(1.0);
    let centre = (scores.len() as f64 - 1.0) / 2.0;
    let Some(near) = (0..scores.len()).filter(|&i| tied(i)).min_by(|&a, &b| {
        (a as f64 - centre)
            .abs()
            .total_cmp(&(b as f64 - centre).abs())
    }) else {
        return 0;
    };
    let (mut lo, mut hi) = (near, near);
    while lo > 0 && tied(lo - 1) {
        lo -= 1;
    }
    while hi + 1 < scores.len() && tied(hi + 1) {
        hi += 1;
    }
    (lo + hi) / 2
}

/// The Shannon entropy (bits) of the values in each window of `win` lines, by a sliding
/// histogram: one line in, one line out per step.
fn entropy_scores(lines: &Lines, win: usize) -> Vec<f64> {
    let mut hist = [0u32; 256];
    let total = (win * lines.len) as f64;
    let entropy = |hist: &[u32; 256]| {
        hist.iter()
            .filter(|&&n| n > 0)
            .map(|&n| {
                let p = f64::from(n) / total;
                -p * p.log2()
            })
            .sum::<f64>()
    };
    for i in 0..win {
        lines.line(i).for_each(|v| hist[usize::from(v)] += 1);
    }
    let mut scores = vec![entropy(&hist)];
    for i in win..lines.count {
        lines.line(i - win).for_each(|v| hist[usize::from(v)] -= 1);
        lines.line(i).for_each(|v| hist[usize::from(v)] += 1);
        scores.push(entropy(&hist));
    }
    scores
}

/// The sum of the values in each window of `win` lines.
fn sum_scores(lines: &Lines, win: usize) -> Vec<f64> {
    let sums: Vec<u64> = (0..lines.count)
        .map(|i| lines.line(i).map(u64::from).sum())
        .collect();
    let mut window: u64 = sums[..win].iter().sum();
    let mut scores = vec![window as f64];
    for i in win..lines.count {
        window = window + sums[i] - sums[i - win];
        scores.push(window as f64);
    }
    scores
}

/// Rec. 601 luma of an RGB(A) pixel, transparent counting as black.
fn luma_of(p: &[u8]) -> u16 {
    let y = (77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2]) + 128) >> 8;
    let a = p.get(3).map_or(255, |&a| u32::from(a));
    ((y * a + 127) / 255) as u16
}

fn luma(px: &Pixels) -> Vec<u16> {
    px.data
        .chunks_exact(usize::from(px.channels))
        .map(luma_of)
        .collect()
}

/// Whether an RGB colour lies in the YCbCr box commonly used to find human skin tones
/// (Cb 77..=127, Cr 133..=173), not too dark to tell.
fn is_skin(r: i32, g: i32, b: i32, y: u16) -> bool {
    let cb = 128 + ((-43 * r - 85 * g + 128 * b) >> 8);
    let cr = 128 + ((128 * r - 107 * g - 21 * b) >> 8);
    y >= 40 && (77..=127).contains(&cb) && (133..=173).contains(&cr)
}

/// Per-pixel saliency: |Laplacian of luma| + saturation + skin response, each 0..=255,
/// weighted by alpha.
fn saliency(px: &Pixels) -> Vec<u16> {
    let (w, h) = (px.width as usize, px.height as usize);
    let c = usize::from(px.channels);
    let y = luma(px);
    let at = |x: usize, yy: usize| i32::from(y[yy * w + x]);
    let mut out = Vec::with_capacity(w * h);
    for row in 0..h {
        for col in 0..w {
            let centre = at(col, row);
            let around = at(col.saturating_sub(1), row)
                + at((col + 1).min(w - 1), row)
                + at(col, row.saturating_sub(1))
                + at(col, (row + 1).min(h - 1));
            let edge = (4 * centre - around).unsigned_abs().min(255);
            let p = &px.data[(row * w + col) * c..][..c];
            let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
            let sat = (r.max(g).max(b) - r.min(g).min(b)).unsigned_abs();
            let skin = if is_skin(r, g, b, y[row * w + col]) {
                255
            } else {
                0
            };
            let alpha = p.get(3).map_or(255, |&a| u32::from(a));
            out.push(((edge + sat + skin) * alpha / 255) as u16);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{image::geometry, transform::Transform};

    /// A `w`×`h` picture: flat grey, with `subject` painted over the rectangle `at`.
    fn picture(
        w: u32,
        h: u32,
        at: (u32, u32, u32, u32),
        subject: impl Fn(u32, u32) -> [u8; 3],
    ) -> Pixels {
        let (sx, sy, sw, sh) = at;
        let data = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                if (sx..sx + sw).contains(&x) && (sy..sy + sh).contains(&y) {
                    subject(x, y)
                } else {
                    [120, 120, 120]
                }
            })
            .collect();
        Pixels {
            width: w,
            height: h,
            channels: 3,
            data,
        }
    }

    /// Detail: a pseudo-random grey texture.
    fn texture(x: u32, y: u32) -> [u8; 3] {
        let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).rotate_left(7) as u8;
        [v, v, v]
    }

    /// The crop window chosen for `q` on `px`.
    fn window(px: &Pixels, q: &str) -> (f64, f64, f64, f64) {
        let params = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        let t = Transform::from_params(&params, 8192).unwrap();
        let plan = geometry::plan(px.width, px.height, &t, 8192);
        let strategy = Strategy::of(t.anchor.unwrap()).unwrap();
        place(px, plan, strategy).unwrap().crop
    }

    fn contains(window: (f64, f64, f64, f64), subject: (u32, u32, u32, u32)) -> bool {
        let (l, t, w, h) = window;
        let (sx, sy, sw, sh) = subject;
        l <= f64::from(sx)
            && t <= f64::from(sy)
            && l + w >= f64::from(sx + sw)
            && t + h >= f64::from(sy + sh)
    }

    #[test]
    fn entropy_finds_the_detailed_subject_landscape_and_portrait() {
        for (size, subject, q) in [
            (
                (1200, 400),
                (40, 100, 200, 200),
                "w=200&h=200&fit=cover&a=entropy",
            ),
            (
                (1200, 400),
                (930, 20, 240, 300),
                "w=300&h=300&fit=cover&a=entropy",
            ),
            (
                (400, 1200),
                (100, 900, 200, 250),
                "w=200&h=200&fit=cover&a=entropy",
            ),
            (
                (600, 1000),
                (50, 30, 300, 150),
                "w=300&h=200&fit=cover&a=entropy",
            ),
        ] {
            let px = picture(size.0, size.1, subject, texture);
            let win = window(&px, q);
            assert!(contains(win, subject), "{size:?} {q}: {win:?}");
        }
    }

    #[test]
    fn attention_finds_colour_skin_and_edges_landscape_and_portrait() {
        let red = |_, _| [220, 30, 40];
        let skin = |_, _| [224, 172, 140];
        let edges = |x: u32, y: u32| {
            if (x / 6 + y / 6).is_multiple_of(2) {
                [20; 3]
            } else {
                [235; 3]
            }
        };
        for (size, subject, paint, q) in [
            (
                (1600, 900),
                (1250, 300, 250, 300),
                &red as &dyn Fn(u32, u32) -> [u8; 3],
                "w=320&h=320",
            ),
            ((1600, 900), (60, 100, 300, 400), &skin, "w=320&h=320"),
            (
                (1600, 900),
                (100, 50, 200, 200),
                &edges,
                "w=180&h=180&dpr=2",
            ),
            ((900, 1600), (100, 1200, 300, 300), &red, "w=320&h=320"),
            ((900, 1600), (500, 80, 300, 350), &skin, "w=300&h=400"),
        ] {
            let px = picture(size.0, size.1, subject, paint);
            let q = format!("{q}&fit=cover&a=attention");
            let win = window(&px, &q);
            assert!(contains(win, subject), "{size:?} {q}: {win:?}");
        }
    }

    #[test]
    fn a_flat_picture_is_cropped_centred_and_a_full_window_stays() {
        let px = picture(800, 400, (0, 0, 0, 0), texture);
        for a in ["entropy", "attention"] {
            let win = window(&px, &format!("w=100&h=100&fit=cover&a={a}"));
            assert_eq!(win, (200.0, 0.0, 400.0, 400.0), "{a}");
            let win = window(&px, &format!("w=200&h=100&fit=cover&a={a}"));
            assert_eq!(win, (0.0, 0.0, 800.0, 400.0), "{a}: nothing to choose");
        }
    }

    #[test]
    fn transparent_pixels_count_as_black() {
        // Opaque red on the right, the same red fully transparent on the left.
        let data = (0..400 * 100)
            .flat_map(|i| [220, 30, 40, if i % 400 < 200 { 0 } else { 255 }])
            .collect();
        let px = Pixels {
            width: 400,
            height: 100,
            channels: 4,
            data,
        };
        let win = window(&px, "w=50&h=50&fit=cover&a=attention");
        assert!(win.0 >= 200.0, "{win:?}");
    }
}
