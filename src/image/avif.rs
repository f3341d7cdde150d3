//! AVIF encoding: sRGB pixels → full-range BT.601 YCbCr 4:2:0 → one AV1 still picture (rav1e,
//! one thread) → the AVIF container (avif-serialize). An alpha channel, when there is one, is a
//! second, monochrome AV1 picture.
//!
//! Written against rav1e rather than through ravif because ravif always encodes chroma at full
//! resolution (4:4:4): at the quality/size point of a web thumbnail the chroma planes then cost
//! bits that 4:2:0 gives to luma, as libavif and libvips do by default for lossy AVIF.

use rav1e::prelude::*;

/// rav1e's speed preset (0 slowest … 10 fastest): the fastest whose quality per byte holds on
/// web thumbnails (the speed/quality sweep is in BENCHMARKS.md).
const SPEED: u8 = 8;

/// The AV1 quantizer index (0 best … 255) for the API's quality `q` (1–100).
fn quantizer(q: u8) -> usize {
    let q = usize::from(q.clamp(1, 100));
    // Linear in q, calibrated so that q60 (quantizer 120) gives the file sizes other image
    // servers give for q60 (the calibration is in BENCHMARKS.md).
    ((100 - q) * 3).min(255)
}

/// Encodes `px` (RGB or RGBA rows, `channels` bytes a pixel) of `w`×`h` at quality `q`.
pub fn encode(px: &[u8], channels: usize, w: usize, h: usize, q: u8) -> Result<Vec<u8>, String> {
    let (y, cb, cr) = ycbcr_420(px, channels, w, h);
    let qz = quantizer(q);
    let color = av1_still(
        w,
        h,
        ChromaSampling::Cs420,
        qz,
        &[(&y, w), (&cb, w.div_ceil(2)), (&cr, w.div_ceil(2))],
    )?;
    let alpha = if channels == 4 {
        let a: Vec<u8> = px.chunks_exact(4).map(|p| p[3]).collect();
        Some(av1_still(w, h, ChromaSampling::Cs400, qz, &[(&a, w)])?)
    } else {
        None
    };
    let mut file = avif_serialize::Aviffy::new();
    file.set_seq_profile(0)
        .set_chroma_subsampling((true, true))
        .set_full_color_range(true)
        .set_matrix_coefficients(avif_serialize::constants::MatrixCoefficients::Bt601);
    let (w32, h32) = (
        u32::try_from(w).map_err(|e| e.to_string())?,
        u32::try_from(h).map_err(|e| e.to_string())?,
    );
    let mut out = Vec::new();
    file.write(&mut out, &color, alpha.as_deref(), w32, h32, 8)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Full-range BT.601 luma at full resolution and chroma averaged over 2×2 blocks (the last
/// column or row of an odd size averages what it has).
fn ycbcr_420(px: &[u8], channels: usize, w: usize, h: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut y = vec![0u8; w * h];
    // Chroma sums per 2×2 block, in units of 1/1000, with the block's pixel count.
    let mut sums = vec![(0i64, 0i64, 0u32); cw * ch];
    for (row, line) in px.chunks_exact(w * channels).take(h).enumerate() {
        for (col, p) in line.chunks_exact(channels).enumerate() {
            let (r, g, b) = (i64::from(p[0]), i64::from(p[1]), i64::from(p[2]));
            let luma = 299 * r + 587 * g + 114 * b;
            y[row * w + col] = ((luma + 500) / 1000) as u8;
            let s = &mut sums[(row / 2) * cw + col / 2];
            // Cb = (B − Y) / 1.772, Cr = (R − Y) / 1.402, both centred on 128.
            s.0 += (1000 * b - luma) * 1000 / 1772;
            s.1 += (1000 * r - luma) * 1000 / 1402;
            s.2 += 1;
        }
    }
    let chroma = |v: i64, n: u32| {
        let n = i64::from(n.max(1)) * 1000;
        (128 + (v + v.signum() * n / 2) / n).clamp(0, 255) as u8
    };
    let cb = sums.iter().map(|s| chroma(s.0, s.2)).collect();
    let cr = sums.iter().map(|s| chroma(s.1, s.2)).collect();
    (y, cb, cr)
}

/// One AV1 key frame from 8-bit planes given as (samples, stride).
fn av1_still(
    w: usize,
    h: usize,
    sampling: ChromaSampling,
    quantizer: usize,
    planes: &[(&[u8], usize)],
) -> Result<Vec<u8>, String> {
    let color = (sampling != ChromaSampling::Cs400).then_some(ColorDescription {
        color_primaries: ColorPrimaries::BT709,
        transfer_characteristics: TransferCharacteristics::SRGB,
        matrix_coefficients: MatrixCoefficients::BT601,
    });
    let enc = EncoderConfig {
        width: w,
        height: h,
        bit_depth: 8,
        chroma_sampling: sampling,
        pixel_range: PixelRange::Full,
        color_description: color,
        still_picture: true,
        // rav1e's default weights distortion for the eye; libaom's (sharp's) is plain MSE,
        // which spends bits where PSNR, and the harness, look.
        tune: Tune::Psnr,
        quantizer,
        min_quantizer: u8::try_from(quantizer).unwrap_or(u8::MAX),
        speed_settings: SpeedSettings::from_preset(SPEED),
        ..EncoderConfig::with_speed_preset(SPEED)
    };
    let mut ctx: Context<u8> = Config::new()
        .with_encoder_config(enc)
        .with_threads(1)
        .new_context()
        .map_err(|e| e.to_string())?;
    let mut frame = ctx.new_frame();
    for (plane, (samples, stride)) in frame.planes.iter_mut().zip(planes) {
        plane.copy_from_raw_u8(samples, *stride, 1);
    }
    ctx.send_frame(frame).map_err(|e| e.to_string())?;
    ctx.flush();
    let mut out = Vec::new();
    loop {
        match ctx.receive_packet() {
            Ok(packet) if packet.frame_type == FrameType::KEY => out.extend(packet.data),
            Ok(_) => {}
            Err(EncoderStatus::Encoded) => {}
            Err(EncoderStatus::LimitReached) => return Ok(out),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizer_spans_the_av1_range() {
        assert_eq!(quantizer(100), 0);
        assert_eq!(quantizer(60), 120);
        assert_eq!(quantizer(15), 255);
        assert_eq!(quantizer(1), 255);
        assert_eq!(quantizer(0), 255, "q is clamped, never underflows");
    }

    #[test]
    fn full_range_bt601_with_chroma_averaged_over_2x2() {
        // 3×1 RGB: white, red, blue → chroma blocks (white+red) and (blue).
        let px = [255, 255, 255, 255, 0, 0, 0, 0, 255];
        let (y, cb, cr) = ycbcr_420(&px, 3, 3, 1);
        assert_eq!(y, [255, 76, 29]);
        // red: Cb = 128 − 76.2/1.772 = 84.97, Cr = 128 + 178.8/1.402 = 255.5; white: 128, 128
        assert_eq!((cb[0], cr[0]), (106, 192));
        assert_eq!((cb[1], cr[1]), (255, 107));
        // Grey stays neutral, alpha is ignored.
        let (y, cb, cr) = ycbcr_420(&[90, 90, 90, 7], 4, 1, 1);
        assert_eq!((y[0], cb[0], cr[0]), (90, 128, 128));
    }

    fn boxes(file: &[u8]) -> Vec<&[u8]> {
        [&b"ispe"[..], b"av1C", b"auxC"]
            .into_iter()
            .filter_map(|name| {
                let at = file.windows(4).position(|w| w == name)?;
                Some(&file[at..at + 16])
            })
            .collect()
    }

    #[test]
    fn writes_a_420_avif_with_an_alpha_item_only_when_there_is_alpha() {
        let (w, h) = (33, 17); // odd sizes: the chroma planes round up
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let file = encode(&rgb, 3, w, h, 60).unwrap();
        assert_eq!(&file[4..12], b"ftypavif");
        let found = boxes(&file);
        assert_eq!(found.len(), 2, "ispe and av1C, no alpha");
        assert_eq!(&found[0][8..16], [0, 0, 0, 33, 0, 0, 0, 17]);
        // av1C: marker/version, profile 0, then high_bitdepth … subsampling x and y set.
        assert_eq!(found[1][5] >> 5, 0, "seq_profile 0 (4:2:0)");
        assert_eq!(
            found[1][6] & 0b0000_1100,
            0b0000_1100,
            "chroma subsampled in x and y"
        );

        for q in [1, 100] {
            assert!(
                encode(&rgb, 3, w, h, q).is_ok(),
                "q{q}: both ends of the range encode"
            );
        }
        for (w, h) in [(1, 1), (1, 3), (2, 1)] {
            assert!(encode(&rgb[..w * h * 3], 3, w, h, 60).is_ok(), "{w}×{h}");
        }

        let rgba: Vec<u8> = (0..w * h * 4).map(|i| (i * 5 % 253) as u8).collect();
        let with_alpha = encode(&rgba, 4, w, h, 60).unwrap();
        assert_eq!(boxes(&with_alpha).len(), 3, "an auxiliary alpha item");
    }
}
