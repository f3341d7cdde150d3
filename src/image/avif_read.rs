//! AVIF sources, as MIAF/AVIF (ISO/IEC 23000-22) lays them out: the container (zenavif-parse
//! reads the ISOBMFF boxes) → the picture to show, which is the primary item (one AV1 item, or a
//! `grid` of them) or else the first sample of an image sequence → AV1 decode (`avif_ffi`,
//! rav1d) → 8-bit RGBA (`avif_yuv`) → `clap`, `irot`, `imir` applied in that order (as MIAF
//! orders transformative properties), with the alpha item (or the sequence's alpha track) and `prem`.
//!
//! Sizes come from what the decoder will allocate, never from `ispe`: each coded item's AV1
//! sequence header declares the largest frame it holds, and the decoder is told to refuse a
//! frame over that (its `frame_size_limit`), so no container size can buy a larger allocation
//! than the job was charged. A grid's canvas is its `grid` box's output size; every tile must
//! decode to one size. A layered (progressive) item shows its last, best layer.
//!
//! A colour profile (`colr` ICC) is handed on for conversion like any other source's; a `colr`
//! nclx decides matrix and range over the sequence header, and primaries other than BT.709
//! become a profile (`color::cicp_profile`) converted the same way. An HDR transfer function is
//! not tone-mapped.

use super::avif_ffi::{self, Pick};
use super::avif_yuv::{self, Signal};
use super::{color, Limits, Pixels};
use crate::error::Error;
use ::image::{DynamicImage, RgbaImage};
use std::borrow::Cow;
use zenavif_parse::{AvifParser, CleanAperture, ColorInformation, DecodeConfig, Unstoppable};

/// The container parser's refusal, its reason kept for the log.
fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Decode {
        detail: format!("AVIF container: {e}"),
    }
}

/// A crop rectangle (x, y, width, height) in the decoded picture.
type Rect = (u32, u32, u32, u32);

/// What the container says, read before anything is decoded.
struct Container<'a> {
    parser: AvifParser<'a>,
}

/// The picture to show, as coded items: each borrows the container's data.
struct Picture<'p> {
    /// The coded items of the colour, each with its place on the canvas.
    colour: Tiles<'p>,
    /// The alpha plane's coded data, placed at the origin.
    alpha: Option<Cow<'p, [u8]>>,
    /// The canvas the coded items are decoded onto.
    canvas: (u32, u32),
    /// The largest frame any one coded item's sequence header allows, in pixels.
    frame: u64,
    pick: Pick,
}

/// Coded items, each with its place (x, y) on the canvas.
type Tiles<'p> = Vec<(Cow<'p, [u8]>, (u32, u32))>;

impl<'a> Container<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Container<'a>, Error> {
        // Lenient: a transformative property not marked essential is still applied, as
        // libavif applies it.
        let config = DecodeConfig::default().lenient(true);
        let parser =
            AvifParser::from_bytes_with_config(bytes, &config, &Unstoppable).map_err(corrupt)?;
        Ok(Container { parser })
    }

    /// The primary item (one AV1 item or a grid of them), else a sequence's first sample.
    fn picture(&self) -> Result<Picture<'_>, Error> {
        let p = &self.parser;
        let item = p.primary_data().ok().filter(|d| !d.is_empty());
        let (colour, alpha, canvas) = if let Some(grid) = p.grid_config() {
            if p.alpha_data().is_some() {
                return Err(Error::Undecodable("AVIF grids with alpha are not read"));
            }
            let (tiles, canvas) = grid_layout(p, grid)?;
            (tiles, None, canvas)
        } else if let Some(data) = item {
            let alpha = p.alpha_data().transpose().map_err(corrupt)?;
            let size = coded_size(&data)?;
            (vec![(data, (0, 0))], alpha, size)
        } else {
            let first = p
                .frame(0)
                .map_err(|_| Error::Undecodable("the AVIF file holds no picture"))?;
            let size = coded_size(&first.data)?;
            (vec![(first.data, (0, 0))], first.alpha_data, size)
        };
        let mut frame = 0;
        for data in colour.iter().map(|(d, _)| d).chain(alpha.as_ref()) {
            let (w, h) = coded_size(data)?;
            frame = frame.max(u64::from(w) * u64::from(h));
        }
        let layered = p.layer_selector().is_some() || p.layered_image_indexing().is_some();
        Ok(Picture {
            colour,
            alpha,
            canvas,
            frame,
            pick: if layered { Pick::Last } else { Pick::First },
        })
    }

    fn quarter_turn(&self) -> bool {
        self.parser
            .rotation()
            .is_some_and(|r| r.angle == 90 || r.angle == 270)
    }

    /// Width and height as shown: the canvas cropped by `clap`, turned by `irot`.
    fn dimensions(&self, canvas: (u32, u32)) -> Result<(u32, u32), Error> {
        let (w, h) = match self.parser.clean_aperture() {
            Some(c) => {
                let (_, _, w, h) = clean_aperture(c, canvas)?;
                (w, h)
            }
            None => canvas,
        };
        Ok(if self.quarter_turn() { (h, w) } else { (w, h) })
    }

    /// Matrix and range from a `colr` nclx, which outranks the sequence header.
    fn signal(&self) -> Option<Signal> {
        match self.parser.color_info()? {
            ColorInformation::Nclx {
                matrix_coefficients,
                full_range,
                ..
            } => Some(Signal {
                matrix: u32::from(*matrix_coefficients),
                full_range: *full_range,
            }),
            ColorInformation::IccProfile(_) => None,
        }
    }

    /// The colour profile: `colr` ICC as it is, or one made for `colr` nclx primaries and
    /// transfer that are not sRGB's.
    fn icc(&self) -> Option<Vec<u8>> {
        match self.parser.color_info()? {
            ColorInformation::IccProfile(icc) => Some(icc.clone()),
            ColorInformation::Nclx {
                color_primaries,
                transfer_characteristics,
                ..
            } => color::cicp_profile(*color_primaries, *transfer_characteristics),
        }
    }
}

