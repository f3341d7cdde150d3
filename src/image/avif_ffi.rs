//! The AV1 decoder behind AVIF sources: rav1d, the Rust port of dav1d, called through its
//! dav1d-compatible C ABI (its safe Rust API is not public), for pictures and for the sequence
//! headers that say how large a frame the decoder will allocate. One of the crate's FFI
//! modules (STYLE habit 11): every `unsafe` block says why it is sound, and nothing unsafe
//! leaves this file: the decoded planes are lent to a closure as slices, and freed after it
//! returns.

#![allow(unsafe_code)]

use rav1d::include::dav1d::{
    data::Dav1dData,
    dav1d::{Dav1dContext, Dav1dSettings},
    headers::{
        Dav1dSequenceHeader, DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420,
        DAV1D_PIXEL_LAYOUT_I422,
    },
    picture::Dav1dPicture,
};
use rav1d::src::lib as dav1d;
use std::{mem::MaybeUninit, ptr::NonNull};

/// OBU type of a sequence header (AV1 §6.2.2).
const OBU_SEQUENCE_HEADER: u8 = 1;

/// The largest frame (width, height) any sequence header in `obu` allows, read by the
/// decoder's own parser: the most a decoder fed `obu` allocates for one frame. `None` when
/// there is no readable sequence header.
pub fn largest_frame(obu: &[u8]) -> Option<(u32, u32)> {
    let mut largest: Option<(u32, u32)> = None;
    let mut rest = obu;
    while let Some((&header, after)) = rest.split_first() {
        let kind = (header >> 3) & 0xF;
        let extension = usize::from(header & 4 != 0);
        let after = after.get(extension..)?;
        // AVIF requires the size field (AV1-ISOBMFF §2.4); without it the OBU runs to the end.
        let (len, after) = if header & 2 != 0 {
            leb128(after)?
        } else {
            (after.len(), after)
        };
        let payload = after.get(..len)?;
        if kind == OBU_SEQUENCE_HEADER {
            let whole = &rest[..rest.len() - after.len() + len];
            let (w, h) = sequence_size(whole)?;
            if largest
                .is_none_or(|(lw, lh)| u64::from(w) * u64::from(h) > u64::from(lw) * u64::from(lh))
            {
                largest = Some((w, h));
            }
        }
        rest = &after[payload.len()..];
    }
    largest
}

/// An unsigned LEB128 number (at most 8 bytes, AV1 §4.10.5) and what follows it.
fn leb128(b: &[u8]) -> Option<(usize, &[u8])> {
    let mut value = 0u64;
    for (i, &byte) in b.iter().take(8).enumerate() {
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((usize::try_from(value).ok()?, &b[i + 1..]));
        }
    }
    None
}

/// `max_frame_width` and `max_frame_height` of the one sequence header OBU `obu`.
fn sequence_size(obu: &[u8]) -> Option<(u32, u32)> {
    let mut out = MaybeUninit::<Dav1dSequenceHeader>::uninit();
    // SAFETY: `out` is a live local the parser writes whole on success (and only then is it
    // read); the pointer and length describe `obu`, which the call only reads.
    let r = unsafe {
        dav1d::dav1d_parse_sequence_header(
            Some(NonNull::from(&mut out).cast()),
            NonNull::new(obu.as_ptr().cast_mut()),
            obu.len(),
        )
    };
    if r.0 < 0 {
        return None;
    }
    // SAFETY: the parser succeeded, so it wrote the whole header.
    let seq = unsafe { out.assume_init() };
    Some((
        u32::try_from(seq.max_width).ok()?,
        u32::try_from(seq.max_height).ok()?,
    ))
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

/// Which of the pictures an item's data holds to hand on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The first: a still, or the first frame of a sequence.
    First,
    /// The last: a layered (progressive) item's layers come lowest first.
    Last,
}

/// Decodes the AV1 bitstream `obu` (one AVIF item or sample) and hands the picture `pick`
/// chooses to `use_frame`. Frames over `max_pixels` are refused by the decoder before it
/// allocates them.
pub fn decode<T>(
    obu: &[u8],
    max_pixels: u64,
    pick: Pick,
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
                             // 0 would mean "no limit"; a budget of 0 pixels refuses every frame instead.
    settings.frame_size_limit = u32::try_from(max_pixels.max(1)).unwrap_or(u32::MAX);

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
    let mut have = false;
    let result = loop {
        if data.sz > 0 {
            // SAFETY: the context is open; `data` is the buffer created above, which the
            // decoder consumes (advancing `data.sz`) or leaves for the next call.
            let r = unsafe { dav1d::dav1d_send_data(ctx.0, Some(NonNull::from(&mut data))) };
            if r.0 < 0 && !again(r.0) {
                break Err("the AV1 data is corrupt, unsupported or larger than it declares");
            }
        }
        let mut next = Picture(Dav1dPicture::default());
        // SAFETY: the context is open; `next.0` is an empty picture the decoder fills.
        let r = unsafe { dav1d::dav1d_get_picture(ctx.0, Some(NonNull::from(&mut next.0))) };
        if again(r.0) {
            if data.sz == 0 {
                break if have {
                    Ok(())
                } else {
                    Err("the AV1 data holds no picture (truncated?)")
                };
            }
            continue;
        }
        if r.0 < 0 {
            break Err("the AV1 data is corrupt, unsupported or larger than it declares");
        }
        // The picture kept before this one is unreferenced as it drops.
        pic = next;
        have = true;
        if pick == Pick::First {
            break Ok(());
        }
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
