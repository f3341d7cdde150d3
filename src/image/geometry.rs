//! Resize arithmetic: from a source size and a [`Transform`] to the exact source crop, the
//! resized size and the canvas. Pure integer/float math, no pixels.
//!
//! Rules: `inside` fits in the box keeping aspect; `outside` covers the box keeping aspect;
//! `cover` covers then crops to the box at the anchor (a focal point as near the window's centre
//! as the source allows; `entropy` and `attention` start centred and are moved by
//! `smart_crop`, which looks at the pixels); `fill` stretches; `contain` fits and
//! letterboxes onto a canvas of the box. Without `we=0` nothing is enlarged, and no output side
//! exceeds the source's (a too-large box shrinks to the source, keeping its aspect). Whatever
//! the mode, the final canvas is then scaled down, never cropped, until no side exceeds
//! `limits.max_output_px` (SPEC §2.2): a source or a box larger than that still fits.

use crate::transform::{Anchor, Fit, Transform};

/// What the pipeline does with the pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Region of the source to use: left, top, width, height (source pixels, fractional).
    pub crop: (f64, f64, f64, f64),
    /// Size the cropped region is resampled to.
    pub resized: (u32, u32),
    /// Final canvas and where the resized image sits on it (only `contain` differs).
    pub canvas: (u32, u32),
    pub offset: (u32, u32),
}

impl Plan {
    pub fn identity(w: u32, h: u32) -> Plan {
        Plan {
            crop: (0.0, 0.0, f64::from(w), f64::from(h)),
            resized: (w, h),
            canvas: (w, h),
            offset: (0, 0),
        }
    }

    pub fn is_identity(&self, w: u32, h: u32) -> bool {
        *self == Plan::identity(w, h)
    }

    /// The same plan for pixels decoded at `got` instead of `full` (shrink-on-load): the crop
    /// is scaled, the output sizes stay.
    pub fn for_decoded(mut self, full: (u32, u32), got: (u32, u32)) -> Plan {
        if full != got {
            let fx = f64::from(got.0) / f64::from(full.0);
            let fy = f64::from(got.1) / f64::from(full.1);
            let (l, t, w, h) = self.crop;
            let (l, t) = (l * fx, t * fy);
            self.crop = (
                l,
                t,
                (w * fx).min(f64::from(got.0) - l),
                (h * fy).min(f64::from(got.1) - t),
            );
        }
        self
    }

    /// The same plan scaled down uniformly until neither canvas side exceeds `max` pixels:
    /// the same crop of the source, resampled smaller, so nothing is cut off.
    fn fit_within(self, max: u32) -> Plan {
        let max = max.max(1);
        let longest = self.canvas.0.max(self.canvas.1);
        if longest <= max {
            return self;
        }
        let k = f64::from(max) / f64::from(longest);
        let scale = |v: u32| px(f64::from(v) * k).min(max);
        let canvas = (scale(self.canvas.0), scale(self.canvas.1));
        let resized = (
            scale(self.resized.0).min(canvas.0),
            scale(self.resized.1).min(canvas.1),
        );
        Plan {
            crop: self.crop,
            resized,
            canvas,
            offset: ((canvas.0 - resized.0) / 2, (canvas.1 - resized.1) / 2),
        }
    }
}

fn px(x: f64) -> u32 {
    (x.round() as u32).max(1)
}

/// Plans `t` for a source of `sw`×`sh`, with no output side over `max_side`
/// (`limits.max_output_px`).
pub fn plan(sw: u32, sh: u32, t: &Transform, max_side: u32) -> Plan {
    box_plan(sw, sh, t).fit_within(max_side)
}

