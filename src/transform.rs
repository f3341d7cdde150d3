//! The typed, canonical transform of SPEC §2.2: wsrv-style parameters → [`Transform`], every
//! option validated, and back to one canonical query string (`Display`), so that two spellings
//! of one variant are one cache key and one CDN URL. Pure; no I/O.

use crate::error::Error;
use std::{collections::BTreeMap, fmt, str::FromStr};

/// How the source is fitted into the `w`×`h` box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    #[default]
    Inside,
    Outside,
    Cover,
    Fill,
    Contain,
}

/// Where `cover` keeps the picture when it crops: a fixed position, a window chosen from the
/// pixels (`entropy`, `attention`), or a focal point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anchor {
    #[default]
    Center,
    Top,
    Bottom,
    Left,
    Right,
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
    /// The window with the highest Shannon entropy of luminance (the most detail).
    Entropy,
    /// The most salient window: luminance edges, saturation and skin tones.
    Attention,
    /// The point (`fpx`, `fpy`, in thousandths of the width and height) kept as near the
    /// centre as the crop allows.
    Focal {
        x: u16,
        y: u16,
    },
}

impl Anchor {
    /// `a=focal` before `fpx`/`fpy` are read: the centre.
    const FOCAL: Anchor = Anchor::Focal { x: 500, y: 500 };
}

/// Output formats imgrelay encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Avif,
    Gif,
}

/// `output=`: absent keeps the source's format, `auto` negotiates with `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Source,
    Auto,
    Fixed(Format),
}

impl FromStr for Output {
    type Err = ();
    /// `""` keeps the source's format, `auto` negotiates, else a format name.
    fn from_str(s: &str) -> Result<Output, ()> {
        match s {
            "" => Ok(Output::Source),
            "auto" => Ok(Output::Auto),
            other => other.parse().map(Output::Fixed),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Source => Ok(()),
            Output::Auto => f.write_str("auto"),
            Output::Fixed(format) => write!(f, "{format}"),
        }
    }
}

/// An RGBA colour from `bg=` (`fff`, `ffffff`, `ffffff80`, with or without `#`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgba(pub [u8; 4]);

/// A transform request with every parameter parsed and range-checked. Fields that were not
/// given stay `None`/default; [`Transform::fmt`] writes only those that were, canonically.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transform {
    pub w: Option<u32>,
    pub h: Option<u32>,
    /// Device pixel ratio in hundredths (100 = 1×).
    pub dpr: Option<u16>,
    pub fit: Option<Fit>,
    pub anchor: Option<Anchor>,
    pub quality: Option<u8>,
    pub output: Output,
    /// `we=0`: allow enlarging. Absent (or `we`, `we=1`): never enlarge.
    pub enlarge: bool,
    pub bg: Option<Rgba>,
    /// Gaussian sigma in tenths.
    pub blur: Option<u16>,
    /// Sharpening sigma in tenths.
    pub sharp: Option<u16>,
}

/// The parameter names that make a [`Transform`] (SPEC §2.2 without `url`, `default`, `s`).
pub const PARAMS: &[&str] = &[
    "w", "h", "dpr", "fit", "a", "fpx", "fpy", "q", "output", "we", "bg", "blur", "sharp",
];

fn bad(name: &str, why: &str) -> Error {
    Error::BadRequest(format!("parameter `{name}` {why}"))
}

fn int(name: &str, v: &str, range: std::ops::RangeInclusive<u32>) -> Result<u32, Error> {
    let n: u32 = v.parse().map_err(|_| bad(name, "must be a whole number"))?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(bad(
            name,
            &format!("must be within {}..={}", range.start(), range.end()),
        ))
    }
}

/// A decimal with at most `places` decimals, scaled to an integer (`1.5`, 1 place → 15).
fn fixed(
    name: &str,
    v: &str,
    places: u32,
    range: std::ops::RangeInclusive<f64>,
) -> Result<u16, Error> {
    let x: f64 = v.parse().map_err(|_| bad(name, "must be a number"))?;
    if !x.is_finite() || !range.contains(&x) {
        return Err(bad(
            name,
            &format!("must be within {}..={}", range.start(), range.end()),
        ));
    }
    let scale = 10f64.powi(places as i32);
    Ok((x * scale).round() as u16)
}

