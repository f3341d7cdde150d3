//! Where an entry lives, the same on disk and in the shared bucket (SPEC §7): with `g` the hex
//! xxh3-128 of the original's key, an original is `{g[0..2]}/{g}/o` and a variant of it
//! `{g[0..2]}/{g}/v-{k}`, `k` being the hex xxh3-128 of the variant's key. Every entry of one
//! source shares the directory (or bucket prefix) `{g[0..2]}/{g}/`, so a purge removes one
//! directory or lists one prefix. Pure: strings in, strings out.

/// The 32 hex digits of the xxh3-128 of `key`.
pub fn hash(key: &str) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
}

/// `{g[0..2]}/{g}`: the directory (or prefix) of every entry of the original `group`.
pub fn group_dir(group: &str) -> String {
    let g = hash(group);
    format!("{}/{g}", &g[..2])
}

/// The file name of `key` inside its group's directory: `o` for the original itself,
/// `v-{k}` for a variant.
pub fn entry_name(group: &str, key: &str) -> String {
    if key == group {
        "o".to_string()
    } else {
        format!("v-{}", hash(key))
    }
}

/// `{g[0..2]}/{g}/o` or `{g[0..2]}/{g}/v-{k}`.
pub fn entry_path(group: &str, key: &str) -> String {
    format!("{}/{}", group_dir(group), entry_name(group, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn originals_and_variants_share_one_prefix() {
        let group = "o|http://h/a.jpg";
        let g = hash(group);
        assert_eq!(g.len(), 32);
        assert!(g
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(entry_path(group, group), format!("{}/{g}/o", &g[..2]));
        let variant = "v2|http://h/a.jpg|w=300|out=webp|q=80,75,60";
        let k = hash(variant);
        assert_eq!(entry_path(group, variant), format!("{}/{g}/v-{k}", &g[..2]));
        assert!(entry_path(group, variant).starts_with(&format!("{}/", group_dir(group))));
        assert_ne!(group_dir(group), group_dir("o|http://h/b.jpg"));
    }

    #[test]
    fn the_hash_is_xxh3_128_of_the_key_bytes() {
        // Pinned: the disk tier and every replica's bucket objects are found by this value,
        // so it must not change between builds.
        assert_eq!(hash(""), "99aa06d3014798d86001c324468d497f");
    }
}
