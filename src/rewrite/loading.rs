//! How the images of one document load. The first `rewrite.eager` content images of at least
//! [`LCP_MIN_AREA`] px² (or of unknown size) load eagerly: one of them is the page's Largest
//! Contentful Paint, which a lazy image delays until layout. The first of them gets
//! `fetchpriority="high"`; every other image gets `loading="lazy"` (`rewrite.lazy`).
//!
//! Decided after every pass, in document order: Markdown's passes do not visit images in
//! order (a run of HTML blocks is read after the inline HTML that follows it). Content images
//! are the `img` elements and Markdown images the rewriter rewrote or that already point at
//! imgrelay (so a post rewritten by an earlier version comes out as a fresh rewrite would),
//! not front matter images and not the copies inside `<noscript>`.

use super::{Edits, Rewriter};
use std::ops::Range;

/// The smallest image (px²) that can be the eager LCP candidate when its size is known: an
/// icon or emoji above the first photo is not it.
const LCP_MIN_AREA: u64 = 50_000;

/// One image of a document, as the passes found it.
#[derive(Debug, Clone, Default)]
pub(super) struct Img {
    /// Where it starts in the document.
    pub at: usize,
    /// Displayed px² when known (attributes, markup's intrinsic size, or measured).
    pub area: Option<u64>,
    /// Whether it counts for the eager rule (not a `<noscript>` copy).
    pub content: bool,
    /// The reserved insertion for `loading`/`fetchpriority` ([`Edits::reserve`]); `None` for
    /// an image that cannot carry attributes (Markdown's `![](…)`, eager anyway).
    pub slot: Option<usize>,
    /// Whether it has a `loading` attribute, and the range of one saying `lazy` with the
    /// blanks before it, when removing it is safe.
    pub has_loading: bool,
    pub lazy: Option<Range<usize>>,
    /// The same for `fetchpriority` and one saying `high`.
    pub has_fetchpriority: bool,
    pub high: Option<Range<usize>>,
}

/// Writes the loading attributes of `imgs` (any order) into `edits`.
pub(super) fn apply(imgs: &mut [Img], rw: &Rewriter, edits: &mut Edits) {
    imgs.sort_by_key(|i| i.at);
    let mut eager_left = rw.eager;
    let mut first = true;
    for img in imgs.iter() {
        let eager = img.content && eager_left > 0 && img.area.is_none_or(|a| a >= LCP_MIN_AREA);
        eager_left -= usize::from(eager);
        let high = eager && std::mem::take(&mut first);
        let Some(slot) = img.slot else { continue };
        if eager {
            if let Some(r) = img.lazy.clone() {
                edits.edit_with(r, |_| {});
            }
        }
        // With the rule on, one content image has the high priority: a second one (left by
        // a run that knew fewer sizes) would compete with it.
        if !high && img.content && rw.eager > 0 {
            if let Some(r) = img.high.clone() {
                edits.edit_with(r, |_| {});
            }
        }
        edits.fill(slot, |t| {
            if !eager && rw.lazy && !img.has_loading {
                t.push_str(" loading=\"lazy\"");
            }
            if high && !img.has_fetchpriority {
                t.push_str(" fetchpriority=\"high\"");
            }
        });
    }
}