fn show_fixed(f: &mut fmt::Formatter<'_>, n: u16, places: u32) -> fmt::Result {
    let scale = 10u16.pow(places);
    let (whole, frac) = (n / scale, n % scale);
    if frac == 0 {
        write!(f, "{whole}")
    } else {
        let digits = format!("{frac:0width$}", width = places as usize);
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl Transform {
    /// Parses the transform parameters (everything but `url`, `default`, `s`).
    /// `max_px` is `limits.max_output_px`.
    pub fn from_params(params: &BTreeMap<String, String>, max_px: u32) -> Result<Transform, Error> {
        let mut t = Transform::default();
        let (mut fpx, mut fpy) = (None, None);
        for (name, v) in params {
            let v = v.as_str();
            match name.as_str() {
                "w" => t.w = Some(int(name, v, 1..=max_px)?),
                "h" => t.h = Some(int(name, v, 1..=max_px)?),
                "dpr" => t.dpr = Some(fixed(name, v, 2, 1.0..=8.0)?),
                "fit" => {
                    t.fit = Some(v.parse().map_err(|_| {
                        bad(name, "must be inside, outside, cover, fill or contain")
                    })?)
                }
                "a" => {
                    t.anchor = Some(v.parse().map_err(|_| {
                        bad(
                            name,
                            "must be a position such as center, top or bottom-left, \
                             or entropy, attention or focal",
                        )
                    })?)
                }
                "fpx" => fpx = Some(fixed(name, v, 3, 0.0..=1.0)?),
                "fpy" => fpy = Some(fixed(name, v, 3, 0.0..=1.0)?),
                "q" => t.quality = Some(int(name, v, 1..=100)? as u8),
                "output" => {
                    t.output = match v {
                        "" => Err(()),
                        v => v.parse(),
                    }
                    .map_err(|_| bad(name, "must be jpg, png, webp, avif, gif or auto"))?
                }
                "we" => {
                    t.enlarge = match v {
                        "" | "1" | "true" => false,
                        "0" | "false" => true,
                        _ => return Err(bad(name, "must be 0 or 1")),
                    }
                }
                "bg" => {
                    t.bg =
                        Some(v.parse().map_err(|_| {
                            bad(name, "must be a hex colour such as fff or ffffff80")
                        })?)
                }
                "blur" => {
                    t.blur = Some(if v.is_empty() {
                        10
                    } else {
                        fixed(name, v, 1, 0.3..=100.0)?
                    })
                }
                "sharp" => {
                    t.sharp = Some(if v.is_empty() {
                        10
                    } else {
                        fixed(name, v, 1, 0.3..=100.0)?
                    })
                }
                _ => {} // url, default, s: not transform parameters
            }
        }
        match &mut t.anchor {
            Some(Anchor::Focal { x, y }) => {
                *x = fpx.unwrap_or(*x);
                *y = fpy.unwrap_or(*y);
            }
            _ => {
                if let Some(name) = [("fpx", fpx), ("fpy", fpy)]
                    .into_iter()
                    .find_map(|(name, v)| v.map(|_| name))
                {
                    return Err(bad(name, "is only allowed with `a=focal`"));
                }
            }
        }
        if let Some(dpr) = t.dpr {
            for (name, side) in [("w", t.w), ("h", t.h)] {
                if side.is_some_and(|s| u64::from(s) * u64::from(dpr) > u64::from(max_px) * 100) {
                    return Err(bad(name, &format!("times dpr exceeds {max_px} pixels")));
                }
            }
        }
        Ok(t)
    }

    /// A transform written as a query string of its parameters only (`w=640&fit=cover`), as
    /// configuration holds one (`rewrite.thumbnail`): unknown, repeated and non-transform
    /// names (`url`, `s`) are errors, like in a request.
    pub fn from_query(query: &str, max_px: u32) -> Result<Transform, Error> {
        let mut params = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if !PARAMS.contains(&name.as_ref()) {
                return Err(Error::BadRequest(format!("unknown parameter `{name}`")));
            }
            if params
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(Error::BadRequest(format!("duplicate parameter `{name}`")));
            }
        }
        Transform::from_params(&params, max_px)
    }

    /// The target box in device pixels (`w`, `h` times `dpr`).
    pub fn target_box(&self) -> (Option<u32>, Option<u32>) {
        let dpr = u64::from(self.dpr.unwrap_or(100));
        let scale = |v: u32| ((u64::from(v) * dpr + 50) / 100).max(1) as u32;
        (self.w.map(scale), self.h.map(scale))
    }
}

