//! Colour management: embedded ICC profiles are converted to sRGB (what browsers assume for
//! untagged images), since the output is stripped of every profile.

use super::Pixels;
use moxcms::{ColorProfile, Layout, TransformOptions};

/// Converts `px` from the colour space of `icc` to sRGB in place. A profile that cannot be
/// parsed, or is sRGB already, leaves the pixels as they are (browsers would do the same).
pub fn to_srgb(px: &mut Pixels, icc: &[u8]) {
    let Ok(src) = ColorProfile::new_from_slice(icc) else {
        return;
    };
    let srgb = ColorProfile::new_srgb();
    // Matching primaries and transfer: nothing to do (the common "sRGB IEC61966-2.1" tag).
    if src.red_colorant == srgb.red_colorant
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
    let Ok(t) = src.create_transform_8bit(layout, &srgb, layout, TransformOptions::default())
    else {
        return;
    };
    let mut out = vec![0u8; px.data.len()];
    if t.transform(&px.data, &mut out).is_ok() {
        px.data = out;
    }
}
