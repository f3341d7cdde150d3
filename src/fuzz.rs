//! The door the fuzz targets (`fuzz/`, run with `cargo fuzz`) come in by: every parser of
//! untrusted bytes, re-exported in one place. Compiled only under `cfg(fuzzing)`, which
//! `cargo fuzz` sets, so nothing here is part of the crate's ordinary API and nothing becomes
//! public elsewhere for the fuzzer's sake.
//!
//! The rewriter's `url(…)` and character-reference parsers are private to `rewrite`; rather
//! than widen them, their files are compiled a second time here, as modules of this one.

pub use crate::cache::entry::Entry;
pub use crate::config::{Config, Secret};
pub use crate::fetch::source::parse as parse_source;
pub use crate::image::{
    decode::{frames, is_animated, probe, still, still_for},
    format::ImageFormat,
    jpeg_scans::dc_only_at_eighth,
    Limits,
};
pub use crate::request::{transform_url, ImageRequest};
pub use crate::rewrite::{srcset, Kind, RewriteError, Rewriter};
pub use crate::sign::{signature, verify};
pub use crate::transform::Transform;

/// `target` signed with `key` (`sign::sign_target`).
pub fn sign_target(key: &Secret, target: &str) -> String {
    crate::sign::sign_target(key, target)
}

#[path = "rewrite/css.rs"]
mod css;
#[path = "rewrite/entities.rs"]
mod entities;

/// Byte ranges of the URLs of every `url(…)` in a `style` value (`rewrite::css::urls`).
pub fn css_urls(css: &str) -> Vec<std::ops::Range<usize>> {
    css::urls(css)
}

/// An attribute value with its character references decoded (`rewrite::entities::decode`).
pub fn decode_entities(raw: &str) -> std::borrow::Cow<'_, str> {
    entities::decode(raw)
}

/// `value` escaped for an attribute quoted with `quote` (`rewrite::entities::escape_into`).
pub fn escape_attribute(value: &str, quote: char) -> String {
    let mut out = String::with_capacity(value.len());
    entities::escape_into(&mut out, value, quote);
    out
}
