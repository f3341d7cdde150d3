//! The disk-cache entry decoder: whatever bytes a file holds, an entry is returned only when
//! they are exactly what `Entry::encode` writes for that entry and key; an encoded entry with
//! any byte changed, cut short, extended or read under another key is rejected.
#![no_main]

use imgrelay::fuzz::Entry;
use libfuzzer_sys::fuzz_target;

const KEY: &str = "v|http://h/a.jpg|w=640&output=webp";

fuzz_target!(|data: &[u8]| {
    // Any file: only an exact encoding decodes.
    if let Some(e) = Entry::decode(data, KEY) {
        assert!(
            e.encode(KEY) == data,
            "a decoded entry does not re-encode to its file"
        );
    }
    // A well-formed entry built from the input, then damaged where the input says.
    if data.len() < 12 {
        return;
    }
    let (head, body) = data.split_at(12);
    let text = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
    let entry = Entry {
        body: body.to_vec().into(),
        mime: text.chars().take(10).collect(),
        etag: text.clone(),
        stored: u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]])),
        expires: u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]])),
        negative: u16::from_le_bytes([head[8], head[9]]),
        upstream_etag: String::new(),
        upstream_last_modified: text,
    };
    let good = entry.encode(KEY);
    assert_eq!(Entry::decode(&good, KEY).as_ref(), Some(&entry));
    assert_eq!(
        Entry::decode(&good, "o|http://h/a.jpg"),
        None,
        "foreign key"
    );
    let at = usize::from(u16::from_le_bytes([head[10], head[11]])) % good.len();
    let mut flipped = good.clone();
    flipped[at] ^= head[11] | 1;
    assert_eq!(Entry::decode(&flipped, KEY), None, "byte {at} changed");
    assert_eq!(Entry::decode(&good[..at], KEY), None, "cut at {at}");
    let mut longer = good.clone();
    longer.push(head[0]);
    assert_eq!(Entry::decode(&longer, KEY), None, "a byte appended");
});
