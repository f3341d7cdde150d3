//! Scan selection for progressive JPEGs decoded at 1/8 scale: a copy of the file without the
//! AC scans of the components whose inverse DCT will be 1×1 there.
//!
//! At scale 1/8, libjpeg-turbo gives every component sampled at the image's maximum factors a
//! 1×1 inverse DCT, which reads the DC coefficient alone (chroma that is subsampled gets a
//! larger IDCT instead, so that it needs no upsampling, and keeps its AC scans). A progressive
//! file sends each AC band of such a component in scans of their own (the standard allows only
//! one component per AC scan), and those scans — above all the refinement ones — are where the
//! decoder spends its time. Dropping them produces the very pixels the full file gives at 1/8,
//! for a fraction of the entropy decoding (`decode.rs` turns block smoothing off, which would
//! only estimate the AC coefficients the 1×1 IDCT never reads).
//!
//! Anything unexpected (another SOF, a truncated segment, a scan naming an unknown component)
//! answers `None`, and the caller decodes the file as it is.

/// The file without the AC scans a 1/8 decode never reads, or `None` when the file is not a
/// Huffman progressive JPEG, has no such scan, or does not parse.
pub fn dc_only_at_eighth(b: &[u8]) -> Option<Vec<u8>> {
    if b.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut one_by_one: Vec<u8> = Vec::new(); // component ids with a 1×1 IDCT at 1/8
    let mut progressive = false;
    let mut dropped = false;
    let mut i = 2;
    loop {
        // Fill bytes (0xFF runs) may precede any marker.
        while b.get(i..i + 2)? == [0xFF, 0xFF] {
            i += 1;
        }
        if *b.get(i)? != 0xFF {
            return None;
        }
        let marker = *b.get(i + 1)?;
        if marker == 0xD9 {
            out.extend_from_slice(&b[i..i + 2]);
            return (progressive && dropped).then_some(out);
        }
        let len = usize::from(u16::from_be_bytes([*b.get(i + 2)?, *b.get(i + 3)?]));
        let segment = b.get(i..i + 2 + len)?;
        let body = segment.get(4..)?;
        match marker {
            0xC2 => {
                progressive = true;
                one_by_one = one_by_one_components(body)?;
            }
            // Any other frame type (baseline, extended, lossless, arithmetic coding).
            0xC0 | 0xC1 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            _ => {}
        }
        let next = if marker == 0xDA {
            entropy_end(b, i + 2 + len)?
        } else {
            i + 2 + len
        };
        if marker == 0xDA && progressive && skippable_scan(body, &one_by_one)? {
            dropped = true;
        } else {
            out.extend_from_slice(&b[i..next]);
        }
        i = next;
    }
}

/// Ids of the components that libjpeg-turbo decodes with a 1×1 IDCT at scale 1/8: it doubles a
/// component's IDCT size while the maximum sampling factors are a multiple of twice the
/// component's own, in both directions.
fn one_by_one_components(sof: &[u8]) -> Option<Vec<u8>> {
    let n = usize::from(*sof.get(5)?);
    let comps: Vec<(u8, u8, u8)> = (0..n)
        .map(|k| {
            let c = sof.get(6 + 3 * k..9 + 3 * k)?;
            Some((c[0], c[1] >> 4, c[1] & 0x0F))
        })
        .collect::<Option<_>>()?;
    let max_h = comps.iter().map(|c| c.1).max()?;
    let max_v = comps.iter().map(|c| c.2).max()?;
    if comps.iter().any(|c| c.1 == 0 || c.2 == 0) {
        return None;
    }
    Some(
        comps
            .iter()
            .filter(|(_, h, v)| max_h % (2 * h) != 0 || max_v % (2 * v) != 0)
            .map(|c| c.0)
            .collect(),
    )
}

