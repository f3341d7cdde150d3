//! libwebp, the format's reference decoder, for every WebP source: its advanced decoder for
//! stills (decoding straight to a smaller size, the scaling running inside the decoder like
//! JPEG's DCT scaling) and its animation decoder for animated files (frames composited on the
//! canvas). One of the crate's FFI modules (STYLE habit 11, with `avif_ffi`): every `unsafe` block
//! says why it is sound, and nothing unsafe leaves this file.

#![allow(unsafe_code)]

use libwebp_sys as sys;
use std::{marker::PhantomData, mem::MaybeUninit, ptr::NonNull};

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

/// Encodes an animation that loops forever: RGBA frames of `width`×`height`, each shown for
/// its delay (ms). The end of the last frame is passed to libwebp as the timestamp of the end;
/// without it libwebp makes the last frame's duration up (the mean of the others). `Err` is
/// libwebp's reason.
pub fn encode_animation(
    frames: &[(&[u8], u32)],
    width: u32,
    height: u32,
    config: &sys::WebPConfig,
) -> Result<Vec<u8>, String> {
    let side = |v: u32| i32::try_from(v).map_err(|_| "side too large".to_string());
    let (w, h) = (side(width)?, side(height)?);
    let abi = sys::WEBP_MUX_ABI_VERSION as i32;
    let mut options = MaybeUninit::<sys::WebPAnimEncoderOptions>::zeroed();
    // SAFETY: `options` is a writable out-parameter of the right type; the init function
    // writes defaults into it and reports an ABI mismatch as 0.
    if unsafe { sys::WebPAnimEncoderOptionsInitInternal(options.as_mut_ptr(), abi) } == 0 {
        return Err("libwebp's ABI does not match".into());
    }
    // SAFETY: zeroed, then initialised by libwebp; every field is plain data.
    let mut options = unsafe { options.assume_init() };
    options.anim_params.loop_count = 0;
    // SAFETY: `options` is initialised and outlives the call (libwebp copies it).
    let enc = unsafe { sys::WebPAnimEncoderNewInternal(w, h, &options, abi) };
    let enc = AnimEncoder(NonNull::new(enc).ok_or("libwebp refused the canvas")?);
    let mut t: i32 = 0;
    for (rgba, delay) in frames {
        let expected = (width as usize * height as usize).checked_mul(4);
        if expected != Some(rgba.len()) {
            return Err("a frame is not the canvas's size".into());
        }
        let mut pic = Picture::new(w, h)?;
        // SAFETY: `pic` is an initialised picture of `w`×`h`; `rgba` holds exactly `h` rows of
        // `w * 4` bytes (checked above), which libwebp copies into the picture's own buffer.
        if unsafe { sys::WebPPictureImportRGBA(&mut pic.0, rgba.as_ptr(), w * 4) } == 0 {
            return Err("libwebp could not import a frame".into());
        }
        // SAFETY: `enc` is live; `pic` and `config` are initialised and live for the call
        // (libwebp encodes or copies the frame before returning).
        if unsafe { sys::WebPAnimEncoderAdd(enc.0.as_ptr(), &mut pic.0, t, config) } == 0 {
            return Err(enc.error());
        }
        t = t.saturating_add(i32::try_from(*delay).unwrap_or(i32::MAX));
    }
    // SAFETY: a null frame (with a null config) tells a live encoder the end timestamp.
    if unsafe { sys::WebPAnimEncoderAdd(enc.0.as_ptr(), std::ptr::null_mut(), t, std::ptr::null()) }
        == 0
    {
        return Err(enc.error());
    }
    let mut data = MaybeUninit::<sys::WebPData>::zeroed();
    // SAFETY: `enc` is live; `data` is a writable out-parameter, which libwebp fills with a
    // buffer of its own on success.
    if unsafe { sys::WebPAnimEncoderAssemble(enc.0.as_ptr(), data.as_mut_ptr()) } == 0 {
        return Err(enc.error());
    }
    // SAFETY: filled by libwebp above.
    let mut data = unsafe { data.assume_init() };
    // SAFETY: libwebp's buffer of `size` bytes, live until cleared just below.
    let out = unsafe { std::slice::from_raw_parts(data.bytes, data.size) }.to_vec();
    // SAFETY: the buffer was allocated by libwebp for `data` and is freed once, here.
    unsafe { sys::WebPDataClear(&mut data) };
    Ok(out)
}

/// libwebp's animation encoder, deleted on drop.
struct AnimEncoder(NonNull<sys::WebPAnimEncoder>);

impl AnimEncoder {
    fn error(&self) -> String {
        // SAFETY: the encoder is live; libwebp returns a NUL-terminated string it owns (or
        // null), valid until the next call on the encoder, and it is copied at once.
        let msg = unsafe { sys::WebPAnimEncoderGetError(self.0.as_ptr()) };
        if msg.is_null() {
            return "unknown error".into();
        }
        // SAFETY: non-null and NUL-terminated, as above.
        unsafe { std::ffi::CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for AnimEncoder {
    fn drop(&mut self) {
        // SAFETY: created by `WebPAnimEncoderNewInternal` and deleted once, here.
        unsafe { sys::WebPAnimEncoderDelete(self.0.as_ptr()) }
    }
}

/// A libwebp picture in ARGB, its pixel buffer freed on drop.
struct Picture(sys::WebPPicture);

impl Picture {
    fn new(w: i32, h: i32) -> Result<Picture, String> {
        let mut pic = sys::WebPPicture::new().map_err(|()| "libwebp's ABI does not match")?;
        pic.use_argb = 1;
        pic.width = w;
        pic.height = h;
        Ok(Picture(pic))
    }
}

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: an initialised picture; freeing one without a buffer is a no-op.
        unsafe { sys::WebPPictureFree(&mut self.0) }
    }
}

/// libwebp refused the data of an animation frame.
#[derive(Debug)]
pub struct Refused;

/// An animated WebP in libwebp's animation decoder, which reads `data` in place and composites
/// each frame on an RGBA canvas of its own.
#[derive(Debug)]
pub struct Animation<'a> {
    dec: NonNull<sys::WebPAnimDecoder>,
    timestamp: i32,
    canvas_len: usize,
    _data: PhantomData<&'a [u8]>,
}

