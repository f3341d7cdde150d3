//! Byte search over the short distances markup is made of.
//!
//! Between two tags of an article there are often only a few bytes (`</a></p>`), an attribute
//! value or a front matter line is tens of bytes, and `memchr` pays a dispatch and a set-up on
//! every call that only long haystacks earn back. [`find`] looks at the first 32 bytes a word
//! at a time, inline, and leaves only a longer rest to `memchr`.

/// Bytes looked at a word at a time before `memchr` takes over.
const NEAR: usize = 32;

/// The index of the first `needle` in `hay`, as `memchr::memchr` gives it.
#[inline]
pub fn find(needle: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = LO * u64::from(needle);
    let mut at = 0;
    while at < NEAR {
        let Some(word) = hay.get(at..at + 8) else {
            // fewer than 8 bytes left
            return hay[at..].iter().position(|&c| c == needle).map(|i| at + i);
        };
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        // a zero byte of `x` is a match; the lowest flagged byte is the first zero (a borrow
        // can only flag bytes above a real zero)
        let x = u64::from_le_bytes(bytes) ^ pattern;
        let zero = x.wrapping_sub(LO) & !x & HI;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    memchr::memchr(needle, &hay[at..]).map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_memchr_finds() {
        // every length up to past the word-at-a-time part, the needle at every position, and
        // bytes that differ from it only in the high bit or by one
        for needle in [b'<', b'"', b'\n', 0x00, 0x80, 0xff] {
            for len in 0..80 {
                for at in 0..=len {
                    let mut hay: Vec<u8> = (0..len)
                        .map(|i| match i % 3 {
                            0 => needle ^ 0x80,
                            1 => needle.wrapping_add(1),
                            _ => needle.wrapping_sub(1),
                        })
                        .collect();
                    if at < len {
                        hay[at] = needle;
                        if at + 3 < len {
                            hay[at + 3] = needle;
                        }
                    }
                    assert_eq!(
                        find(needle, &hay),
                        memchr::memchr(needle, &hay),
                        "{needle} {len} {at}"
                    );
                }
            }
        }
    }
}
