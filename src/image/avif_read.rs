//! AVIF sources, as MIAF/AVIF (ISO/IEC 23000-22) lays them out: the container (zenavif-parse
//! reads the ISOBMFF boxes) → the picture to show, which is the primary item (one AV1 item, or a
//! `grid` of them) or else the first sample of an image sequence → AV1 decode (`avif_ffi`,
//! rav1d) → 8-bit RGBA (`avif_yuv`) → `clap`, `irot`, `imir` applied in that order (MIAF
//! 7.3.6.7), with the alpha item (or the sequence's alpha track) and `prem`.
//!
//! Sizes come from what the decoder will allocate, never from `ispe`: each coded item's AV1
//! sequence header declares the largest frame it holds, and the decoder is told to refuse a
//! frame over that (its `frame_size_limit`), so no container size can buy a larger allocation
//! than the job was charged. A grid's canvas is its `grid` box's output size; every tile must
//! decode to one size. A layered (progressive) item shows its last, best layer.
//!
//! A colour profile (`colr` ICC) is handed on for conversion like any other source's; a `colr`
//! nclx decides matrix and range over the sequence header. An HDR transfer function is not
//! tone-mapped.

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
mod tests {
    use super::*;
    use crate::image::avif;

    /// `w`×`h` RGB(A): red on the left half, blue on the right, green along the top rows.
    fn halves(w: usize, h: usize, alpha: Option<u8>) -> Vec<u8> {
        let mut px = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let c = if y < h / 4 {
                    [30, 200, 40]
                } else if x < w / 2 {
                    [220, 30, 40]
                } else {
                    [30, 40, 220]
                };
                px.extend_from_slice(&c);
                px.extend(alpha);
            }
        }
        px
    }

    fn at(px: &Pixels, x: u32, y: u32) -> &[u8] {
        let c = usize::from(px.channels);
        &px.data[(y as usize * px.width as usize + x as usize) * c..][..c]
    }

    fn near(got: &[u8], want: [u8; 3]) -> bool {
        got.iter().zip(want).all(|(&g, w)| g.abs_diff(w) <= 24)
    }

    /// The child boxes (type, whole box) of `content`.
    fn children(content: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        let mut i = 0;
        while i + 8 <= content.len() {
            let size = u32::from_be_bytes(content[i..i + 4].try_into().unwrap()) as usize;
            out.push((
                content[i + 4..i + 8].try_into().unwrap(),
                &content[i..i + size],
            ));
            i += size;
        }
        out
    }

    fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    fn find<'a>(boxes: &[([u8; 4], &'a [u8])], kind: &[u8; 4]) -> &'a [u8] {
        boxes.iter().find(|(t, _)| t == kind).unwrap().1
    }

    /// An AVIF of `w`×`h` (no alpha) built around our encoder's AV1 data and item
    /// properties, with `extra` properties (`irot`, `imir`) added to the primary item.
    fn with_properties(w: usize, h: usize, extra: &[Vec<u8>]) -> Vec<u8> {
        let file = avif::encode(&halves(w, h, None), 3, w, h, 95).unwrap();
        let top = children(&file);
        let meta = children(&find(&top, b"meta")[12..]);
        let ipco = children(&find(&children(&find(&meta, b"iprp")[8..]), b"ipco")[8..]);
        let av1 = &find(&top, b"mdat")[8..];
        let mut props: Vec<u8> = ipco.iter().flat_map(|(_, b)| b.to_vec()).collect();
        extra.iter().for_each(|p| props.extend_from_slice(p));
        // ipma: version 0, one item (1), every property, `ispe` the only inessential one.
        let n = (ipco.len() + extra.len()) as u8;
        let mut ipma = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 1, n];
        ipma.extend((1..=n).map(|i| if i == 1 { i } else { 0x80 | i }));
        let iprp = bx(b"iprp", &[bx(b"ipco", &props), bx(b"ipma", &ipma)].concat());
        let hdlr = bx(b"hdlr", &[&[0u8; 8][..], b"pict", &[0; 13]].concat());
        let pitm = bx(b"pitm", &[0, 0, 0, 0, 0, 1]);
        let infe = bx(
            b"infe",
            &[&[2, 0, 0, 0, 0, 1, 0, 0][..], b"av01", &[0]].concat(),
        );
        let iinf = bx(b"iinf", &[&[0, 0, 0, 0, 0, 1][..], &infe].concat());
        let ftyp = bx(b"ftyp", b"avif\0\0\0\0mif1avifmiaf");
        // iloc: version 0, 4-byte offsets and lengths, one item with one extent in the mdat.
        let iloc_len = 8 + 4 + 2 + 2 + 2 + 2 + 2 + 4 + 4;
        let meta_len = 12 + hdlr.len() + pitm.len() + iloc_len + iinf.len() + iprp.len();
        let offset = (ftyp.len() + meta_len + 8) as u32;
        let mut iloc = vec![0, 0, 0, 0, 0x44, 0, 0, 1, 0, 1, 0, 0, 0, 1];
        iloc.extend_from_slice(&offset.to_be_bytes());
        iloc.extend_from_slice(&(av1.len() as u32).to_be_bytes());
        let iloc = bx(b"iloc", &iloc);
        let meta = [&[0u8; 4][..], &hdlr, &pitm, &iloc, &iinf, &iprp].concat();
        [ftyp, bx(b"meta", &meta), bx(b"mdat", av1)].concat()
    }

    /// A 10-bit 4:2:0 AVIF of `w`×`h` (even): red on the left half, blue on the right.
    fn ten_bit(w: usize, h: usize) -> Vec<u8> {
        use rav1e::prelude::*;
        let ycc = |[r, g, b]: [f32; 3]| {
            let y = 0.299 * r + 0.587 * g + 0.114 * b;
            let q = |v: f32, mid: f32| (v / 255.0 * 1023.0 + mid).round() as u16;
            [
                q(y, 0.0),
                q((b - y) / 1.772, 512.0),
                q((r - y) / 1.402, 512.0),
            ]
        };
        let (red, blue) = (ycc([220.0, 30.0, 40.0]), ycc([30.0, 40.0, 220.0]));
        let plane = |i: usize, pw: usize, ph: usize| -> Vec<u8> {
            (0..pw * ph)
                .flat_map(|k| if k % pw < pw / 2 { red[i] } else { blue[i] }.to_le_bytes())
                .collect()
        };
        let enc = EncoderConfig {
            width: w,
            height: h,
            bit_depth: 10,
            chroma_sampling: ChromaSampling::Cs420,
            pixel_range: PixelRange::Full,
            color_description: Some(ColorDescription {
                color_primaries: ColorPrimaries::BT709,
                transfer_characteristics: TransferCharacteristics::SRGB,
                matrix_coefficients: MatrixCoefficients::BT601,
            }),
            still_picture: true,
            quantizer: 20,
            ..EncoderConfig::with_speed_preset(10)
        };
        let mut ctx: Context<u16> = Config::new()
            .with_encoder_config(enc)
            .with_threads(1)
            .new_context()
            .unwrap();
        let mut frame = ctx.new_frame();
        for (i, p) in frame.planes.iter_mut().enumerate() {
            let (pw, ph) = if i == 0 { (w, h) } else { (w / 2, h / 2) };
            p.copy_from_raw_u8(&plane(i, pw, ph), pw * 2, 2);
        }
        ctx.send_frame(frame).unwrap();
        ctx.flush();
        let mut av1 = Vec::new();
        loop {
            match ctx.receive_packet() {
                Ok(packet) => av1.extend(packet.data),
                Err(EncoderStatus::Encoded) => {}
                Err(EncoderStatus::LimitReached) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let mut out = Vec::new();
        avif_serialize::Aviffy::new()
            .set_chroma_subsampling((true, true))
            .set_full_color_range(true)
            .set_matrix_coefficients(avif_serialize::constants::MatrixCoefficients::Bt601)
            .write(&mut out, &av1, None, w as u32, h as u32, 10)
            .unwrap();
        out
    }

    #[test]
    fn a_10_bit_still_is_scaled_to_8_bits() {
        let file = ten_bit(64, 32);
        let (px, _) = decode(&file, &Limits::default()).unwrap();
        assert_eq!((px.width, px.height, px.channels), (64, 32, 3));
        assert!(near(at(&px, 4, 16), [220, 30, 40]), "{:?}", at(&px, 4, 16));
        assert!(
            near(at(&px, 60, 16), [30, 40, 220]),
            "{:?}",
            at(&px, 60, 16)
        );
    }

    #[test]
    fn an_8_bit_still_decodes_to_its_colours() {
        let file = avif::encode(&halves(64, 48, None), 3, 64, 48, 95).unwrap();
        assert_eq!(probe(&file).unwrap(), (64, 48));
        let (px, _) = decode(&file, &Limits::default()).unwrap();
        assert_eq!((px.width, px.height, px.channels), (64, 48, 3));
        assert!(near(at(&px, 5, 40), [220, 30, 40]), "{:?}", at(&px, 5, 40));
        assert!(
            near(at(&px, 60, 40), [30, 40, 220]),
            "{:?}",
            at(&px, 60, 40)
        );
        assert!(near(at(&px, 32, 2), [30, 200, 40]), "{:?}", at(&px, 32, 2));
    }

    #[test]
    fn alpha_is_decoded_straight() {
        let file = avif::encode(&halves(32, 32, Some(128)), 4, 32, 32, 95).unwrap();
        let (px, _) = decode(&file, &Limits::default()).unwrap();
        assert_eq!(px.channels, 4);
        let p = at(&px, 4, 20);
        assert!(
            p[3].abs_diff(128) <= 4 && near(&p[..3], [220, 30, 40]),
            "{p:?}"
        );
    }

    #[test]
    fn irot_and_imir_are_applied() {
        let irot = |angle: u8| bx(b"irot", &[angle]);
        let imir = |axis: u8| bx(b"imir", &[axis]);
        // The source: 64×32, green band on top, red left, blue right.
        let (red, blue, green) = ([220, 30, 40], [30, 40, 220], [30, 200, 40]);
        let plain = with_properties(64, 32, &[]);
        let (px, _) = decode(&plain, &Limits::default()).unwrap();
        assert!(near(at(&px, 2, 30), red) && near(at(&px, 30, 1), green));
        // 90° anticlockwise: 32×64, the top band on the left, red at the bottom.
        let turned = with_properties(64, 32, &[irot(1)]);
        assert_eq!(probe(&turned).unwrap(), (32, 64));
        let (px, _) = decode(&turned, &Limits::default()).unwrap();
        assert_eq!((px.width, px.height), (32, 64));
        assert!(near(at(&px, 1, 32), green), "{:?}", at(&px, 1, 32));
        assert!(near(at(&px, 30, 60), red), "{:?}", at(&px, 30, 60));
        assert!(near(at(&px, 30, 4), blue), "{:?}", at(&px, 30, 4));
        // 180°: the band at the bottom, red on the right.
        let (px, _) = decode(&with_properties(64, 32, &[irot(2)]), &Limits::default()).unwrap();
        assert!(near(at(&px, 32, 30), green) && near(at(&px, 62, 2), red));
        // axis 1: left and right exchanged; axis 0: top and bottom.
        let (px, _) = decode(&with_properties(64, 32, &[imir(1)]), &Limits::default()).unwrap();
        assert!(near(at(&px, 62, 30), red) && near(at(&px, 30, 1), green));
        let (px, _) = decode(&with_properties(64, 32, &[imir(0)]), &Limits::default()).unwrap();
        assert!(near(at(&px, 2, 1), red) && near(at(&px, 30, 30), green));
        // Rotation first, then the mirror: 90° anticlockwise, then left and right exchanged.
        let both = with_properties(64, 32, &[irot(1), imir(1)]);
        let (px, _) = decode(&both, &Limits::default()).unwrap();
        assert!(near(at(&px, 30, 32), green) && near(at(&px, 1, 60), red));
    }

    #[test]
    fn an_image_sequence_shows_its_first_frame() {
        let file = crate::image::fixture("anim.avif");
        // The same file with its `meta` box blanked out (`free`, same size, so every offset
        // holds), and no brand that promises one (`avif`, `mif1`): a sequence without a
        // primary item.
        let mut sequence_only = file.clone();
        let meta = file.windows(4).position(|w| w == b"meta").unwrap();
        sequence_only[meta..meta + 4].copy_from_slice(b"free");
        for at in (16..usize::from(file[3])).step_by(4) {
            if matches!(&file[at..at + 4], b"avif" | b"mif1") {
                sequence_only[at..at + 4].copy_from_slice(b"iso8");
            }
        }
        for (what, bytes) in [("primary item", &file), ("sequence only", &sequence_only)] {
            let (px, _) = decode(bytes, &Limits::default()).unwrap();
            assert_eq!((px.width, px.height), (48, 32), "{what}");
            assert!(
                near(at(&px, 24, 16), [220, 30, 40]),
                "{what}: {:?}",
                at(&px, 24, 16)
            );
        }
        assert_eq!(probe(&file).unwrap(), (48, 32));
        assert_eq!(
            probe(&sequence_only).unwrap(),
            (48, 32),
            "from the track header"
        );
    }

    #[test]
    fn a_truncated_file_is_undecodable_not_a_panic() {
        let file = avif::encode(&halves(64, 48, None), 3, 64, 48, 80).unwrap();
        for cut in [8, 40, file.len() / 2, file.len() - 10] {
            let e = decode(&file[..cut], &Limits::default()).unwrap_err();
            assert!(
                matches!(e, Error::Undecodable(_) | Error::Decode { .. }),
                "cut at {cut}: {e:?}"
            );
        }
    }

    /// Regression: the size was read from `ispe`, which the AV1 data need not agree with; a
    /// file claiming 16×16 over a larger coded picture was charged for 16×16.
    #[test]
    fn the_size_is_the_sequence_headers_not_ispe() {
        let mut file = avif::encode(&halves(64, 48, None), 3, 64, 48, 80).unwrap();
        let ispe = file.windows(4).position(|w| w == b"ispe").unwrap();
        file[ispe + 8..ispe + 16].copy_from_slice(&[0, 0, 0, 16, 0, 0, 0, 16]);
        assert_eq!(probe(&file).unwrap(), (64, 48));
        let fp = footprint(&file).unwrap();
        assert_eq!((fp.canvas, fp.frame), (64 * 48, 64 * 48));
        let (px, _) = decode(&file, &Limits::default()).unwrap();
        assert_eq!((px.width, px.height), (64, 48));
    }

    #[test]
    fn the_pixel_limit_holds_at_its_edge() {
        let file = avif::encode(&halves(64, 48, None), 3, 64, 48, 80).unwrap();
        let limits = |max_source_pixels| Limits {
            max_source_pixels,
            ..Limits::default()
        };
        assert!(decode(&file, &limits(64 * 48)).is_ok());
        let e = decode(&file, &limits(64 * 48 - 1)).unwrap_err();
        assert!(matches!(e, Error::TooManyPixels), "{e:?}");
    }

    #[test]
    fn av1_data_without_a_sequence_header_is_undecodable() {
        let mut file = avif::encode(&halves(64, 48, None), 3, 64, 48, 80).unwrap();
        let mdat = file.windows(4).position(|w| w == b"mdat").unwrap();
        file[mdat + 4..].fill(0);
        for e in [
            probe(&file).unwrap_err(),
            decode(&file, &Limits::default()).unwrap_err(),
        ] {
            assert!(matches!(e, Error::Undecodable(_)), "{e:?}");
        }
    }
}