impl<'a> Animation<'a> {
    /// Opens the animation in `data`. libwebp allocates two canvases of the size the header
    /// declares here, so the caller checks that size ([`features`]) against its limits first.
    /// `None` when libwebp refuses the data.
    pub fn new(data: &'a [u8], f: &Features) -> Option<Animation<'a>> {
        let canvas_len = (f.width as usize)
            .checked_mul(f.height as usize)?
            .checked_mul(4)?;
        let mut options = MaybeUninit::<sys::WebPAnimDecoderOptions>::zeroed();
        // SAFETY: `options` is a writable out-parameter of the right type; the init function
        // writes defaults into it and reports an ABI mismatch as 0.
        if unsafe { sys::WebPAnimDecoderOptionsInit(options.as_mut_ptr()) } == 0 {
            return None;
        }
        // SAFETY: zeroed, then initialised by libwebp; every field is plain data.
        let mut options = unsafe { options.assume_init() };
        options.color_mode = sys::WEBP_CSP_MODE::MODE_RGBA;
        options.use_threads = 0;
        let webp = sys::WebPData {
            bytes: data.as_ptr(),
            size: data.len(),
        };
        // SAFETY: both pointers are to live values for the call. The decoder keeps a pointer to
        // `data` (not to `webp`), which the lifetime `'a` keeps alive and unchanged for as long
        // as the returned value exists; it is freed in `drop`.
        let dec = NonNull::new(unsafe { sys::WebPAnimDecoderNew(&webp, &options) })?;
        let animation = Animation {
            dec,
            timestamp: 0,
            canvas_len,
            _data: PhantomData,
        };
        let mut info = MaybeUninit::<sys::WebPAnimInfo>::zeroed();
        // SAFETY: `dec` is a live decoder; `info` is a writable out-parameter of the right type.
        if unsafe { sys::WebPAnimDecoderGetInfo(dec.as_ptr(), info.as_mut_ptr()) } == 0 {
            return None;
        }
        // SAFETY: zeroed (plain integers), then filled by libwebp.
        let info = unsafe { info.assume_init() };
        // The canvas the frames come on must be the one the caller checked and sized.
        (info.canvas_width == f.width && info.canvas_height == f.height).then_some(animation)
    }

    /// The next frame, as the whole canvas in RGBA, and how long it shows in milliseconds;
    /// `Ok(None)` after the last one.
    pub fn next_frame(&mut self) -> Result<Option<(&[u8], u32)>, Refused> {
        // SAFETY: `dec` is a live decoder.
        if unsafe { sys::WebPAnimDecoderHasMoreFrames(self.dec.as_ptr()) } == 0 {
            return Ok(None);
        }
        let mut buf: *mut u8 = std::ptr::null_mut();
        let mut timestamp = 0;
        // SAFETY: `dec` is live; `buf` and `timestamp` are writable out-parameters.
        if unsafe { sys::WebPAnimDecoderGetNext(self.dec.as_ptr(), &mut buf, &mut timestamp) } == 0
            || buf.is_null()
        {
            return Err(Refused);
        }
        // SAFETY: on success `buf` points to the decoder's canvas of width × height × 4 bytes
        // (RGBA, as configured), which stays valid and unchanged until the next call on the
        // decoder; the returned slice borrows `self` mutably, so no such call can happen first.
        let canvas = unsafe { std::slice::from_raw_parts(buf, self.canvas_len) };
        // Timestamps are when each frame ends; a frame shows from the previous one's end.
        let delay = u32::try_from(timestamp.saturating_sub(self.timestamp)).unwrap_or(0);
        self.timestamp = timestamp;
        Ok(Some((canvas, delay)))
    }
}

impl Drop for Animation<'_> {
    fn drop(&mut self) {
        // SAFETY: `dec` came from `WebPAnimDecoderNew` and is freed exactly once, here.
        unsafe { sys::WebPAnimDecoderDelete(self.dec.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_scaled_and_refuses_garbage() {
        let bytes = crate::image::fixture("lossy.webp");
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

    #[test]
    fn animation_frames_come_composited_with_their_delays() {
        let bytes = crate::image::fixture("anim.webp");
        let f = features(&bytes).unwrap();
        assert!(f.has_animation);
        let mut a = Animation::new(&bytes, &f).unwrap();
        let mut n = 0;
        while let Some((canvas, delay)) = a.next_frame().unwrap() {
            assert_eq!(canvas.len(), f.width as usize * f.height as usize * 4);
            assert!(delay > 0, "frame {n} shows for {delay} ms");
            n += 1;
        }
        assert!(n > 1, "{n} frames");
        let other = Features {
            width: f.width + 1,
            ..f
        };
        assert!(
            Animation::new(&bytes, &other).is_none(),
            "canvas not as checked"
        );
    }
}