/// Whether a scan (its SOS body) carries only AC coefficients of one 1×1 component. A scan
/// whose header libjpeg would refuse is `None`: the file is then decoded as it is, and refused
/// as it is at every other scale (one file, one answer), not served without the bad scan.
fn skippable_scan(sos: &[u8], one_by_one: &[u8]) -> Option<bool> {
    let ns = usize::from(*sos.first()?);
    let ss = *sos.get(1 + 2 * ns)?;
    if !(ns == 1 && ss > 0 && one_by_one.contains(sos.get(1)?)) {
        return Some(false);
    }
    // libjpeg's checks on a progressive AC scan (its `start_pass` for progressive Huffman).
    let se = *sos.get(2 + 2 * ns)?;
    let a = *sos.get(3 + 2 * ns)?;
    let (ah, al) = (a >> 4, a & 0x0F);
    let valid = ss <= se && se <= 63 && (ah == 0 || al + 1 == ah) && al <= 13;
    valid.then_some(true)
}

/// Index of the marker that ends the entropy-coded data starting at `from`: the first 0xFF
/// followed by neither a stuffed zero, a restart marker nor another 0xFF.
fn entropy_end(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        i += memchr::memchr(0xFF, b.get(i..)?)?;
        match *b.get(i + 1)? {
            0x00 | 0xD0..=0xD7 => i += 2,
            0xFF => i += 1,
            _ => return Some(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scans(b: &[u8]) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        let mut i = 2;
        while i + 4 <= b.len() && b[i + 1] != 0xD9 {
            let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
            if b[i + 1] == 0xDA {
                found.push(b[i + 4..i + 2 + len].to_vec());
                i = entropy_end(b, i + 2 + len).unwrap();
            } else {
                i += 2 + len;
            }
        }
        found
    }

    #[test]
    fn subsampled_luma_loses_its_ac_scans_and_chroma_keeps_them() {
        let file = std::fs::read("tests/fixtures/photo-progressive.jpg").unwrap();
        let kept = scans(&dc_only_at_eighth(&file).unwrap());
        let all = scans(&file);
        assert_eq!(all.len(), 10);
        // 4:2:0: Y (id 1) has the maximum factors → 1×1; Cb and Cr get a 2×2 IDCT.
        assert!(kept.iter().all(|s| !(s[0] == 1 && s[1] == 1 && s[3] > 0)));
        assert_eq!(
            kept.len(),
            6,
            "2 DC scans and 2 AC scans for each chroma component"
        );
        assert!(kept.iter().any(|s| s[0] == 1 && s[1] == 2 && s[3] > 0));
    }

    #[test]
    fn the_kept_scans_decode_to_the_same_pixels_at_one_eighth() {
        let file = std::fs::read("tests/fixtures/photo-progressive.jpg").unwrap();
        let decode = |bytes: &[u8], smoothing: bool| {
            let mut d = mozjpeg::Decompress::new_mem(bytes).unwrap();
            d.scale(1);
            d.do_block_smoothing(smoothing);
            let mut s = d.rgb().unwrap();
            let px: Vec<u8> = s.read_scanlines().unwrap();
            (s.width(), s.height(), px)
        };
        let full = decode(&file, true);
        assert_eq!((full.0, full.1), (60, 38));
        assert_eq!(full, decode(&dc_only_at_eighth(&file).unwrap(), false));
    }

    #[test]
    fn baseline_and_malformed_files_are_left_alone() {
        let baseline = std::fs::read("tests/fixtures/photo.jpg").unwrap();
        assert_eq!(dc_only_at_eighth(&baseline), None);
        let file = std::fs::read("tests/fixtures/photo-progressive.jpg").unwrap();
        for cut in [0, 1, 2, 3, 20, file.len() / 2, file.len() - 2] {
            assert_eq!(dc_only_at_eighth(&file[..cut]), None, "cut at {cut}");
        }
        let mut bad_length = file.clone();
        bad_length[4] = 0xFF; // the first segment claims to run past the end
        bad_length[5] = 0xFF;
        assert_eq!(dc_only_at_eighth(&bad_length[..2000]), None);
    }
}
