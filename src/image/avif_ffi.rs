//! The AV1 decoder behind AVIF sources: rav1d, the Rust port of dav1d, called through its
//! dav1d-compatible C ABI (its safe Rust API is not public), plus the two item properties
//! mp4parse hands out only as pointers (`ispe`, `imir`). One of the crate's FFI modules
//! (STYLE habit 11): every `unsafe` block says why it is sound, and nothing unsafe leaves this
//! file: the decoded planes are lent to a closure as slices, and freed after it returns.

#![allow(unsafe_code)]

use mp4parse::{AvifContext, ImageMirror};
use rav1d::include::dav1d::{
    data::Dav1dData,
    dav1d::{Dav1dContext, Dav1dSettings},
    headers::{DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422},
    picture::Dav1dPicture,
};
use rav1d::src::lib as dav1d;
use std::{mem::MaybeUninit, ptr::NonNull};

/// The layout of mp4parse's `ImageSpatialExtentsProperty`, `#[repr(C)]` for its C API.
#[repr(C)]
struct Extents {
    width: u32,
    height: u32,
}

/// The primary item's `ispe` (width, height before rotation), if it has one.
pub fn spatial_extents(ctx: &AvifContext) -> Option<(u32, u32)> {
    let ptr = ctx.spatial_extents_ptr().ok()?;
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a non-null pointer from `spatial_extents_ptr` points at a property owned by
    // `ctx`, borrowed for this call; the property is `#[repr(C)]` with two `u32` fields in
    // this order, which `Extents` repeats.
    let e = unsafe { &*ptr.cast::<Extents>() };
    Some((e.width, e.height))
}

/// The primary item's `imir`: `Some(true)` for left and right exchanged, `Some(false)` for
/// top and bottom.
pub fn mirror(ctx: &AvifContext) -> Option<bool> {
    let ptr = ctx.image_mirror_ptr().ok()?;
    // SAFETY: a non-null pointer from `image_mirror_ptr` points at a property owned by `ctx`,
    // borrowed for this call; `as_ref` handles null.
    let m = unsafe { ptr.as_ref() }?;
    Some(matches!(m, ImageMirror::LeftRight))
}

/// One decoded AV1 picture, lent: planes of samples, one byte each at 8 bits, two (native
/// endian) above.
#[derive(Debug)]
pub struct Frame<'a> {
    pub width: usize,
    pub height: usize,
    pub bits: u8,
    /// Chroma subsampling shifts (x, y); `None` for monochrome.
    pub subsampling: Option<(u8, u8)>,
    /// H.273 matrix coefficients and full range, from the sequence header.
    pub matrix: u32,
    pub full_range: bool,
    pub planes: [&'a [u8]; 3],
    pub strides: [usize; 3],
}

/// Frees the decoder when dropped.
struct Context(Option<Dav1dContext>);

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: `self.0` was opened by `dav1d_open` (or is `None`, which `dav1d_close`
        // ignores) and is closed once, here.
        unsafe { dav1d::dav1d_close(Some(NonNull::from(&mut self.0))) };
    }
}

/// Unreferences a picture when dropped.
struct Picture(Dav1dPicture);

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: the picture is default-initialised or filled by `dav1d_get_picture`; unref
        // of either is allowed, and it happens once.
        unsafe { dav1d::dav1d_picture_unref(Some(NonNull::from(&mut self.0))) };
    }
}

/// dav1d's "try again" result (`-EAGAIN`): the decoder wants the other call first.
fn again(r: i32) -> bool {
    r == -libc::EAGAIN
}

