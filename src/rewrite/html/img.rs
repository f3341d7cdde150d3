//! The `img` element: its URL attributes, then what a rewritten image gains (a generated
//! `srcset` with `sizes`, `width`/`height`, `loading`, `decoding`, `referrerpolicy`), each
//! only when missing, inserted after the last attribute so every written byte stays put (right
//! after `<img` where the tag's end also ends a Markdown HTML block, which they would split).

use super::{super::resolve::push_u32, block_end_at, entities, name_is, Attr, Pass};

/// The attribute names this handler reads. The lazy ones (what lazy-loading scripts read the
/// real image from) stand together, from `data-src` to `data-original-src`.
const NAMES: [&str; 21] = [
    "src",
    "data-src",
    "data-original",
    "data-lazy-src",
    "data-original-src",
    "srcset",
    "data-srcset",
    "sizes",
    "width",
    "height",
    "data-size",
    "data-img-size-val",
    "data-width",
    "data-height",
    "data-original-width",
    "data-original-height",
    "w",
    "h",
    "loading",
    "decoding",
    "referrerpolicy",
];

/// The index of `name` in [`NAMES`], worked out at compile time (a name not there fails the
/// build).
const fn index(name: &str) -> usize {
    let (name, mut i) = (name.as_bytes(), 0);
    while i < NAMES.len() {
        let candidate = NAMES[i].as_bytes();
        let mut same = candidate.len() == name.len();
        let mut j = 0;
        while same && j < name.len() {
            same = candidate[j] == name[j];
            j += 1;
        }
        if same {
            return i;
        }
        i += 1;
    }
    panic!("an img attribute name missing from NAMES")
}

/// [`NAMES`] by name.
mod n {
    use super::index;
    pub const SRC: usize = index("src");
    pub const LAZY_FIRST: usize = index("data-src");
    pub const LAZY_LAST: usize = index("data-original-src");
    pub const SRCSET: usize = index("srcset");
    pub const DATA_SRCSET: usize = index("data-srcset");
    pub const SIZES: usize = index("sizes");
    pub const WIDTH: usize = index("width");
    pub const HEIGHT: usize = index("height");
    pub const DATA_SIZE: usize = index("data-size");
    pub const DATA_IMG_SIZE_VAL: usize = index("data-img-size-val");
    pub const DATA_WIDTH: usize = index("data-width");
    pub const DATA_HEIGHT: usize = index("data-height");
    pub const DATA_ORIGINAL_WIDTH: usize = index("data-original-width");
    pub const DATA_ORIGINAL_HEIGHT: usize = index("data-original-height");
    pub const W: usize = index("w");
    pub const H: usize = index("h");
    pub const LOADING: usize = index("loading");
    pub const DECODING: usize = index("decoding");
    pub const REFERRERPOLICY: usize = index("referrerpolicy");
}

/// Which of [`NAMES`] an attribute called `raw` is, as [`name_is`] compares names.
fn name_of(raw: &[u8]) -> Option<usize> {
    NAMES.iter().position(|n| name_is(raw, n))
}

/// The first attribute of each of [`NAMES`] on one tag.
struct Named<'t> {
    attrs: &'t [Attr],
    first: [u32; NAMES.len()],
}

impl<'t> Named<'t> {
    const NONE: u32 = u32::MAX;

    fn get(&self, name: usize) -> Option<&'t Attr> {
        self.attrs.get(self.first[name] as usize)
    }

    fn has(&self, name: usize) -> bool {
        self.first[name] != Named::NONE
    }
}

