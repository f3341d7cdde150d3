//! The `img` element: its URL attributes, then what a rewritten image gains (a generated
//! `srcset` with `sizes`, `width`/`height`, `loading`, `decoding`, `referrerpolicy`), each
//! only when missing, inserted after the last attribute so every written byte stays put (right
//! after `<img` where the tag's end also ends a Markdown HTML block, which they would split).
//! An image already pointing at imgrelay gains only what a fresh rewrite would have given it
//! since: measured `width`/`height` and its loading ([`super::super::loading`] decides that
//! for every image of the document at the end, from what is recorded here).

use super::{
    super::{loading, placeholder, resolve::push_u32},
    block_end_at, entities, holds_block_end, name_is, Attr, Pass,
};
use crate::config::Placeholder;
use std::ops::Range;

/// The attribute names this handler reads. The lazy ones (what lazy-loading scripts read the
/// real image from) stand together, from `data-src` to `data-original-src`.
const NAMES: [&str; 22] = [
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
    "fetchpriority",
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
    pub const FETCHPRIORITY: usize = index("fetchpriority");
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
        // the source of an `src` / lazy attribute already pointing at imgrelay
        let (mut ours, mut ours_lazy) = (None, None);
        for (i, a) in attrs.iter().enumerate() {
            let Some(name) = name_of(&self.doc[a.name.clone()]) else {
                continue;
            };
            if named.first[name] == Named::NONE {
                named.first[name] = i as u32;
            }
            match name {
                n::SRC => {
                    src = self.url(a);
                    if src.is_none() && ours.is_none() {
                        ours = self.proxied_source(a);
                    }
                }
                n::LAZY_FIRST..=n::LAZY_LAST => match self.url(a) {
                    Some(u) => lazy = Some(u),
                    None => ours_lazy = self.proxied_source(a).or(ours_lazy),
                },
                n::SRCSET | n::DATA_SRCSET => any |= self.srcset(a),
                _ => {}
            }
        }
        let fresh = src.is_some() || lazy.is_some() || any;
        // the picture shown: a lazy attribute's, which scripts put in `src`
        let source = lazy.clone().or(src.clone()).or(ours_lazy).or(ours);
        if !fresh && source.is_none() {
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
        let rw = self.rw;
        let intrinsic = pair(n::DATA_SIZE)
            .or_else(|| pair(n::DATA_IMG_SIZE_VAL))
            .or_else(|| Some((number(n::DATA_WIDTH)?, number(n::DATA_HEIGHT)?)))
            .or_else(|| {
                let w = number(n::DATA_ORIGINAL_WIDTH)?;
                Some((w, number(n::DATA_ORIGINAL_HEIGHT)?))
            })
            .or_else(|| Some((number(n::W)?, number(n::H)?)));
        let measured = source.as_deref().and_then(|s| rw.measures.get(s));
        let known = intrinsic.or(measured.map(|m| (m.width, m.height)));
        let (display, display_h) = (number(n::WIDTH), number(n::HEIGHT));
        // what `width`/`height` could be written from a known size: both when neither is
        // there, the missing one in proportion when the other is a number
        let (has_w, has_h) = (named.has(n::WIDTH), named.has(n::HEIGHT));
        let room = match (has_w, has_h) {
            (false, false) => true,
            (true, false) => display.is_some(),
            (false, true) => display_h.is_some(),
            (true, true) => false,
        };
        let (add_w, add_h) = match known.filter(|_| rw.dimensions && room) {
            Some((w, h)) => match (display, display_h) {
                (Some(dw), None) => (None, Some(proportion(dw, h, w))),
                (None, Some(dh)) => (Some(proportion(dh, w, h)), None),
                _ => (Some(w), Some(h)),
            },
            None => (None, None),
        };
        let shown = display.or(add_w).zip(display_h.or(add_h));
        let area = shown.or(known).map(|(w, h)| u64::from(w) * u64::from(h));
        let generate = !named.has(n::SRCSET) && !named.has(n::DATA_SRCSET);
        let tag_end = at + 1 + "img".len();
        let last = attrs.iter().map(|a| a.end).max().unwrap_or(tag_end);
        // Added attributes go after the last one, unless that would split the end of a
        // Markdown HTML block (`<![CDATA[><img src=… y]]>`): then right after `<img`.
        let end = if self.markdown && block_end_at(self.doc, last) {
            tag_end
        } else {
            last
        };
        let valued = |name: usize, value: &str| {
            let a = named.get(name)?;
            let v = self.value(a)?;
            v.trim()
                .eq_ignore_ascii_case(value)
                .then(|| self.removal(a))?
        };
        let record = loading::Img {
            at,
            area,
            content: !self.noscript,
            slot: None,
            has_loading: named.has(n::LOADING),
            lazy: valued(n::LOADING, "lazy"),
            has_fetchpriority: named.has(n::FETCHPRIORITY),
            high: valued(n::FETCHPRIORITY, "high"),
        };
        // a placeholder for the box (`rewrite.placeholder`): into `style` unless it sets a
        // background already; an image it is wanted for but not measured is asked about
        let style = self.find(attrs, "style");
        let style_raw = style.map(|a| self.raw_value(a));
        let paintable = rw.placeholder != Placeholder::None
            && !self.noscript
            && match &style_raw {
                None => true,
                Some(Some((v, at))) => {
                    !placeholder::has_background(v) && self.unwritable(at).is_none()
                }
                Some(None) => false,
            };
        let paint = measured
            .filter(|_| paintable && shown.is_some())
            .and_then(|m| placeholder::declarations(rw.placeholder, m));
        let mut out = self.out.borrow_mut();
        if !self.noscript && shown.is_none() {
            out.counts.undimensioned += 1;
            if let Some(s) = source.filter(|_| known.is_none() && rw.dimensions && room) {
                out.unmeasured.push(s);
            }
        } else if paintable && measured.is_none() {
            out.unmeasured.extend(source.clone());
        }
        if let (Some(add), Some(a), Some(Some((raw, _)))) = (&paint, style, &style_raw) {
            let kept = if a.quote.is_some() {
                raw.to_string()
            } else {
                raw.replace('"', "&quot;")
            };
            self.set_with(&mut out.edits, a, |t, _| {
                t.push_str(&placeholder::merged(&kept, add));
            });
        }
        out.edits.edit_with(end..end, |add| {
            if let Some(encoded) = lazy.or(src).filter(|_| generate) {
                let intrinsic_w = known.map(|(w, _)| w);
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
            for (name, v) in [("width", add_w), ("height", add_h)] {
                if let Some(v) = v {
                    open(add, name);
                    push_u32(add, v);
                    add.push('"');
                }
            }
            if let Some(declarations) = paint.as_ref().filter(|_| style.is_none()) {
                open(add, "style");
                add.push_str(declarations);
                add.push('"');
            }
        });
        let slot = out.edits.reserve(end);
        out.imgs.push(loading::Img {
            slot: Some(slot),
            ..record
        });
        if fresh {
            out.edits.edit_with(end..end, |add| {
                let mut put = |name: usize, on: bool, value: &str| {
                    if on && !named.has(name) {
                        open(add, NAMES[name]);
                        add.push_str(value);
                        add.push('"');
                    }
                };
                put(n::DECODING, rw.decoding, "async");
                put(n::REFERRERPOLICY, rw.no_referrer, "no-referrer");
            });
        }
    }

    /// The raw value of `a` (as written, not decoded) and its range, when it has one and it
    /// is UTF-8.
    fn raw_value(&self, a: &Attr) -> Option<(&str, Range<usize>)> {
        let range = a.value.clone()?;
        let raw = std::str::from_utf8(self.doc.get(range.clone())?).ok()?;
        Some((raw, range))
    }

    /// The source (`url=` encoding) of an attribute whose value already points at imgrelay.
    fn proxied_source(&self, a: &Attr) -> Option<String> {
        let (raw, _) = self.raw_value(a)?;
        self.rw.resolver.proxied_source(&entities::decode(raw))
    }

    /// The bytes that remove attribute `a`: it and the blanks before it when what follows
    /// separates it from the next (`<img loading="lazy"src=x>` keeps its blank). `None` in
    /// Markdown when the bytes closing up would end an HTML block.
    fn removal(&self, a: &Attr) -> Option<Range<usize>> {
        let doc = self.doc;
        let separated = doc
            .get(a.end)
            .is_none_or(|b| b.is_ascii_whitespace() || matches!(b, b'>' | b'/'));
        let mut start = a.name.start;
        while separated && start > 0 && matches!(doc[start - 1], b' ' | b'\t') {
            start -= 1;
        }
        let joined = [
            &doc[start.saturating_sub(16)..start],
            &doc[a.end..doc.len().min(a.end + 16)],
        ]
        .concat();
        (!self.markdown || !holds_block_end(&joined)).then_some(start..a.end)
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

/// Appends ` name="`.
fn open(add: &mut String, name: &str) {
    add.push(' ');
    add.push_str(name);
    add.push_str("=\"");
}

/// `given × of ÷ per`, rounded, at least 1: the missing side of a box in proportion.
fn proportion(given: u32, of: u32, per: u32) -> u32 {
    let p = (u64::from(given) * u64::from(of) + u64::from(per) / 2) / u64::from(per.max(1));
    u32::try_from(p.max(1)).unwrap_or(u32::MAX)
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