/// The largest frame the sequence headers in `data` allow.
fn coded_size(data: &[u8]) -> Result<(u32, u32), Error> {
    avif_ffi::largest_frame(data).ok_or(Error::Undecodable(
        "the AVIF item has no readable AV1 sequence header",
    ))
}

/// A grid's tiles, each placed on its row and column, and the canvas they fill: the `grid`
/// box's output size, which may crop the last row and column of tiles and no more (MIAF).
fn grid_layout<'p>(
    p: &'p AvifParser<'_>,
    grid: &zenavif_parse::GridConfig,
) -> Result<(Tiles<'p>, (u32, u32)), Error> {
    let bad = Error::Undecodable("the AVIF grid does not fit its tiles");
    let (rows, cols) = (u32::from(grid.rows), u32::from(grid.columns));
    if rows == 0 || cols == 0 || p.grid_tile_count() != (rows * cols) as usize {
        return Err(bad);
    }
    let mut tiles = Vec::with_capacity(p.grid_tile_count());
    let mut size = None;
    for i in 0..rows * cols {
        let data = p.tile_data(i as usize).map_err(corrupt)?;
        let this = coded_size(&data)?;
        if *size.get_or_insert(this) != this {
            return Err(Error::Undecodable("the AVIF grid's tiles differ in size"));
        }
        let (tw, th) = this;
        let at = (
            (i % cols).checked_mul(tw).ok_or(bad.clone())?,
            (i / cols).checked_mul(th).ok_or(bad.clone())?,
        );
        tiles.push((data, at));
    }
    let (tw, th) = size.ok_or(bad.clone())?;
    let full = (
        u64::from(cols) * u64::from(tw),
        u64::from(rows) * u64::from(th),
    );
    let (w, h) = match (grid.output_width, grid.output_height) {
        (0, _) | (_, 0) => full,
        (w, h) => (u64::from(w), u64::from(h)),
    };
    let fits = |out: u64, whole: u64, tile: u32| out <= whole && out > whole - u64::from(tile);
    if !fits(w, full.0, tw) || !fits(h, full.1, th) {
        return Err(bad);
    }
    let canvas = (
        u32::try_from(w).map_err(|_| bad.clone())?,
        u32::try_from(h).map_err(|_| bad)?,
    );
    Ok((tiles, canvas))
}

/// The rectangle a `clap` keeps of a `w`×`h` picture: centred on the picture's centre plus the
/// offsets, in whole pixels, inside the picture (how libavif converts it for its callers).
fn clean_aperture(c: &CleanAperture, (w, h): (u32, u32)) -> Result<Rect, Error> {
    let bad = Error::Undecodable("the AVIF clean aperture is not a crop of the image");
    // One side: its length n/d (a whole number) and its start, (size − length)/2 + off_n/off_d,
    // worked in units of 1/(2·off_d) so every step is exact.
    let side = |n: u32, d: u32, off_n: i32, off_d: u32, size: u32| -> Option<(u32, u32)> {
        if d == 0 || off_d == 0 || !n.is_multiple_of(d) {
            return None;
        }
        let len = i64::from(n / d);
        let (size, off_n, off_d) = (i64::from(size), i64::from(off_n), i64::from(off_d));
        let twice = (size - len) * off_d + 2 * off_n;
        if twice % (2 * off_d) != 0 {
            return None;
        }
        let start = twice / (2 * off_d);
        if len == 0 || start < 0 || start + len > size {
            return None;
        }
        Some((u32::try_from(start).ok()?, u32::try_from(len).ok()?))
    };
    let (x, cw) = side(c.width_n, c.width_d, c.horiz_off_n, c.horiz_off_d, w).ok_or(bad.clone())?;
    let (y, ch) = side(c.height_n, c.height_d, c.vert_off_n, c.vert_off_d, h).ok_or(bad)?;
    Ok((x, y, cw, ch))
}

