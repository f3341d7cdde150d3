//! The `img` element: its URL attributes, then what a rewritten image gains (a generated
//! `srcset` with `sizes`, `width`/`height`, `loading`, `decoding`, `referrerpolicy`), each
//! only when missing, inserted after the last attribute so every written byte stays put.

use super::{super::resolve::push_u32, entities, Attr, Pass, LAZY, LAZY_SRCSET};

impl Pass<'_> {
    /// The `img` whose `<` is at `at`.
    pub(super) fn img(&self, at: usize, attrs: &[Attr]) {
        let (mut src, mut lazy, mut any) = (None, None, false);
        for a in attrs {
            if self.is(a, "src") {
                src = self.url(a);
            } else if LAZY.iter().any(|n| self.is(a, n)) {
                lazy = self.url(a).or(lazy);
            } else if LAZY_SRCSET.iter().any(|n| self.is(a, n)) {
                any |= self.srcset(a);
            }
        }
        if src.is_none() && lazy.is_none() && !any {
            return;
        }
        let has = |n: &str| self.find(attrs, n).is_some();
        let number = |n: &str| {
            let a = self.find(attrs, n)?;
            self.value(a).and_then(|v| parse_px(&v))
        };
        let pair = |n: &str| {
            let a = self.find(attrs, n)?;
            let v = self.value(a)?;
            let (w, h) = v.split_once(',')?;
            Some((parse_px(w)?, parse_px(h)?))
        };
        let intrinsic = pair("data-size")
            .or_else(|| pair("data-img-size-val"))
            .or_else(|| Some((number("data-width")?, number("data-height")?)))
            .or_else(|| {
                let w = number("data-original-width")?;
                Some((w, number("data-original-height")?))
            })
            .or_else(|| Some((number("w")?, number("h")?)));
        let mut add = String::new();
        let mut put = |name: &str, value: &str| {
            add.reserve(name.len() + value.len() + value.len() / 4 + 4);
            add.push(' ');
            add.push_str(name);
            add.push_str("=\"");
            entities::escape_into(&mut add, value, '"');
            add.push('"');
        };
        let generate = !LAZY_SRCSET.iter().any(|n| has(n));
        if let Some(encoded) = lazy.or(src).filter(|_| generate) {
            let display = number("width");
            if let Some(set) = self.generated_srcset(&encoded, intrinsic.map(|(w, _)| w), display) {
                put("srcset", &set);
                if !has("sizes") && !self.rw.sizes.is_empty() {
                    match display {
                        Some(w) => put("sizes", &format!("{w}px")),
                        None => put("sizes", &self.rw.sizes),
                    }
                }
            }
        }
        if let Some((w, h)) = intrinsic.filter(|_| self.rw.dimensions) {
            if !has("width") && !has("height") {
                put("width", &w.to_string());
                put("height", &h.to_string());
            }
        }
        if self.rw.lazy && !has("loading") {
            put("loading", "lazy");
        }
        if self.rw.decoding && !has("decoding") {
            put("decoding", "async");
        }
        if self.rw.no_referrer && !has("referrerpolicy") {
            put("referrerpolicy", "no-referrer");
        }
        if !add.is_empty() {
            let tag_end = at + 1 + "img".len();
            let at = attrs.iter().map(|a| a.end).max().unwrap_or(tag_end);
            self.out.borrow_mut().edit(at..at, add);
        }
    }

    /// The `srcset` for the source that [`super::super::Resolver::encode`] made `encoded`:
    /// `rewrite.widths` below the intrinsic width, then the original at its own width. With
    /// a displayed `width` attribute, widths stop at the first one that covers it at 2x: an
    /// emoji shown at 20 px needs no 1280 w candidate.
    fn generated_srcset(
        &self,
        encoded: &str,
        intrinsic: Option<u32>,
        display: Option<u32>,
    ) -> Option<String> {
        let r = &self.rw.resolver;
        let widths = &self.rw.widths;
        let enough = display.and_then(|d| widths.iter().position(|&w| w >= d.saturating_mul(2)));
        let widths = &widths[..enough.map_or(widths.len(), |i| i + 1)];
        let mut below = widths
            .iter()
            .filter(|&&w| intrinsic.is_none_or(|i| w < i))
            .peekable();
        below.peek()?;
        // `srcset::widths` of the (url, width) pairs, the source encoded once for all of them
        let mut set = String::with_capacity((r.variant_len(encoded) + 12) * (widths.len() + 1));
        let mut candidate = |width: Option<u32>, w: u32| {
            if !set.is_empty() {
                set.push_str(", ");
            }
            r.variant_into(encoded, width, &mut set);
            set.push(' ');
            push_u32(&mut set, w);
            set.push('w');
        };
        for &w in below {
            candidate(Some(w), w);
        }
        if let Some(i) = intrinsic {
            candidate(None, i);
        }
        Some(set)
    }
}

/// The number in `640`, `640px` or ` 640 `; `None` for `100%`, `auto`, `0`.
fn parse_px(v: &str) -> Option<u32> {
    let v = v.trim();
    let v = v.strip_suffix("px").unwrap_or(v);
    v.parse().ok().filter(|&n| n > 0)
}
