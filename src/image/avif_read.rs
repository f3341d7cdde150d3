//! AVIF sources: the container (mp4parse reads the ISOBMFF boxes) → the primary item, or the
//! first sample of an image sequence → AV1 decode (`avif_ffi`, rav1d) → 8-bit sRGB pixels,
//! with the alpha item, `prem`, `irot` and `imir` applied. The pixel limit is checked on the
//! primary item's `ispe` (a sequence's track header) before any AV1 data is decoded, and
//! again by the decoder on the frame size its sequence header declares.
//!
//! Samples of 10 and 12 bits are scaled to 8; a colour profile (`colr` ICC) is handed on for
//! conversion like any other source's. YUV → RGB uses the matrix and range the AV1 sequence
//! header declares (BT.601 when it says "unspecified"); an HDR transfer function is not
//! tone-mapped.

use super::{avif_ffi, Limits, Pixels};
use crate::error::Error;
use ::image::{DynamicImage, RgbaImage};
use mp4parse::{AvifContext, ImageRotation, ParseStrictness, TrackType};

/// What the container says before anything is decoded.
#[derive(Debug)]
struct Container {
    ctx: AvifContext,
}

/// The container parser's refusal, its reason kept for the log.
fn corrupt(e: impl std::fmt::Debug) -> Error {
    Error::Decode {
        detail: format!("AVIF container: {e:?}"),
    }
}

impl Container {
    fn parse(bytes: &[u8]) -> Result<Container, Error> {
        let ctx = mp4parse::read_avif(&mut std::io::Cursor::new(bytes), ParseStrictness::Normal)
            .map_err(corrupt)?;
        Ok(Container { ctx })
    }

    /// Width and height as displayed: the primary item's `ispe` (turned by `irot`), else,
    /// for a sequence without a primary item, its picture track's `tkhd` size.
    fn dimensions(&self) -> Option<(u32, u32)> {
        if let Some((w, h)) = avif_ffi::spatial_extents(&self.ctx) {
            return Some(if self.quarter_turn() { (h, w) } else { (w, h) });
        }
        // `tkhd` holds 16.16 fixed point.
        let tkhd = self.picture_track()?.tkhd.as_ref()?;
        Some((tkhd.width >> 16, tkhd.height >> 16))
    }

    fn picture_track(&self) -> Option<&mp4parse::Track> {
        let tracks = &self.ctx.sequence.as_ref()?.tracks;
        tracks
            .iter()
            .find(|t| matches!(t.track_type, TrackType::Picture | TrackType::Video))
    }

    fn quarter_turn(&self) -> bool {
        matches!(
            self.ctx.image_rotation(),
            Ok(ImageRotation::D90 | ImageRotation::D270)
        )
    }

    /// The AV1 data of the picture to show: the primary item, else the first sample of the
    /// first picture track.
    fn colour_data<'a>(&'a self, bytes: &'a [u8]) -> Result<&'a [u8], Error> {
        if let Some(data) = self.ctx.primary_item_coded_data() {
            return Ok(data);
        }
        let no_picture = Error::Undecodable("the AVIF file holds no picture");
        let track = self.picture_track().ok_or(no_picture.clone())?;
        let table = mp4parse::unstable::create_sample_table(track, 0.into()).ok_or(corrupt(()))?;
        let first = table.first().ok_or(no_picture)?;
        let (start, end) = (first.start_offset.0, first.end_offset.0);
        let range =
            usize::try_from(start).map_err(corrupt)?..usize::try_from(end).map_err(corrupt)?;
        bytes
            .get(range)
            .ok_or(Error::Undecodable("the image is truncated"))
    }
}