/// `(width, height)` as shown, from the header alone.
pub fn probe(bytes: &[u8]) -> Result<(u32, u32), Error> {
    let c = Container::parse(bytes)?;
    let pic = c.picture()?;
    c.dimensions(pic.canvas)
}

/// What decoding holds beside the shown picture: the canvas the coded items are decoded onto
/// (before `clap` crops it) and the largest single frame the decoder allocates, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    pub canvas: u64,
    pub frame: u64,
}

/// The [`Footprint`] from the header alone; `None` for a file [`probe`] refuses.
pub fn footprint(bytes: &[u8]) -> Option<Footprint> {
    let c = Container::parse(bytes).ok()?;
    let pic = c.picture().ok()?;
    Some(Footprint {
        canvas: u64::from(pic.canvas.0) * u64::from(pic.canvas.1),
        frame: pic.frame,
    })
}

fn check_pixels(w: u32, h: u32, limits: &Limits) -> Result<(), Error> {
    if u64::from(w) * u64::from(h) > limits.max_source_pixels || w == 0 || h == 0 {
        return Err(Error::TooManyPixels);
    }
    Ok(())
}

/// Decodes the picture to show, oriented; its ICC profile, if any, comes back unapplied.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<(Pixels, Option<Vec<u8>>), Error> {
    let c = Container::parse(bytes)?;
    let pic = c.picture()?;
    let (cw, ch) = pic.canvas;
    check_pixels(cw, ch, limits)?;
    // The decoder refuses any frame larger than the sequence headers declared (and the job
    // was charged for): the backstop against a header that lies to the decoder itself.
    let limit = pic.frame.min(limits.max_source_pixels);
    let refused = Error::Undecodable;
    let declared = c.signal();
    let mut canvas = RgbaImage::new(cw, ch);
    let mut tile = None;
    for (data, at) in &pic.colour {
        avif_ffi::decode(data, limit, pic.pick, |f| {
            // Tiles were checked by their headers; the frames must bear that out.
            if *tile.get_or_insert((f.width, f.height)) != (f.width, f.height) {
                return Err("the AVIF grid's tiles differ in size");
            }
            avif_yuv::put_colour(f, Signal::of(f, declared), &mut canvas, *at);
            Ok(())
        })
        .map_err(refused)?;
    }
    if let (1, Some((fw, fh))) = (pic.colour.len(), tile) {
        // A frame smaller than its sequence header's largest: the picture is the frame.
        if (fw, fh) != (cw as usize, ch as usize) {
            canvas = ::image::imageops::crop_imm(&canvas, 0, 0, fw as u32, fh as u32).to_image();
        }
    }
    let has_alpha = pic.alpha.is_some();
    if let Some(alpha) = &pic.alpha {
        avif_ffi::decode(alpha, limit, pic.pick, |f| {
            if (f.width as u32, f.height as u32) != canvas.dimensions() {
                return Err("the alpha plane's size differs from the image's");
            }
            avif_yuv::put_alpha(f, Signal::of(f, None), &mut canvas, (0, 0));
            Ok(())
        })
        .map_err(refused)?;
        if c.parser.premultiplied_alpha() {
            avif_yuv::unpremultiply(&mut canvas);
        }
    }
    if let Some(clap) = c.parser.clean_aperture() {
        let (x, y, w, h) = clean_aperture(clap, canvas.dimensions())?;
        canvas = ::image::imageops::crop_imm(&canvas, x, y, w, h).to_image();
    }
    let mut img = DynamicImage::ImageRgba8(canvas);
    img = match c.parser.rotation().map(|r| r.angle) {
        // `irot` turns anticlockwise; `image` turns clockwise.
        Some(90) => img.rotate270(),
        Some(180) => img.rotate180(),
        Some(270) => img.rotate90(),
        _ => img,
    };
    // `imir` axis 0 exchanges top and bottom, axis 1 left and right (as libavif reads it).
    img = match c.parser.mirror().map(|m| m.axis) {
        Some(0) => img.flipv(),
        Some(_) => img.fliph(),
        None => img,
    };
    if !has_alpha {
        img = DynamicImage::ImageRgb8(img.into_rgb8());
    }
    check_pixels(img.width(), img.height(), limits)?;
    Ok((Pixels::from_dynamic(img), c.icc()))
}

#[cfg(test)]
#[path = "avif_read_tests.rs"]
mod tests;
