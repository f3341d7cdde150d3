//! The progressive-JPEG scan selector (`dc_only_at_eighth`): never panics; what it returns is
//! a JPEG (SOI … EOI) no longer than its input, made of the input's segments, with nothing
//! left to drop; and libjpeg-turbo reads it at 1/8 without a memory error (address sanitizer).
#![no_main]

use imgrelay::fuzz::dc_only_at_eighth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(out) = dc_only_at_eighth(data) else {
        return;
    };
    assert!(out.len() < data.len(), "nothing was dropped");
    assert!(out.starts_with(&[0xFF, 0xD8]) && out.ends_with(&[0xFF, 0xD9]));
    assert_eq!(dc_only_at_eighth(&out), None, "a second pass dropped more");
    // libjpeg-turbo reports bad data as an error, never a crash; the scaled decode must not
    // read out of bounds either way (run under the address sanitizer).
    // (`mozjpeg` reports libjpeg's errors by unwinding, which is caught here.)
    let _ = std::panic::catch_unwind(|| decode_at_eighth(&out));
});

fn decode_at_eighth(jpeg: &[u8]) {
    let Ok(mut d) = mozjpeg::Decompress::new_mem(jpeg) else {
        return;
    };
    // libjpeg holds a progressive file's coefficients for the whole image: bound the full
    // size, as `decode.rs` does with `max_source_pixels` before it gets here.
    if d.width() * d.height() > 1 << 20 {
        return;
    }
    d.scale(1);
    let Ok(mut s) = d.rgb() else {
        return;
    };
    let _: Result<Vec<u8>, _> = s.read_scanlines();
}
