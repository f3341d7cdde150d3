//! What a transform will hold in memory, worked out before anything is decoded: from the
//! header's dimensions, the planned output and, for animations, the frames the container
//! declares (counted by walking its blocks, not by decoding them). `work` charges this against
//! `transform.memory_bytes`.
//!
//! The model follows the pipeline's buffers: the decoded source (RGB for JPEG, RGBA otherwise),
//! the resampler's working copies (alpha is premultiplied into a copy, and a large reduction
//! goes through an intermediate image), the output canvas and the encoder's own buffers (JPEG
//! with optimised Huffman tables and WebP keep several bytes a pixel), plus the source bytes.
//! An animation holds the decoder's canvas and current frame, one frame's transform, and, for
//! WebP output, every resized frame twice over (ours, and the encoder's copy until it
//! assembles the file); GIF output is encoded frame by frame. The still of an animated WebP
//! also pays for libwebp's animation decoder, which composes the first frame.

use super::format::ImageFormat;
use super::{avif_read, geometry, webp_read, Job};
use crate::transform::Format;

/// Bytes a transform of `bytes` (`w`×`h` by its header) will hold at its peak.
pub fn job_bytes(bytes: &[u8], job: &Job, (w, h): (u32, u32)) -> u64 {
    let plan = geometry::plan(w, h, &job.transform, job.limits.max_output_px);
    let source = u64::from(w) * u64::from(h);
    let canvas = u64::from(plan.canvas.0) * u64::from(plan.canvas.1);
    let resized = u64::from(plan.resized.0) * u64::from(plan.resized.1);
    let resizing = !plan.is_identity(w, h);
    let channels: u64 = if job.source == ImageFormat::Jpeg {
        3
    } else {
        4
    };
    // A CMYK JPEG is decoded to four samples a pixel, converted to three beside them.
    let cmyk = if job.source == ImageFormat::Jpeg && jpeg_components(bytes) == Some(4) {
        source * 4
    } else {
        0
    };
    // The two-step reduction's intermediate image, three times the target a side.
    let mid = if resizing {
        (resized * 9).min(source) * channels
    } else {
        0
    };
    let working = match (resizing, channels) {
        (false, _) => 0,
        (true, 4) => source * 4 + mid * 2,
        (true, _) => mid,
    };
    let encoder = canvas * encoder_bytes_per_pixel(job.output);
    let frames = if job.output.can_animate() {
        frame_count(bytes, job.source).unwrap_or(1)
    } else {
        1
    };
    let av1 = if job.source == ImageFormat::Avif {
        av1_bytes(bytes, source)
    } else {
        0
    };
    // An animation decoder's canvas and the frame before it, RGBA.
    let decoder = source * 4 * 2;
    // libwebp's animation decoder composes even the first frame that way, beside the copy the
    // still is made from (the decoder takes that path by the same test).
    let webp_animation = if job.source == ImageFormat::Webp && webp_read::is_animated(bytes) {
        decoder
    } else {
        0
    };
    let still = source * channels + cmyk + working + canvas * 4 + encoder + av1 + webp_animation;
    let total = if frames > 1 {
        let frames = frames.min(u64::from(job.limits.max_frames));
        // The resized frames, and libwebp's animation encoder's own copy of each.
        let kept = if job.output == Format::Webp {
            frames * canvas * 4 * 2
        } else {
            0
        };
        decoder + working + canvas * 4 + encoder + kept
    } else {
        still
    };
    total.saturating_add(bytes.len() as u64)
}

/// Bytes that checking a source served as it is holds ([`super::decode::check`]): a JPEG's
/// every scan read at 1/8 scale (up to four samples a pixel), other formats decoded whole in
/// RGBA, with the copy a colour conversion makes.
pub fn check_bytes(bytes: &[u8], format: ImageFormat, (w, h): (u32, u32)) -> u64 {
    let source = u64::from(w) * u64::from(h);
    let pixels = match format {
        ImageFormat::Jpeg => u64::from(w.div_ceil(8)) * u64::from(h.div_ceil(8)) * 4,
        ImageFormat::Avif => source * 4 * 2 + av1_bytes(bytes, source),
        _ => source * 4 * 2,
    };
    pixels.saturating_add(bytes.len() as u64)
}

/// What AV1 decoding holds beside the shown picture (`source` pixels): the decoder's planes
/// for the largest frame a sequence header declares (up to 2 bytes a sample, 4:4:4, plus
/// alpha), and the part of the canvas the tiles are decoded onto that `clap` crops away
/// later, RGBA. The decoder refuses any frame over what is charged here (`avif_read`).
fn av1_bytes(bytes: &[u8], source: u64) -> u64 {
    let decoded = avif_read::footprint(bytes).unwrap_or(avif_read::Footprint {
        canvas: source,
        frame: source,
    });
    decoded.frame * 8 + decoded.canvas.saturating_sub(source) * 4
}

/// Components a JPEG's frame header declares.
fn jpeg_components(bytes: &[u8]) -> Option<u8> {
    super::header::jpeg_frame(bytes).map(|sof| sof[5])
}

/// What each encoder keeps per output pixel besides the pixels it is given.
fn encoder_bytes_per_pixel(f: Format) -> u64 {
    match f {
        // Every block's coefficients, kept for the optimised Huffman tables.
        Format::Jpeg => 6,
        // libwebp's YUV planes and analysis buffers.
        Format::Webp => 6,
        // YCbCr 4:2:0 planes plus rav1e's reconstruction and analysis.
        Format::Avif => 6,
        // A quantized copy and the frame's LZW state.
        Format::Gif => 2,
        // Filtered rows and the compressed output.
        Format::Png => 1,
    }
}