impl Pass<'_> {
    /// The `img` whose `<` is at `at`.
    pub(super) fn img(&self, at: usize, attrs: &[Attr]) {
        let mut named = Named {
            attrs,
            first: [Named::NONE; NAMES.len()],
        };
        let (mut src, mut lazy, mut any) = (None, None, false);
        for (i, a) in attrs.iter().enumerate() {
            let Some(name) = name_of(&self.doc[a.name.clone()]) else {
                continue;
            };
            if named.first[name] == Named::NONE {
                named.first[name] = i as u32;
            }
            match name {
                n::SRC => src = self.url(a),
                n::LAZY_FIRST..=n::LAZY_LAST => lazy = self.url(a).or(lazy),
                n::SRCSET | n::DATA_SRCSET => any |= self.srcset(a),
                _ => {}
            }
        }
        if src.is_none() && lazy.is_none() && !any {
            return;
        }
        let number = |name: usize| {
            let a = named.get(name)?;
            self.value(a).and_then(|v| parse_px(&v))
        };
        let pair = |name: usize| {
            let a = named.get(name)?;
            let v = self.value(a)?;
            let (w, h) = v.split_once(',')?;
            Some((parse_px(w)?, parse_px(h)?))
        };
        let intrinsic = pair(n::DATA_SIZE)
            .or_else(|| pair(n::DATA_IMG_SIZE_VAL))
            .or_else(|| Some((number(n::DATA_WIDTH)?, number(n::DATA_HEIGHT)?)))
            .or_else(|| {
                let w = number(n::DATA_ORIGINAL_WIDTH)?;
                Some((w, number(n::DATA_ORIGINAL_HEIGHT)?))
            })
            .or_else(|| Some((number(n::W)?, number(n::H)?)));
        let display = number(n::WIDTH);
        let generate = !named.has(n::SRCSET) && !named.has(n::DATA_SRCSET);
        let rw = self.rw;
        let tag_end = at + 1 + "img".len();
        let last = attrs.iter().map(|a| a.end).max().unwrap_or(tag_end);
        // Added attributes go after the last one, unless that would split the end of a
        // Markdown HTML block (`<![CDATA[><img src=… y]]>`): then right after `<img`.
        let end = if self.markdown && block_end_at(self.doc, last) {
            tag_end
        } else {
            last
        };
        self.out.borrow_mut().edits.edit_with(end..end, |add| {
            let open = |add: &mut String, name: &str| {
                add.push(' ');
                add.push_str(name);
                add.push_str("=\"");
            };
            if let Some(encoded) = lazy.or(src).filter(|_| generate) {
                let intrinsic_w = intrinsic.map(|(w, _)| w);
                let mark = add.len();
                open(add, "srcset");
                if self.generated_srcset(&encoded, intrinsic_w, display, add) {
                    add.push('"');
                    if !named.has(n::SIZES) && !rw.sizes.is_empty() {
                        open(add, "sizes");
                        match display {
                            Some(w) => {
                                push_u32(add, w);
                                add.push_str("px");
                            }
                            None => entities::escape_into(add, &rw.sizes, '"'),
                        }
                        add.push('"');
                    }
                } else {
                    add.truncate(mark);
                }
            }
            if let Some((w, h)) = intrinsic.filter(|_| rw.dimensions) {
                if !named.has(n::WIDTH) && !named.has(n::HEIGHT) {
                    open(add, "width");
                    push_u32(add, w);
                    add.push('"');
                    open(add, "height");
                    push_u32(add, h);
                    add.push('"');
                }
            }
            let mut put = |name: usize, on: bool, value: &str| {
                if on && !named.has(name) {
                    open(add, NAMES[name]);
                    add.push_str(value);
                    add.push('"');
                }
            };
            put(n::LOADING, rw.lazy, "lazy");
            put(n::DECODING, rw.decoding, "async");
            put(n::REFERRERPOLICY, rw.no_referrer, "no-referrer");
        });
    }

    /// Appends the `srcset` for the source that [`super::super::Resolver::encode`] made
    /// `encoded` to `set`, escaped for `"`: `rewrite.widths` below the intrinsic width, then
    /// the original at its own width; `false` (and nothing written) when no width is below.
    /// With a displayed `width` attribute, widths stop at the first one that covers it at 2x:
    /// an emoji shown at 20 px needs no 1280 w candidate.
    fn generated_srcset(
        &self,
        encoded: &str,
        intrinsic: Option<u32>,
        display: Option<u32>,
        set: &mut String,
    ) -> bool {
        let r = &self.rw.resolver;
        let widths = &self.rw.widths;
        let enough = display.and_then(|d| widths.iter().position(|&w| w >= d.saturating_mul(2)));
        let widths = &widths[..enough.map_or(widths.len(), |i| i + 1)];
        let mut below = widths
            .iter()
            .filter(|&&w| intrinsic.is_none_or(|i| w < i))
            .peekable();
        if below.peek().is_none() {
            return false;
        }
        // `srcset::widths` of the (url, width) pairs, the source encoded once for all of them
        let mut first = true;
        let mut candidate = |width: Option<u32>, w: u32| {
            if !first {
                set.push_str(", ");
            }
            first = false;
            r.variant_escaped_into(encoded, width, '"', set);
            set.push(' ');
            push_u32(set, w);
            set.push('w');
        };
        for &w in below {
            candidate(Some(w), w);
        }
        if let Some(i) = intrinsic {
            candidate(None, i);
        }
        true
    }
}

/// The number in `640`, `640px` or ` 640 `; `None` for `100%`, `auto`, `0`.
fn parse_px(v: &str) -> Option<u32> {
    let v = v.trim();
    let v = v.strip_suffix("px").unwrap_or(v);
    v.parse().ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_as_name_is_compares_them() {
        for (i, name) in NAMES.iter().enumerate() {
            assert_eq!(name_of(name.as_bytes()), Some(i), "{name}");
            assert_eq!(
                name_of(name.to_ascii_uppercase().as_bytes()),
                Some(i),
                "{name}"
            );
        }
        for other in [
            "",
            "s",
            "srcx",
            "data-src-",
            "data-original-heights",
            "alt",
            "ſrc",
        ] {
            assert_eq!(name_of(other.as_bytes()), None, "{other}");
        }
    }
}