/// `(width, height)` from the header alone.
pub fn probe(bytes: &[u8]) -> Result<(u32, u32), Error> {
    let c = Container::parse(bytes)?;
    c.dimensions()
        .ok_or(Error::Undecodable("the AVIF file declares no image size"))
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
    if let Some((w, h)) = c.dimensions() {
        check_pixels(w, h, limits)?;
    }
    let data = c.colour_data(bytes)?;
    let limit = limits.max_source_pixels;
    let refused = Error::Undecodable;
    let mut rgba = avif_ffi::decode(data, limit, |f| Ok(to_rgba(f))).map_err(refused)?;
    let (w, h) = rgba.dimensions();
    check_pixels(w, h, limits)?;
    let mut has_alpha = false;
    if let Some(alpha) = c.ctx.alpha_item_coded_data() {
        avif_ffi::decode(alpha, limit, |f| put_alpha(f, &mut rgba)).map_err(refused)?;
        if c.ctx.premultiplied_alpha {
            unpremultiply(&mut rgba);
        }
        has_alpha = true;
    }
    let mut img = DynamicImage::ImageRgba8(rgba);
    img = match c.ctx.image_rotation() {
        // `irot` turns anticlockwise; `image` turns clockwise.
        Ok(ImageRotation::D90) => img.rotate270(),
        Ok(ImageRotation::D180) => img.rotate180(),
        Ok(ImageRotation::D270) => img.rotate90(),
        _ => img,
    };
    img = match avif_ffi::mirror(&c.ctx) {
        Some(true) => img.fliph(),
        Some(false) => img.flipv(),
        None => img,
    };
    if !has_alpha {
        img = DynamicImage::ImageRgb8(img.into_rgb8());
    }
    let icc = c
        .ctx
        .icc_colour_information()
        .and_then(Result::ok)
        .map(<[u8]>::to_vec);
    Ok((Pixels::from_dynamic(img), icc))
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

/// The frame as RGBA (opaque) 8-bit.
fn to_rgba(f: &avif_ffi::Frame<'_>) -> RgbaImage {
    let max = ((1u32 << f.bits) - 1) as f32;
    let shift = f.bits.saturating_sub(8);
    // Luma and chroma as 0..=1 and -0.5..=0.5 from their coded range.
    let (y_off, y_scale, c_scale) = if f.full_range {
        (0.0, 1.0 / max, 1.0 / max)
    } else {
        let k = f32::from(1u16 << shift);
        (16.0 * k, 1.0 / (219.0 * k), 1.0 / (224.0 * k))
    };
    let mid = (1u32 << (f.bits - 1)) as f32;
    let to8 = |v: f32| (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
    let coeffs = coefficients(f.matrix);
    let (w, h) = (f.width as u32, f.height as u32);
    RgbaImage::from_fn(w, h, |x, y| {
        let (x, y) = (x as usize, y as usize);
        let luma = sample(f.planes[0], f.strides[0], f.bits, x, y) as f32;
        let Some((sx, sy)) = f.subsampling else {
            let v = to8((luma - y_off) * y_scale);
            return ::image::Rgba([v, v, v, 255]);
        };
        let (cx, cy) = (x >> sx, y >> sy);
        let u = sample(f.planes[1], f.strides[1], f.bits, cx, cy) as f32;
        let v = sample(f.planes[2], f.strides[2], f.bits, cx, cy) as f32;
        let Some((kr, kb)) = coeffs else {
            // Identity: Y is G, U is B, V is R, all full-scale.
            let n = |s: f32| to8((s - y_off) * y_scale);
            return ::image::Rgba([n(v), n(luma), n(u), 255]);
        };
        let yy = (luma - y_off) * y_scale;
        let (cb, cr) = ((u - mid) * c_scale, (v - mid) * c_scale);
        let r = yy + 2.0 * (1.0 - kr) * cr;
        let b = yy + 2.0 * (1.0 - kb) * cb;
        let g = (yy - kr * r - kb * b) / (1.0 - kr - kb);
        ::image::Rgba([to8(r), to8(g), to8(b), 255])
    })
}

/// The alpha item's luma into `rgba`'s alpha channel.
fn put_alpha(f: &avif_ffi::Frame<'_>, rgba: &mut RgbaImage) -> Result<(), &'static str> {
    if (f.width as u32, f.height as u32) != rgba.dimensions() {
        return Err("the alpha plane's size differs from the image's");
    }
    let max = ((1u32 << f.bits) - 1) as f32;
    let (off, scale) = if f.full_range {
        (0.0, 255.0 / max)
    } else {
        let k = f32::from(1u16 << f.bits.saturating_sub(8));
        (16.0 * k, 255.0 / (219.0 * k))
    };
    for (x, y, p) in rgba.enumerate_pixels_mut() {
        let a = sample(f.planes[0], f.strides[0], f.bits, x as usize, y as usize) as f32;
        p[3] = ((a - off) * scale + 0.5).clamp(0.0, 255.0) as u8;
    }
    Ok(())
}

/// Colour stored multiplied by alpha (`prem`) back to straight alpha.
fn unpremultiply(rgba: &mut RgbaImage) {
    for p in rgba.pixels_mut() {
        let a = u32::from(p[3]);
        if a > 0 && a < 255 {
            for c in 0..3 {
                p[c] = ((u32::from(p[c]) * 255 + a / 2) / a).min(255) as u8;
            }
        }
    }
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
        // The same file with its `pitm` box blanked out (`free`, same size, so every offset
        // holds), and no brand that promises one (`avif`, `mif1`): a sequence without a
        // primary item.
        let mut sequence_only = file.clone();
        let pitm = file.windows(4).position(|w| w == b"pitm").unwrap();
        sequence_only[pitm..pitm + 4].copy_from_slice(b"free");
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

    #[test]
    fn an_over_limit_ispe_is_refused_before_decoding() {
        let mut file = avif::encode(&halves(64, 48, None), 3, 64, 48, 80).unwrap();
        let ispe = file.windows(4).position(|w| w == b"ispe").unwrap();
        file[ispe + 8..ispe + 12].copy_from_slice(&60000u32.to_be_bytes());
        file[ispe + 12..ispe + 16].copy_from_slice(&60000u32.to_be_bytes());
        // The AV1 data is garbage too: decoding it would say "corrupt", not "too many pixels".
        let mdat = file.windows(4).position(|w| w == b"mdat").unwrap();
        file[mdat + 4..].fill(0);
        assert_eq!(probe(&file).unwrap(), (60000, 60000));
        let e = decode(&file, &Limits::default()).unwrap_err();
        assert!(matches!(e, Error::TooManyPixels), "{e:?}");
    }
}