/// The frames a GIF or WebP declares, counted from its structure without decoding pixels;
/// `None` for other formats. A file cut short counts the frames it has.
pub(crate) fn frame_count(bytes: &[u8], format: ImageFormat) -> Option<u64> {
    match format {
        ImageFormat::Gif => Some(gif_frames(bytes)),
        ImageFormat::Webp => Some(webp_frames(bytes)),
        _ => None,
    }
}

/// Image descriptors in a GIF: after the header and global colour table, extensions and
/// images are each a few fixed bytes and a chain of length-prefixed sub-blocks.
fn gif_frames(b: &[u8]) -> u64 {
    // Past the sub-blocks starting at `i`; `None` when the file ends inside them.
    let sub_blocks = |mut i: usize| loop {
        let len = usize::from(*b.get(i)?);
        i += 1;
        if len == 0 {
            return Some(i);
        }
        i += len;
    };
    let table = |flags: u8| {
        if flags & 0x80 != 0 {
            3usize << ((flags & 7) + 1)
        } else {
            0
        }
    };
    let Some(&screen) = b.get(10) else {
        return 0;
    };
    let mut i = 13 + table(screen);
    let mut frames = 0;
    loop {
        let next = match b.get(i) {
            Some(0x21) => sub_blocks(i + 2),
            Some(0x2C) => {
                frames += 1;
                b.get(i + 9)
                    .and_then(|&flags| sub_blocks(i + 10 + table(flags) + 1))
            }
            _ => None, // the trailer, or anything else: the frames so far
        };
        match next {
            Some(n) => i = n,
            None => return frames,
        }
    }
}

/// `ANMF` chunks in a WebP's RIFF container (0 for a still WebP).
fn webp_frames(b: &[u8]) -> u64 {
    let mut i = 12;
    let mut frames = 0;
    while let Some(head) = b.get(i..i + 8) {
        if &head[..4] == b"ANMF" {
            frames += 1;
        }
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        i = i.saturating_add(8).saturating_add(len + (len & 1));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{image::Limits, transform::Transform};

    fn job(source: ImageFormat, output: Format, w: Option<u32>) -> Job {
        Job {
            source,
            transform: Transform {
                w,
                ..Transform::default()
            },
            output,
            quality: 80,
            limits: Limits::default(),
        }
    }

    #[test]
    fn frames_are_counted_from_the_container() {
        let fixture = crate::image::fixture;
        for (name, format) in [
            ("anim.gif", ImageFormat::Gif),
            ("anim.webp", ImageFormat::Webp),
        ] {
            let bytes = fixture(name);
            let mut decoded = 0;
            super::super::decode::frames(&bytes, format, &Limits::default(), |_, _| {
                decoded += 1;
                Ok(())
            })
            .unwrap();
            assert!(decoded > 1, "{name}");
            assert_eq!(frame_count(&bytes, format), Some(decoded), "{name}");
            let cut = &bytes[..bytes.len() / 2];
            assert!(
                frame_count(cut, format).unwrap() <= decoded,
                "{name} cut short"
            );
        }
        assert_eq!(
            frame_count(&fixture("lossy.webp"), ImageFormat::Webp),
            Some(0)
        );
        assert_eq!(frame_count(b"GIF89a", ImageFormat::Gif), Some(0));
    }

    #[test]
    fn an_animation_kept_for_webp_costs_every_frame_and_streamed_gif_does_not() {
        // The first bytes of a GIF with 200 one-pixel frames on a 1000×1000 screen.
        let mut gif = b"GIF89a\xE8\x03\xE8\x03\x80\0\0\0\0\0\xFF\xFF\xFF".to_vec();
        for _ in 0..200 {
            gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4C, 0x01, 0]);
        }
        gif.push(0x3B);
        assert_eq!(frame_count(&gif, ImageFormat::Gif), Some(200));
        let size = (1000, 1000);
        let webp = job_bytes(&gif, &job(ImageFormat::Gif, Format::Webp, None), size);
        let streamed = job_bytes(&gif, &job(ImageFormat::Gif, Format::Gif, None), size);
        assert!(webp > 800_000_000, "{webp}");
        assert!(streamed < 30_000_000, "{streamed}");
    }

    /// Regression: the first frame of an animated WebP was charged like a still WebP's
    /// decode, though libwebp's animation decoder holds two canvases of its own beside it.
    #[test]
    fn the_still_of_an_animated_webp_pays_for_the_animation_decoder() {
        let anim = crate::image::fixture("anim.webp");
        let still = crate::image::fixture("lossy.webp");
        let size = (1000, 1000);
        let charge = |bytes: &[u8]| {
            let b = job_bytes(bytes, &job(ImageFormat::Webp, Format::Jpeg, None), size);
            b - bytes.len() as u64
        };
        assert_eq!(charge(&anim) - charge(&still), 1000 * 1000 * 4 * 2);
    }

    #[test]
    fn a_still_costs_its_source_and_its_output() {
        let big = job_bytes(
            &[],
            &job(ImageFormat::Jpeg, Format::Jpeg, None),
            (5000, 3000),
        );
        let small = job_bytes(
            &[],
            &job(ImageFormat::Jpeg, Format::Jpeg, Some(500)),
            (5000, 3000),
        );
        assert!(big > 15_000_000 * (3 + 4), "{big}");
        assert!(small < big / 2, "{small} vs {big}");
    }
}
