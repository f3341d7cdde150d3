//! Image decoding under configured limits. Every sniffed format goes through the still
//! decoders (general and shrink-on-load) and, when animated, the frame decoder, with limits
//! small enough for the fuzzer to cross. Asserted: nothing is decoded past
//! `max_source_pixels` (and no pixel buffer is larger than what the reported size needs),
//! frames stop at `max_frames` and `max_animation_pixels`; libFuzzer's `-malloc_limit_mb`
//! catches any allocation the header checks let through.
#![no_main]

use imgrelay::fuzz::{frames, is_animated, still, still_for, ImageFormat, Limits, Transform};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_source_pixels: 1 << 20,
    max_frames: 8,
    max_animation_pixels: 1 << 22,
    max_output_px: 512,
};

fn check(w: u32, h: u32, channels: u8, len: usize) {
    let pixels = u64::from(w) * u64::from(h);
    assert!(w > 0 && h > 0, "{w}x{h}");
    assert!(pixels <= LIMITS.max_source_pixels, "decoded {w}x{h}");
    assert_eq!(
        len as u64,
        pixels * u64::from(channels),
        "{w}x{h}x{channels}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let Some(format) = ImageFormat::sniff(bytes) else {
        return;
    };
    if let Ok(px) = still(bytes, format, &LIMITS) {
        check(px.width, px.height, px.channels, px.data.len());
    }
    let t = Transform {
        w: Some(u32::from(selector) + 1),
        ..Transform::default()
    };
    if let Ok(d) = still_for(bytes, format, &LIMITS, &t) {
        check(d.px.width, d.px.height, d.px.channels, d.px.data.len());
        // What libjpeg reads, whichever decoder ran: a JPEG past the limit is refused.
        // (`mozjpeg` reports libjpeg's errors by unwinding, which is caught here.)
        let header = std::panic::catch_unwind(|| {
            let j = mozjpeg::Decompress::new_mem(bytes).ok()?;
            Some((j.width() as u64, j.height() as u64))
        });
        if let (ImageFormat::Jpeg, Ok(Some((w, h)))) = (format, header) {
            assert!(w * h <= LIMITS.max_source_pixels, "libjpeg decoded {w}x{h}");
        }
        let full = u64::from(d.full.0) * u64::from(d.full.1);
        assert!(full <= LIMITS.max_source_pixels, "planned on {:?}", d.full);
        // Shrink-on-load only shrinks: pixels larger than the size the limits were checked
        // on mean the decoder read other dimensions than the header check did.
        assert!(
            d.px.width <= d.full.0 && d.px.height <= d.full.1,
            "decoded {}x{} of a {:?} source",
            d.px.width,
            d.px.height,
            d.full
        );
    }
    if is_animated(bytes, format, &LIMITS) {
        let mut n = 0u64;
        let mut total = 0u64;
        let _ = frames(bytes, format, &LIMITS, |px, _delay| {
            n += 1;
            total += u64::from(px.width) * u64::from(px.height);
            check(px.width, px.height, px.channels, px.data.len());
            assert!(n <= u64::from(LIMITS.max_frames), "frame {n}");
            assert!(
                total <= LIMITS.max_animation_pixels,
                "{total} pixels of frames"
            );
            Ok(())
        });
    }
});