impl fmt::Display for Transform {
    /// Canonical order and spelling; only parameters that were given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut put = |f: &mut fmt::Formatter<'_>, name: &str| -> fmt::Result {
            let r = write!(f, "{sep}{name}=");
            sep = "&";
            r
        };
        if let Some(w) = self.w {
            put(f, "w")?;
            write!(f, "{w}")?;
        }
        if let Some(h) = self.h {
            put(f, "h")?;
            write!(f, "{h}")?;
        }
        if let Some(d) = self.dpr {
            put(f, "dpr")?;
            show_fixed(f, d, 2)?;
        }
        if let Some(fit) = self.fit {
            put(f, "fit")?;
            write!(f, "{fit}")?;
        }
        if let Some(a) = self.anchor {
            put(f, "a")?;
            write!(f, "{a}")?;
            if let Anchor::Focal { x, y } = a {
                put(f, "fpx")?;
                show_fixed(f, x, 3)?;
                put(f, "fpy")?;
                show_fixed(f, y, 3)?;
            }
        }
        if let Some(q) = self.quality {
            put(f, "q")?;
            write!(f, "{q}")?;
        }
        match self.output {
            Output::Source => {}
            Output::Auto => {
                put(f, "output")?;
                f.write_str("auto")?;
            }
            Output::Fixed(fmt_) => {
                put(f, "output")?;
                write!(f, "{fmt_}")?;
            }
        }
        if self.enlarge {
            put(f, "we")?;
            f.write_str("0")?;
        }
        if let Some(Rgba([r, g, b, a])) = self.bg {
            put(f, "bg")?;
            write!(f, "{r:02x}{g:02x}{b:02x}")?;
            if a != 255 {
                write!(f, "{a:02x}")?;
            }
        }
        if let Some(s) = self.blur {
            put(f, "blur")?;
            show_fixed(f, s, 1)?;
        }
        if let Some(s) = self.sharp {
            put(f, "sharp")?;
            show_fixed(f, s, 1)?;
        }
        Ok(())
    }
}

macro_rules! keyword_enum {
    ($ty:ty { $($variant:path => $($word:literal)|+),+ $(,)? }) => {
        impl FromStr for $ty {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s.to_ascii_lowercase().as_str() {
                    $($($word)|+ => Ok($variant),)+
                    _ => Err(()),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // The first spelling is the canonical one.
                let words: &[&str] = match self { $($variant => &[$($word),+],)+ };
                f.write_str(words[0])
            }
        }
    };
}

keyword_enum!(Fit {
    Fit::Inside => "inside",
    Fit::Outside => "outside",
    Fit::Cover => "cover",
    Fit::Fill => "fill",
    Fit::Contain => "contain",
});

/// `a=` words; the first spelling of each anchor is the canonical one.
const ANCHOR_WORDS: &[(&str, Anchor)] = &[
    ("center", Anchor::Center),
    ("centre", Anchor::Center),
    ("top", Anchor::Top),
    ("bottom", Anchor::Bottom),
    ("left", Anchor::Left),
    ("right", Anchor::Right),
    ("top-left", Anchor::TopLeft),
    ("top-right", Anchor::TopRight),
    ("bottom-left", Anchor::BottomLeft),
    ("bottom-right", Anchor::BottomRight),
    ("entropy", Anchor::Entropy),
    ("attention", Anchor::Attention),
    ("focal", Anchor::FOCAL),
];

