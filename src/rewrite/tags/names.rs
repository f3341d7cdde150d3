//! Tag names as `lol_html` 3 compares them: its five-bits-a-letter name hash, the hashes of
//! the names the tokenizer and the handlers decide on, and name equality (hash, else bytes).

/// `lol_html`'s `LocalNameHash` of a tag name: five bits per letter (any case) or digit 1-6,
/// the low 64 bits kept; any other byte, or a name grown past the hash, gives [`NO_HASH`]. Two
/// names with a hash are the same tag when their hashes are equal; two without one when their
/// bytes are equal in any case.
pub(in crate::rewrite) const fn name_hash(name: &[u8]) -> u64 {
    let mut h = 0u64;
    let mut i = 0;
    while i < name.len() {
        let c = name[i];
        h = if h >> 59 != 0 {
            NO_HASH
        } else if c.is_ascii_alphabetic() {
            (h << 5) | ((c as u64 & 0x1f) + 5)
        } else if matches!(c, b'1'..=b'6') {
            (h << 5) | ((c as u64 & 0x0f) - 1)
        } else {
            NO_HASH
        };
        i += 1;
    }
    h
}

pub(in crate::rewrite) const NO_HASH: u64 = !0;

/// Hashes of the tag names the tokenizer and the handlers decide on.
pub(in crate::rewrite) mod tag {
    use super::name_hash;
    macro_rules! tags {
        ($($name:ident = $s:literal),+ $(,)?) => { $(pub const $name: u64 = name_hash($s);)+ };
    }
    tags!(
        A = b"a",
        IMG = b"img",
        SOURCE = b"source",
        VIDEO = b"video",
        META = b"meta",
        LINK = b"link",
        PICTURE = b"picture",
        NOSCRIPT = b"noscript",
        SVG = b"svg",
        MATH = b"math",
        FONT = b"font",
        P = b"p",
        BR = b"br",
        SCRIPT = b"script",
        PLAINTEXT = b"plaintext",
        TEXTAREA = b"textarea",
        TITLE = b"title",
        STYLE = b"style",
        IFRAME = b"iframe",
        XMP = b"xmp",
        NOEMBED = b"noembed",
        NOFRAMES = b"noframes",
        DESC = b"desc",
        FOREIGN_OBJECT = b"foreignObject",
        MI = b"mi",
        MO = b"mo",
        MN = b"mn",
        MS = b"ms",
        MTEXT = b"mtext",
    );
    /// Start tags that end foreign content (HTML's "breakout" list, as `lol_html` has it).
    pub const LEAVE_FOREIGN: &[u64] = &[
        name_hash(b"b"),
        name_hash(b"big"),
        name_hash(b"blockquote"),
        name_hash(b"body"),
        BR,
        name_hash(b"center"),
        name_hash(b"code"),
        name_hash(b"dd"),
        name_hash(b"div"),
        name_hash(b"dl"),
        name_hash(b"dt"),
        name_hash(b"em"),
        name_hash(b"embed"),
        name_hash(b"h1"),
        name_hash(b"h2"),
        name_hash(b"h3"),
        name_hash(b"h4"),
        name_hash(b"h5"),
        name_hash(b"h6"),
        name_hash(b"head"),
        name_hash(b"hr"),
        name_hash(b"i"),
        IMG,
        name_hash(b"li"),
        name_hash(b"listing"),
        name_hash(b"menu"),
        META,
        name_hash(b"nobr"),
        name_hash(b"ol"),
        P,
        name_hash(b"pre"),
        name_hash(b"ruby"),
        name_hash(b"s"),
        name_hash(b"small"),
        name_hash(b"span"),
        name_hash(b"strong"),
        name_hash(b"strike"),
        name_hash(b"sub"),
        name_hash(b"sup"),
        name_hash(b"table"),
        name_hash(b"tt"),
        name_hash(b"u"),
        name_hash(b"ul"),
        name_hash(b"var"),
    ];
    /// Elements `lol_html`'s stack never holds (HTML void elements and a few obsolete ones).
    pub const VOID: &[u64] = &[
        name_hash(b"area"),
        name_hash(b"base"),
        name_hash(b"basefont"),
        name_hash(b"bgsound"),
        BR,
        name_hash(b"col"),
        name_hash(b"embed"),
        name_hash(b"hr"),
        IMG,
        name_hash(b"input"),
        name_hash(b"keygen"),
        LINK,
        META,
        name_hash(b"param"),
        SOURCE,
        name_hash(b"track"),
        name_hash(b"wbr"),
    ];
}

/// Whether two tag names are the same tag for `lol_html` (`LocalName` equality).
pub(super) fn same_tag(a: &[u8], a_hash: u64, b: &[u8], b_hash: u64) -> bool {
    match (a_hash, b_hash) {
        (NO_HASH, NO_HASH) => a.eq_ignore_ascii_case(b),
        _ => a_hash == b_hash,
    }
}
