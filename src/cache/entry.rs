//! A cache entry and its on-disk encoding. Pure: bytes in, bytes out.
//!
//! Layout (little-endian): magic `IMGRELAY`, format version (u32), xxh3-64 checksum of
//! everything after it, body length (u64), stored and expiry times (unix seconds, u64), the
//! negative status (u16, 0 = a real image), then length-prefixed strings (full key, content
//! type, ETag, upstream ETag, upstream Last-Modified) and the body. A file that is short, long,
//! foreign, of another version or fails its checksum decodes to `None`.

use bytes::Bytes;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MAGIC: &[u8; 8] = b"IMGRELAY";
/// Bump when the layout changes: older files then read as misses and are removed.
pub const FORMAT_VERSION: u32 = 1;

/// One cached answer: an original, a variant, or a negative result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub body: Bytes,
    pub mime: String,
    /// Our strong ETag of `body` (quoted), stable across restarts.
    pub etag: String,
    pub stored: u64,
    /// Fresh until (unix seconds).
    pub expires: u64,
    /// 0 for an image; else the status of a cached failure (404 gone, 415 not an image).
    pub negative: u16,
    /// Validators from the origin, for revalidation of originals.
    pub upstream_etag: String,
    pub upstream_last_modified: String,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Entry {
    pub fn is_fresh(&self, now: u64) -> bool {
        now < self.expires
    }

    /// Seconds of freshness left.
    pub fn remaining(&self, now: u64) -> Duration {
        Duration::from_secs(self.expires.saturating_sub(now))
    }

    /// Serialises with `key`, which a read must match.
    pub fn encode(&self, key: &str) -> Vec<u8> {
        let strings = [
            key,
            &self.mime,
            &self.etag,
            &self.upstream_etag,
            &self.upstream_last_modified,
        ];
        let mut out = Vec::with_capacity(
            64 + strings.iter().map(|s| s.len() + 4).sum::<usize>() + self.body.len(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&[0; 8]); // checksum, filled below
        out.extend_from_slice(&(self.body.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.stored.to_le_bytes());
        out.extend_from_slice(&self.expires.to_le_bytes());
        out.extend_from_slice(&self.negative.to_le_bytes());
        for s in strings {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&self.body);
        let sum = xxhash_rust::xxh3::xxh3_64(&out[20..]);
        out[12..20].copy_from_slice(&sum.to_le_bytes());
        out
    }

    /// Parses and verifies a file written by [`Entry::encode`] for `key`.
    pub fn decode(b: &[u8], key: &str) -> Option<Entry> {
        Entry::decode_owned(Bytes::copy_from_slice(b), key)
    }

    /// Like [`Entry::decode`], keeping the body as a slice of `file` (no copy on a disk hit).
    pub fn decode_owned(file: Bytes, key: &str) -> Option<Entry> {
        let b: &[u8] = &file;
        if b.len() < 46 || &b[..8] != MAGIC {
            return None;
        }
        let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
        let u64_at = |o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
        if u32_at(8)? != FORMAT_VERSION || u64_at(12)? != xxhash_rust::xxh3::xxh3_64(&b[20..]) {
            return None;
        }
        let body_len = usize::try_from(u64_at(20)?).ok()?;
        let (stored, expires) = (u64_at(28)?, u64_at(36)?);
        let negative = u16::from_le_bytes(b.get(44..46)?.try_into().ok()?);
        let mut at = 46;
        let mut next = || -> Option<String> {
            let len = u32_at(at)? as usize;
            let s = std::str::from_utf8(b.get(at + 4..at + 4 + len)?)
                .ok()?
                .to_string();
            at += 4 + len;
            Some(s)
        };
        let (stored_key, mime, etag, upstream_etag, upstream_last_modified) =
            (next()?, next()?, next()?, next()?, next()?);
        if stored_key != key || b.len() - at != body_len {
            return None;
        }
        Some(Entry {
            body: file.slice(at..),
            mime,
            etag,
            stored,
            expires,
            negative,
            upstream_etag,
            upstream_last_modified,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry {
            body: Bytes::from_static(b"\xFF\xD8\xFF\xE0 pretend jpeg"),
            mime: "image/jpeg".into(),
            etag: "\"abc\"".into(),
            stored: 1_700_000_000,
            expires: 1_700_003_600,
            negative: 0,
            upstream_etag: "W/\"up\"".into(),
            upstream_last_modified: String::new(),
        }
    }

    #[test]
    fn round_trips() {
        let e = sample();
        assert_eq!(
            Entry::decode(&e.encode("o|http://h/a.jpg"), "o|http://h/a.jpg"),
            Some(e)
        );
    }

    #[test]
    fn every_corruption_is_a_miss() {
        let key = "o|http://h/a.jpg";
        let good = sample().encode(key);
        assert_eq!(
            Entry::decode(&good, "o|http://h/b.jpg"),
            None,
            "foreign key"
        );
        for cut in [0, 10, 45, 60, good.len() - 1] {
            assert_eq!(Entry::decode(&good[..cut], key), None, "truncated at {cut}");
        }
        for i in [0, 9, 13, 21, 30, 50, good.len() - 3] {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert_eq!(Entry::decode(&bad, key), None, "flipped byte {i}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(Entry::decode(&longer, key), None, "trailing bytes");
        let mut old = good.clone();
        old[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(Entry::decode(&old, key), None, "old version");
        assert_eq!(
            Entry::decode(b"GIF89a garbage garbage garbage garbage garbage!", key),
            None
        );
    }
}