/// Decodes the first picture of the AV1 bitstream `obu` (one AVIF item or sample) and hands
/// it to `use_frame`. Frames over `max_pixels` are refused by the decoder before it
/// allocates them.
pub fn decode<T>(
    obu: &[u8],
    max_pixels: u64,
    use_frame: impl FnOnce(&Frame<'_>) -> Result<T, &'static str>,
) -> Result<T, &'static str> {
    let mut settings = MaybeUninit::<Dav1dSettings>::uninit();
    // SAFETY: `dav1d_default_settings` writes every field of the settings it is given.
    unsafe { dav1d::dav1d_default_settings(NonNull::from(&mut settings).cast()) };
    // SAFETY: initialised just above.
    let mut settings = unsafe { settings.assume_init() };
    settings.n_threads = 1; // the transform pool runs one job per core already
    settings.max_frame_delay = 1;
    settings.all_layers = 0; // the highest spatial layer only, as AVIF wants
    settings.frame_size_limit = u32::try_from(max_pixels).unwrap_or(u32::MAX);

    let mut ctx = Context(None);
    // SAFETY: both pointers are to live locals of the right types; on success `ctx.0` holds
    // a context that `Context`'s drop closes.
    let r = unsafe {
        dav1d::dav1d_open(
            Some(NonNull::from(&mut ctx.0)),
            Some(NonNull::from(&mut settings)),
        )
    };
    if r.0 < 0 || ctx.0.is_none() {
        return Err("the AV1 decoder could not start");
    }

    let mut data = Dav1dData::default();
    // SAFETY: `data` is a default (empty) `Dav1dData`; on success the returned pointer is a
    // fresh buffer of `obu.len()` bytes that `data` owns.
    let buf = unsafe { dav1d::dav1d_data_create(Some(NonNull::from(&mut data)), obu.len()) };
    if buf.is_null() {
        return Err("the AV1 data is empty or too large");
    }
    // SAFETY: `buf` is writable for `obu.len()` bytes and does not overlap `obu`.
    unsafe { std::ptr::copy_nonoverlapping(obu.as_ptr(), buf, obu.len()) };

    let mut pic = Picture(Dav1dPicture::default());
    let result = loop {
        if data.sz > 0 {
            // SAFETY: the context is open; `data` is the buffer created above, which the
            // decoder consumes (advancing `data.sz`) or leaves for the next call.
            let r = unsafe { dav1d::dav1d_send_data(ctx.0, Some(NonNull::from(&mut data))) };
            if r.0 < 0 && !again(r.0) {
                break Err("the AV1 data is corrupt or unsupported");
            }
        }
        // SAFETY: the context is open; `pic.0` is an empty picture the decoder fills.
        let r = unsafe { dav1d::dav1d_get_picture(ctx.0, Some(NonNull::from(&mut pic.0))) };
        if again(r.0) {
            if data.sz == 0 {
                break Err("the AV1 data holds no picture (truncated?)");
            }
            continue;
        }
        break if r.0 < 0 {
            Err("the AV1 data is corrupt or unsupported")
        } else {
            Ok(())
        };
    };
    // SAFETY: `data` is the buffer created above (or what the decoder left of it); unref of a
    // consumed buffer is a no-op.
    unsafe { dav1d::dav1d_data_unref(Some(NonNull::from(&mut data))) };
    result?;

    let p = &pic.0;
    let (w, h) = (
        usize::try_from(p.p.w).map_err(|_| "bad picture size")?,
        usize::try_from(p.p.h).map_err(|_| "bad picture size")?,
    );
    let bits = u8::try_from(p.p.bpc).map_err(|_| "bad bit depth")?;
    let subsampling = match p.p.layout {
        DAV1D_PIXEL_LAYOUT_I400 => None,
        DAV1D_PIXEL_LAYOUT_I420 => Some((1, 1)),
        DAV1D_PIXEL_LAYOUT_I422 => Some((1, 0)),
        _ => Some((0, 0)),
    };
    let (matrix, full_range) = match p.seq_hdr {
        // SAFETY: a picture's sequence header lives as long as the picture.
        Some(seq) => {
            let seq = unsafe { seq.as_ref() };
            (seq.mtrx, seq.color_range != 0)
        }
        None => (2, false),
    };
    let sample = if bits > 8 { 2 } else { 1 };
    let (cw, ch) = match subsampling {
        Some((sx, sy)) => ((w + usize::from(sx)) >> sx, (h + usize::from(sy)) >> sy),
        None => (0, 0),
    };
    let stride = |s: isize| usize::try_from(s).map_err(|_| "negative stride");
    let strides = [
        stride(p.stride[0])?,
        stride(p.stride[1])?,
        stride(p.stride[1])?,
    ];
    let plane = |i: usize, pw: usize, ph: usize| -> Result<&[u8], &'static str> {
        if pw == 0 || ph == 0 {
            return Ok(&[]);
        }
        let Some(ptr) = p.data[i] else {
            return Err("the AV1 picture has no pixel data");
        };
        if strides[i] < pw * sample {
            return Err("bad stride");
        }
        let len = strides[i] * (ph - 1) + pw * sample;
        // SAFETY: dav1d's plane `i` holds `ph` rows of `pw` samples of `sample` bytes,
        // `strides[i]` bytes apart, owned by the picture, which outlives the slice (it is
        // unreferenced when `pic` drops, after `use_frame` returns).
        Ok(unsafe { std::slice::from_raw_parts(ptr.as_ptr().cast::<u8>(), len) })
    };
    let planes = [plane(0, w, h)?, plane(1, cw, ch)?, plane(2, cw, ch)?];
    use_frame(&Frame {
        width: w,
        height: h,
        bits,
        subsampling,
        matrix,
        full_range,
        planes,
        strides,
    })
}