/// What `t` asks for, before the output bound.
fn box_plan(sw: u32, sh: u32, t: &Transform) -> Plan {
    let (bw, bh) = t.target_box();
    if bw.is_none() && bh.is_none() {
        return Plan::identity(sw, sh);
    }
    let (fw, fh) = (f64::from(sw), f64::from(sh));
    let sx = bw.map(|w| f64::from(w) / fw);
    let sy = bh.map(|h| f64::from(h) / fh);
    let cap = |s: f64| if t.enlarge { s } else { s.min(1.0) };
    let fit = t.fit.unwrap_or_default();
    // With one side missing, every mode but fill keeps the aspect ratio from the other.
    let (sx, sy) = match (sx, sy) {
        (Some(x), Some(y)) => (x, y),
        (Some(x), None) => (x, x),
        (None, Some(y)) => (y, y),
        (None, None) => (1.0, 1.0),
    };
    // The whole source, resampled to `size`: every mode but cover and contain.
    let whole = |size: (u32, u32)| Plan {
        crop: (0.0, 0.0, fw, fh),
        resized: size,
        canvas: size,
        offset: (0, 0),
    };
    let uniform = |s: f64| whole((px(fw * s), px(fh * s)));
    match fit {
        Fit::Inside => uniform(cap(sx.min(sy))),
        Fit::Outside => uniform(cap(sx.max(sy))),
        Fit::Fill => whole((px(fw * cap(sx)), px(fh * cap(sy)))),
        Fit::Cover => {
            let s = sx.max(sy);
            // The box in source pixels, never more than the source itself.
            let (cw, ch) = ((fw * sx / s).min(fw), (fh * sy / s).min(fh));
            let s = cap(s);
            let out = (px(cw * s), px(ch * s));
            let (left, top) = match t.anchor.unwrap_or_default() {
                Anchor::Focal { x, y } => {
                    // The window centred on the point, slid back inside the source.
                    let at = |p: u16, full: f64, len: f64| {
                        (f64::from(p) / 1000.0 * full - len / 2.0).clamp(0.0, full - len)
                    };
                    (at(x, fw, cw), at(y, fh, ch))
                }
                a => {
                    let (ax, ay) = anchor_fractions(a);
                    ((fw - cw) * ax, (fh - ch) * ay)
                }
            };
            Plan {
                crop: (left, top, cw, ch),
                resized: out,
                canvas: out,
                offset: (0, 0),
            }
        }
        Fit::Contain => {
            let s = cap(sx.min(sy));
            let inner = (px(fw * s), px(fh * s));
            let (mut cw, mut ch) = (bw.unwrap_or(inner.0), bh.unwrap_or(inner.1));
            if !t.enlarge {
                // Shrink the canvas to the source's size, keeping the box's aspect.
                let k = (fw / f64::from(cw)).min(fh / f64::from(ch)).min(1.0);
                cw = px(f64::from(cw) * k).max(inner.0.min(cw));
                ch = px(f64::from(ch) * k).max(inner.1.min(ch));
            }
            let inner = (inner.0.min(cw), inner.1.min(ch));
            let offset = ((cw - inner.0) / 2, (ch - inner.1) / 2);
            Plan {
                crop: (0.0, 0.0, fw, fh),
                resized: inner,
                canvas: (cw, ch),
                offset,
            }
        }
    }
}

