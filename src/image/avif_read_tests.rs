//! Tests of `avif_read`: stills made by our encoder (and box-edited around its AV1 data),
//! sequences, orientation, limits and what the decoder is allowed to allocate.

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

/// The AV1 data of the one item of `file`.
fn item_data(file: &[u8]) -> Vec<u8> {
    let c = Container::parse(file).unwrap();
    let pic = c.picture().unwrap();
    pic.colour[0].0.to_vec()
}

#[test]
fn the_decoder_refuses_a_frame_over_the_pixels_charged() {
    let data = item_data(&avif::encode(&halves(64, 48, None), 3, 64, 48, 80).unwrap());
    let size = avif_ffi::decode(&data, 64 * 48, Pick::First, |f| Ok((f.width, f.height)));
    assert_eq!(size, Ok((64, 48)));
    let over = avif_ffi::decode(&data, 64 * 48 - 1, Pick::First, |_| Ok(()));
    assert!(over.is_err(), "{over:?}");
}

#[test]
fn every_sequence_header_of_an_item_counts_and_the_last_layer_is_shown() {
    let small = item_data(&avif::encode(&halves(32, 16, None), 3, 32, 16, 80).unwrap());
    let large = item_data(&avif::encode(&halves(64, 48, None), 3, 64, 48, 80).unwrap());
    let both = [small.clone(), large.clone()].concat();
    assert_eq!(avif_ffi::largest_frame(&small), Some((32, 16)));
    assert_eq!(avif_ffi::largest_frame(&both), Some((64, 48)));
    let reversed = [large.clone(), small].concat();
    assert_eq!(avif_ffi::largest_frame(&reversed), Some((64, 48)));
    let size = |pick| avif_ffi::decode(&both, 64 * 48, pick, |f| Ok((f.width, f.height)));
    assert_eq!(size(Pick::First), Ok((32, 16)));
    assert_eq!(size(Pick::Last), Ok((64, 48)));
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
