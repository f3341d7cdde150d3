//! libwebp's advanced decoder, for what the safe crates do not expose: decoding straight to a
//! smaller size (the scaling runs inside the decoder, like JPEG's DCT scaling), and libwebp's
//! speed for stills. One of the crate's FFI modules (STYLE habit 11, with `avif_ffi`): every `unsafe` block
//! says why it is sound, and nothing unsafe leaves this file.

#![allow(unsafe_code)]

use libwebp_sys as sys;
use std::mem::MaybeUninit;

/// What a WebP header declares.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    pub has_animation: bool,
}

/// Reads the bitstream features, or `None` for data libwebp does not accept.
pub fn features(data: &[u8]) -> Option<Features> {
    let mut f = MaybeUninit::<sys::WebPBitstreamFeatures>::zeroed();
    // SAFETY: the pointer and length describe the live slice `data`; `f` is a writable
    // out-parameter of the right type, zero-initialised, which libwebp fills on success.
    let status = unsafe { sys::WebPGetFeatures(data.as_ptr(), data.len(), f.as_mut_ptr()) };
    if status != sys::VP8StatusCode::VP8_STATUS_OK {
        return None;
    }
    // SAFETY: all-zero bytes are a valid `WebPBitstreamFeatures` (plain integers), and libwebp
    // has filled it.
    let f = unsafe { f.assume_init() };
    Some(Features {
        width: u32::try_from(f.width).ok()?,
        height: u32::try_from(f.height).ok()?,
        has_alpha: f.has_alpha != 0,
        has_animation: f.has_animation != 0,
    })
}

/// Decodes a still WebP (whose header said `f`) to `width`×`height` (scaled by libwebp when
/// smaller than the source), as RGBA when it has alpha, else RGB. `None` when libwebp refuses
/// the data.
pub fn decode(data: &[u8], f: &Features, width: u32, height: u32) -> Option<Vec<u8>> {
    let alpha = f.has_alpha;
    let channels: usize = if alpha { 4 } else { 3 };
    let stride = width as usize * channels;
    let size = stride.checked_mul(height as usize)?;
    let mut buf = vec![0u8; size];
    let mut config = MaybeUninit::<sys::WebPDecoderConfig>::zeroed();
    // SAFETY: `config` is a writable out-parameter of the right type; the init function only
    // writes defaults into it and reports an ABI mismatch as `false`.
    if !unsafe { sys::WebPInitDecoderConfig(config.as_mut_ptr()) } {
        return None;
    }
    // SAFETY: zeroed and then initialised by libwebp above; every field is plain data or a
    // null pointer.
    let mut config = unsafe { config.assume_init() };
    config.options.use_scaling = 1;
    config.options.scaled_width = i32::try_from(width).ok()?;
    config.options.scaled_height = i32::try_from(height).ok()?;
    config.output.colorspace = if alpha {
        sys::WEBP_CSP_MODE::MODE_RGBA
    } else {
        sys::WEBP_CSP_MODE::MODE_RGB
    };
    config.output.is_external_memory = 1;
    config.output.u.RGBA = sys::WebPRGBABuffer {
        rgba: buf.as_mut_ptr(),
        stride: i32::try_from(stride).ok()?,
        size,
    };
    // SAFETY: `data` is live for the call. The output is external memory: `buf`, whose stride
    // and size match the scaled width, height and channel count set above, so libwebp writes
    // only inside it and never frees it. `buf` outlives the call and is not otherwise borrowed.
    let status = unsafe { sys::WebPDecode(data.as_ptr(), data.len(), &mut config) };
    (status == sys::VP8StatusCode::VP8_STATUS_OK).then_some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_scaled_and_refuses_garbage() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/lossy.webp"
        ))
        .unwrap();
        let f = features(&bytes).unwrap();
        assert_eq!(
            (f.width, f.height, f.has_alpha, f.has_animation),
            (320, 320, false, false)
        );
        let px = decode(&bytes, &f, 80, 80).unwrap();
        assert_eq!(px.len(), 80 * 80 * 3);
        assert!(px.iter().any(|&v| v != 0), "pixels were written");
        assert!(features(b"RIFF\x10\0\0\0WEBPVP8 garbage!").is_none());
        assert!(
            decode(&bytes[..bytes.len() / 3], &f, 80, 80).is_none(),
            "truncated"
        );
    }
}