fn anchor_fractions(a: Anchor) -> (f64, f64) {
    match a {
        Anchor::Center | Anchor::Entropy | Anchor::Attention | Anchor::Focal { .. } => (0.5, 0.5),
        Anchor::Top => (0.5, 0.0),
        Anchor::Bottom => (0.5, 1.0),
        Anchor::Left => (0.0, 0.5),
        Anchor::Right => (1.0, 0.5),
        Anchor::TopLeft => (0.0, 0.0),
        Anchor::TopRight => (1.0, 0.0),
        Anchor::BottomLeft => (0.0, 1.0),
        Anchor::BottomRight => (1.0, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(q: &str) -> Transform {
        let params = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        Transform::from_params(&params, 8192).unwrap()
    }

    fn plan(sw: u32, sh: u32, t: &Transform) -> Plan {
        super::plan(sw, sh, t, 8192)
    }

    #[test]
    fn fit_modes_on_a_landscape_source() {
        let cases = [
            // (query, resized, canvas)
            ("w=400&h=400", (400, 225), (400, 225)),
            ("w=400", (400, 225), (400, 225)),
            ("h=90", (160, 90), (160, 90)),
            ("w=400&h=400&fit=outside", (711, 400), (711, 400)),
            ("w=400&h=400&fit=cover", (400, 400), (400, 400)),
            ("w=400&h=400&fit=fill", (400, 400), (400, 400)),
            ("w=400&h=400&fit=contain", (400, 225), (400, 400)),
            ("w=200&h=100&dpr=2", (356, 200), (356, 200)),
        ];
        for (q, resized, canvas) in cases {
            let p = plan(1600, 900, &t(q));
            assert_eq!((p.resized, p.canvas), (resized, canvas), "{q}");
        }
    }

    #[test]
    fn never_enlarges_unless_asked() {
        assert_eq!(plan(100, 50, &t("w=400")).resized, (100, 50));
        assert_eq!(plan(100, 50, &t("w=400&we=0")).resized, (400, 200));
        assert_eq!(plan(100, 50, &t("w=400&h=400&fit=fill")).resized, (100, 50));
        let cover = plan(100, 50, &t("w=400&h=400&fit=cover"));
        assert_eq!(
            cover.resized,
            (50, 50),
            "crops to the box's aspect without enlarging"
        );
        let contain = plan(100, 50, &t("w=400&h=400&fit=contain"));
        assert!(
            contain.canvas.0 <= 100 && contain.canvas.1 <= 100,
            "{contain:?}"
        );
        assert_eq!(contain.resized, (100, 50));
        let contain = plan(100, 50, &t("w=400&h=400&fit=contain&we=0"));
        assert_eq!(
            (contain.resized, contain.canvas, contain.offset),
            ((400, 200), (400, 400), (0, 100))
        );
    }

    #[test]
    fn cover_crops_at_the_anchor() {
        let crop = |a: &str| plan(1600, 900, &t(&format!("w=300&h=300&fit=cover&a={a}"))).crop;
        assert_eq!(crop("center"), (350.0, 0.0, 900.0, 900.0));
        assert_eq!(crop("left"), (0.0, 0.0, 900.0, 900.0));
        assert_eq!(crop("right"), (700.0, 0.0, 900.0, 900.0));
        let tall = |a: &str| plan(900, 1600, &t(&format!("w=300&h=300&fit=cover&a={a}"))).crop;
        assert_eq!(tall("top"), (0.0, 0.0, 900.0, 900.0));
        assert_eq!(tall("bottom"), (0.0, 700.0, 900.0, 900.0));
        assert_eq!(tall("bottom-right"), (0.0, 700.0, 900.0, 900.0));
    }

    #[test]
    fn a_focal_point_is_centred_and_clamps_at_the_edges() {
        let crop = |src: (u32, u32), fp: (&str, &str)| {
            let q = format!("w=300&h=300&fit=cover&a=focal&fpx={}&fpy={}", fp.0, fp.1);
            plan(src.0, src.1, &t(&q)).crop
        };
        // Landscape 1600×900 → a 900×900 window sliding along x.
        assert_eq!(
            crop((1600, 900), ("0.5", "0.5")),
            (350.0, 0.0, 900.0, 900.0)
        );
        assert_eq!(
            crop((1600, 900), ("0.4", "0.9")),
            (190.0, 0.0, 900.0, 900.0)
        );
        assert_eq!(crop((1600, 900), ("0", "0")), (0.0, 0.0, 900.0, 900.0));
        assert_eq!(crop((1600, 900), ("1", "1")), (700.0, 0.0, 900.0, 900.0));
        assert_eq!(crop((1600, 900), ("0", "1")), (0.0, 0.0, 900.0, 900.0));
        assert_eq!(crop((1600, 900), ("1", "0")), (700.0, 0.0, 900.0, 900.0));
        // Portrait 900×1600 → a window sliding along y.
        assert_eq!(
            crop((900, 1600), ("0.9", "0.75")),
            (0.0, 700.0, 900.0, 900.0)
        );
        assert_eq!(crop((900, 1600), ("0.2", "0.3")), (0.0, 30.0, 900.0, 900.0));
        assert_eq!(crop((900, 1600), ("0", "0")), (0.0, 0.0, 900.0, 900.0));
        assert_eq!(crop((900, 1600), ("1", "1")), (0.0, 700.0, 900.0, 900.0));
        // A box of another aspect: both axes can be limited by the edges.
        let p = plan(1000, 1000, &t("w=100&h=50&fit=cover&a=focal&fpx=1&fpy=1"));
        assert_eq!(p.crop, (0.0, 500.0, 1000.0, 500.0));
        // Smart anchors are planned centred; the pixels move them later.
        for a in ["entropy", "attention"] {
            let q = format!("w=300&h=300&fit=cover&a={a}");
            assert_eq!(plan(1600, 900, &t(&q)).crop, (350.0, 0.0, 900.0, 900.0));
        }
    }

    #[test]
    fn no_box_is_identity_and_sizes_never_reach_zero() {
        assert!(plan(640, 480, &t("q=50")).is_identity(640, 480));
        assert_eq!(plan(10000, 1, &t("w=100")).resized, (100, 1));
    }

    #[test]
    fn no_side_over_the_output_limit_whatever_the_request() {
        // (source, query, limit) → canvas; the crop is always the whole source.
        let cases = [
            ((100, 70000), "q=80", 8192, (12, 8192)),
            ((9000, 600), "q=80", 8192, (8192, 546)),
            ((100, 70000), "w=50", 8192, (12, 8192)),
            ((8192, 1), "q=80", 8192, (8192, 1)),
            ((8193, 1), "q=80", 8192, (8192, 1)),
            ((1, 65536), "q=80", 70000, (1, 65536)),
            ((1, 70001), "q=80", 70000, (1, 70000)),
            ((1, 8192), "w=8192&h=1&fit=outside&we=0", 8192, (1, 8192)),
            ((1, 1), "w=8192&h=8192&fit=fill&we=0", 8192, (8192, 8192)),
        ];
        for ((sw, sh), q, max, canvas) in cases {
            let p = super::plan(sw, sh, &t(q), max);
            assert_eq!(p.canvas, canvas, "{sw}×{sh} {q} max {max}");
            assert_eq!(p.resized, canvas, "{sw}×{sh} {q}");
            assert_eq!(
                p.crop,
                (0.0, 0.0, f64::from(sw), f64::from(sh)),
                "never cropped"
            );
        }
    }

    #[test]
    fn a_bounded_letterbox_keeps_its_image_inside_the_canvas() {
        let p = super::plan(10, 40, &t("w=8000&h=8000&fit=contain&we=0"), 4000);
        assert_eq!(p.canvas, (4000, 4000));
        assert_eq!(p.resized, (1000, 4000));
        assert_eq!(p.offset, (1500, 0));
    }
}
