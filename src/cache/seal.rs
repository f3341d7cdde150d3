//! The shared tier's keyed MAC (SPEC §7): every object in the bucket ends with
//! HMAC-SHA256(`cache.shared.key`, object), so an object is only served when a replica holding
//! the key wrote it. The entry's own checksum catches damage, not a writer: anyone with write
//! access to the bucket can recompute an xxh3, nobody without the key can recompute this tag.
//! The tag covers the whole encoded entry (its full key, header and body), so an object copied
//! under another key's path also fails, at the entry's key check. Pure: bytes in, bytes out.

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Bytes of the tag appended to each object.
pub const TAG_LEN: usize = 32;
/// Bound into every tag, so a tag made for anything else with the same key never matches.
const CONTEXT: &[u8] = b"imgrelay shared cache object v1\0";

/// Seals and opens objects with one key.
#[derive(Clone)]
pub struct Seal {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal(***)")
    }
}

impl Seal {
    pub fn new(key: &[u8]) -> Seal {
        // HMAC takes keys of any length; the error type exists for fixed-size MACs only.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(CONTEXT);
        Seal { mac }
    }

    fn tag(&self, object: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(object);
        mac.finalize().into_bytes().into()
    }

    /// `object` with its tag appended.
    pub fn seal(&self, mut object: Vec<u8>) -> Vec<u8> {
        let tag = self.tag(&object);
        object.extend_from_slice(&tag);
        object
    }

    /// The object without its tag when the tag is this key's (compared in constant time);
    /// `None` for a forged, damaged, cut or foreign-keyed object.
    pub fn open(&self, sealed: Bytes) -> Option<Bytes> {
        let split = sealed.len().checked_sub(TAG_LEN)?;
        let expected = self.tag(&sealed[..split]);
        bool::from(expected.ct_eq(&sealed[split..])).then(|| sealed.slice(..split))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_key_opens_an_intact_object() {
        let seal = Seal::new(b"the fleet's key: 32 bytes or more");
        let sealed = Bytes::from(seal.seal(b"header and body".to_vec()));
        assert_eq!(sealed.len(), 15 + TAG_LEN);
        assert_eq!(
            seal.open(sealed.clone()).as_deref(),
            Some(&b"header and body"[..])
        );

        let rotated = Seal::new(b"the fleet's next key: 32 bytes++");
        assert_eq!(rotated.open(sealed.clone()), None, "a rotated key");
        for i in [0, 7, 14, 15, sealed.len() - 1] {
            let mut bad = sealed.to_vec();
            bad[i] ^= 0x01;
            assert_eq!(seal.open(Bytes::from(bad)), None, "flipped byte {i}");
        }
        for cut in [0, 1, TAG_LEN - 1, TAG_LEN, sealed.len() - 1] {
            assert_eq!(seal.open(sealed.slice(..cut)), None, "cut at {cut}");
        }
        let mut longer = sealed.to_vec();
        longer.push(0);
        assert_eq!(seal.open(Bytes::from(longer)), None, "trailing byte");
        // The empty object seals too (no entry is empty, but nothing here panics on it).
        let empty = Bytes::from(seal.seal(Vec::new()));
        assert_eq!(seal.open(empty).as_deref(), Some(&b""[..]));
    }
}
