//! Colour management, in one place: the decoders hand their samples here straight after
//! decoding (after any DCT/shrink-on-load scaling, before the resampler), and what leaves is
//! sRGB, which browsers assume for untagged images, since every output is stripped of its
//! profile. Resampling in the source's space and converting afterwards is wrong wherever the
//! profile is not linear in the samples (LUT-based profiles above all).
//!
//! moxcms does the conversion for RGB and grey profiles (matrix/TRC or LUT based) and for CMYK
//! profiles (LUT based, as all CMYK profiles are). Rendering intent: perceptual, the profile's
//! `A2B0` (what browsers use), falling back to whatever table the profile has; no black-point
//! compensation (moxcms has none). A profile that does not parse, or whose colour space is not
//! the pixels', is ignored, as browsers ignore it.

use super::Pixels;
use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, DataColorSpace, Layout, MatrixCoefficients,
    RenderingIntent, TransferCharacteristics, TransformOptions,
};

fn options() -> TransformOptions {
    TransformOptions {
        rendering_intent: RenderingIntent::Perceptual,
        ..TransformOptions::default()
    }
}

/// Converts `px` (RGB or RGBA, grey sources expanded to RGB) from the colour space of `icc`
/// to sRGB in place. Alpha is left as it is.
pub fn to_srgb(px: &mut Pixels, icc: &[u8]) {
    let Ok(src) = ColorProfile::new_from_slice(icc) else {
        return;
    };
    match src.color_space {
        DataColorSpace::Rgb => rgb_to_srgb(px, &src),
        DataColorSpace::Gray => gray_to_srgb(px, &src),
        _ => {}
    }
}

/// An ICC profile for the H.273 colour primaries and transfer an AVIF's `colr` nclx declares,
/// when they are not sRGB's: `None` for BT.709 or unspecified primaries (taken as sRGB, as
/// before), for HDR transfers (PQ, HLG: not tone-mapped) and for codes moxcms cannot describe.
pub fn cicp_profile(primaries: u16, transfer: u16) -> Option<Vec<u8>> {
    const PQ: u16 = 16;
    const HLG: u16 = 18;
    if matches!(primaries, 1 | 2) || matches!(transfer, PQ | HLG) {
        return None;
    }
    let cicp = CicpProfile {
        color_primaries: CicpColorPrimaries::try_from(u8::try_from(primaries).ok()?).ok()?,
        // Unspecified transfer: the sRGB curve, as for an untagged image.
        transfer_characteristics: match transfer {
            2 => TransferCharacteristics::Srgb,
            t => TransferCharacteristics::try_from(u8::try_from(t).ok()?).ok()?,
        },
        matrix_coefficients: MatrixCoefficients::Bt709,
        full_range: true,
    };
    let profile = ColorProfile::new_from_cicp(cicp);
    profile.red_trc.as_ref()?;
    profile.encode().ok()
}

fn rgb_to_srgb(px: &mut Pixels, src: &ColorProfile) {
    let srgb = ColorProfile::new_srgb();
    // Matching primaries and transfer: nothing to do (the common "sRGB IEC61966-2.1" tag).
    // A LUT-based profile has no colorants worth comparing and is always converted.
    if src.lut_a_to_b_perceptual.is_none()
        && src.lut_a_to_b_colorimetric.is_none()
        && src.red_colorant == srgb.red_colorant
        && src.green_colorant == srgb.green_colorant
        && src.blue_colorant == srgb.blue_colorant
        && src.red_trc == srgb.red_trc
    {
        return;
    }
    let layout = if px.channels == 4 {
        Layout::Rgba
    } else {
        Layout::Rgb
    };
    let Ok(t) = src.create_transform_8bit(layout, &srgb, layout, options()) else {
        return;
    };
    let mut out = vec![0u8; px.data.len()];
    if t.transform(&px.data, &mut out).is_ok() {
        px.data = out;
    }
}

/// A grey profile describes the one channel a grey source has; the decoders expand grey to
/// RGB, so the grey level is read from the red sample and written to all three.
fn gray_to_srgb(px: &mut Pixels, src: &ColorProfile) {
    let srgb = ColorProfile::new_srgb();
    let Ok(t) = src.create_transform_8bit(Layout::Gray, &srgb, Layout::Rgb, options()) else {
        return;
    };
    let step = usize::from(px.channels);
    let gray: Vec<u8> = px.data.iter().step_by(step).copied().collect();
    let mut rgb = vec![0u8; gray.len() * 3];
    if t.transform(&gray, &mut rgb).is_err() {
        return;
    }
    for (dst, src) in px.data.chunks_exact_mut(step).zip(rgb.chunks_exact(3)) {
        dst[..3].copy_from_slice(src);
    }
}

/// CMYK samples (4 a pixel, 255 = full ink, as ICC profiles count them) → sRGB, 3 a pixel:
/// through `icc` when it is a CMYK profile, else by the naive formula browsers use for an
/// untagged CMYK file (each ink takes away its complement, black from all three).
pub fn cmyk_to_srgb(cmyk: &[u8], icc: Option<&[u8]>) -> Vec<u8> {
    let mut out = vec![0u8; cmyk.len() / 4 * 3];
    let profile = icc
        .and_then(|icc| ColorProfile::new_from_slice(icc).ok())
        .filter(|p| p.color_space == DataColorSpace::Cmyk);
    let converted = profile.is_some_and(|src| {
        src.create_transform_8bit(
            Layout::Rgba,
            &ColorProfile::new_srgb(),
            Layout::Rgb,
            options(),
        )
        .is_ok_and(|t| t.transform(cmyk, &mut out).is_ok())
    });
    if !converted {
        for (dst, p) in out.chunks_exact_mut(3).zip(cmyk.chunks_exact(4)) {
            let k = 255 - u32::from(p[3]);
            for (d, &ink) in dst.iter_mut().zip(&p[..3]) {
                *d = ((255 - u32::from(ink)) * k / 255) as u8;
            }
        }
    }
    out
}