impl FromStr for Anchor {
    type Err = ();
    fn from_str(s: &str) -> Result<Anchor, ()> {
        ANCHOR_WORDS
            .iter()
            .find(|(word, _)| word.eq_ignore_ascii_case(s))
            .map(|&(_, a)| a)
            .ok_or(())
    }
}

impl fmt::Display for Anchor {
    /// The keyword only: a focal point's coordinates are parameters of their own.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = match self {
            Anchor::Focal { .. } => Anchor::FOCAL,
            a => *a,
        };
        let word = ANCHOR_WORDS
            .iter()
            .find(|(_, a)| *a == key)
            .map(|(w, _)| *w);
        f.write_str(word.unwrap_or("center"))
    }
}

keyword_enum!(Format {
    Format::Jpeg => "jpg" | "jpeg",
    Format::Png => "png",
    Format::Webp => "webp",
    Format::Avif => "avif",
    Format::Gif => "gif",
});

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Avif => "image/avif",
            Format::Gif => "image/gif",
        }
    }

    pub fn has_alpha(self) -> bool {
        !matches!(self, Format::Jpeg)
    }

    pub fn can_animate(self) -> bool {
        matches!(self, Format::Gif | Format::Webp)
    }

    /// The longest side the format can store, and the reason a client reads when the result
    /// would be longer: JPEG and GIF store 16-bit sides, WebP 14-bit ones, PNG 31-bit ones;
    /// AV1 allows 65536, but rav1e encodes at most 65535.
    pub fn max_side(self) -> (u32, &'static str) {
        match self {
            Format::Jpeg => (
                65535,
                "the result is too large for JPEG (65535 px a side at most)",
            ),
            Format::Gif => (
                65535,
                "the result is too large for GIF (65535 px a side at most)",
            ),
            Format::Webp => (
                16383,
                "the result is too large for WebP (16383 px a side at most)",
            ),
            Format::Avif => (
                65535,
                "the result is too large for AVIF (65535 px a side at most)",
            ),
            Format::Png => (
                i32::MAX.unsigned_abs(),
                "the result is too large for PNG (2147483647 px a side at most)",
            ),
        }
    }

    /// `Ok` when a `w`×`h` result fits the format, else the 422 that says why.
    pub fn check_size(self, w: u32, h: u32) -> Result<(), Error> {
        let (max, why) = self.max_side();
        if w > max || h > max {
            return Err(Error::OutputTooLarge(why));
        }
        Ok(())
    }
}

impl FromStr for Rgba {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let hex = s.trim_start_matches('#');
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| ());
        let nib = |i: usize| {
            u8::from_str_radix(&hex[i..=i], 16)
                .map(|n| n * 17)
                .map_err(|_| ())
        };
        Ok(Rgba(match hex.len() {
            3 => [nib(0)?, nib(1)?, nib(2)?, 255],
            4 => [nib(0)?, nib(1)?, nib(2)?, nib(3)?],
            6 => [byte(0)?, byte(2)?, byte(4)?, 255],
            8 => [byte(0)?, byte(2)?, byte(4)?, byte(6)?],
            _ => return Err(()),
        }))
    }
}

/// Reduces `Accept` to one of three buckets for `output=auto`: AVIF, WebP, or neither (`None`:
/// keep the source's format). The raw header is never used beyond this.
pub fn accept_bucket(accept: Option<&str>) -> Option<Format> {
    let accepts = |mime: &str| {
        accept.is_some_and(|a| {
            a.split(',').any(|part| {
                let mut it = part.split(';');
                let ty = it.next().unwrap_or_default().trim();
                let refused = it.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                ty.eq_ignore_ascii_case(mime) && !refused
            })
        })
    };
    if accepts("image/avif") {
        Some(Format::Avif)
    } else if accepts("image/webp") {
        Some(Format::Webp)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
