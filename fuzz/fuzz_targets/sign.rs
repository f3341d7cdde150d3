//! Signature verification: any target, any keys. A target is accepted only with the one `s`
//! the key gives its message (no second spelling of a signature verifies), and what
//! `sign_target` writes always verifies.
#![no_main]

use imgrelay::fuzz::{sign_target, signature, verify, Secret};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First line: the key; the rest: the request target.
    let text = String::from_utf8_lossy(data);
    let (key, target) = text.split_once('\n').unwrap_or(("", &text));
    let keys = [
        Secret(key.to_string()),
        Secret("fuzz-key-0123456789abcdef0123456789".into()),
    ];
    if verify(&keys, target).is_ok() {
        let (m, s) = target
            .rsplit_once("&s=")
            .unwrap_or_else(|| panic!("{target:?}"));
        let expected: Vec<String> = keys
            .iter()
            .map(|k| signature(k.expose().as_bytes(), m.as_bytes()))
            .collect();
        assert!(
            expected.iter().any(|e| e == s),
            "{target:?} verified with s={s:?}"
        );
    }
    for k in &keys {
        let signed = sign_target(k, target);
        verify(std::slice::from_ref(k), &signed).unwrap_or_else(|e| panic!("{signed:?}: {e}"));
    }
});
