//! Article rewriting (SPEC §3): HTML documents and Markdown posts in, the same bytes out with
//! every image reference pointing at imgrelay.
//!
//! ```text
//! mod.rs          Rewriter (built once from Config), document kind, edits → output, stats
//!   front_matter  YAML `---` / TOML `+++` keys, value by value
//!   markdown      pulldown-cmark offsets: raw-HTML spans → html, `![](…)` and used ref defs
//!   html          lol_html selectors and handlers: record byte ranges of image references
//!   resolve       one reference → imgrelay URL or a reason to skip (unwrap, base, skip_hosts)
//!   unwrap        foreign proxy wrappers → the source they wrap
//!   syntax        URL spellings read without a parser (schemes, plain http, image links)
//!   srcset, css, entities           the pure parsers the handlers need
//!   loading       which images load eagerly (the LCP candidate), decided in document order
//!   measure       sizes a running imgrelay measured (`output=json`), by source
//! cli             `imgrelay rewrite` (files, directories, stdin; --in-place, --check)
//!   info_from     --info-from: asks a running imgrelay for the sizes the rewrite lacks
//! ```
//!
//! Exactness comes from the design: nothing is re-serialised. Every pass only records edits
//! (a byte range of the input and its replacement); [`Rewriter::rewrite_document`] splices
//! them into a copy of the input, so the bytes outside rewritten values are the input's bytes,
//! a document without images comes out identical, and a second run finds only imgrelay URLs
//! and attributes that are already there (idempotence). Only `cli` and `info_from` do I/O.

pub mod cli;
mod css;
mod entities;
mod front_matter;
mod html;
pub mod info_from;
mod loading;
mod markdown;
pub mod measure;
mod placeholder;
pub mod resolve;
pub mod srcset;
mod syntax;
pub mod unwrap;

use crate::config::Config;
pub use measure::{Measure, Measures};
pub use resolve::{Resolver, Skip};
use std::{collections::BTreeMap, fmt, ops::Range};
use url::Url;

/// What the input is. `Auto` looks for front matter, then at the first non-blank byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Auto,
    Html,
    Markdown,
}

impl Kind {
    /// `Markdown` for `.md`/`.markdown`, `Html` for `.html`/`.htm`, else `Auto`.
    pub fn from_path(path: &std::path::Path) -> Kind {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("md" | "markdown") => Kind::Markdown,
            Some("html" | "htm") => Kind::Html,
            _ => Kind::Auto,
        }
    }

    fn detect(self, input: &[u8]) -> Kind {
        match self {
            Kind::Auto if front_matter::split(input).is_some() => Kind::Markdown,
            Kind::Auto => {
                let first = input.iter().find(|b| !b.is_ascii_whitespace());
                match first {
                    Some(b'<') | None => Kind::Html,
                    Some(_) => Kind::Markdown,
                }
            }
            k => k,
        }
    }
}

/// What one document's rewrite did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Image references that now point at imgrelay.
    pub rewritten: usize,
    /// References left alone, by reason.
    pub skipped: BTreeMap<Skip, usize>,
    /// `img` elements (not `<noscript>` copies) pointing at imgrelay that come out without a
    /// numeric `width` and `height`: the page shifts when they arrive.
    pub undimensioned: usize,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
        self.rewritten += other.rewritten;
        self.undimensioned += other.undimensioned;
        for (k, n) in &other.skipped {
            *self.skipped.entry(*k).or_default() += n;
        }
    }
}

/// The rewritten document and what was done to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub stats: Stats,
    /// The sources (`url=` encodings) of the images counted in [`Stats::undimensioned`] that
    /// a measure ([`Rewriter::with_measures`]) would give dimensions, each once.
    pub unmeasured: Vec<String>,
}

impl Output {
    /// Whether the output differs from the input (some value or attribute was written).
    pub fn changed(&self, input: &[u8]) -> bool {
        self.bytes != input
    }
}

/// Why a document could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("a Markdown document's front matter and Markdown text must be UTF-8")]
    NotUtf8,
    /// Over a bound: a tag larger than [`HTML_MEMORY_LIMIT`], or replacements longer than
    /// [`GROWTH_LIMIT`] times the input.
    #[error("{0}")]
    TooLarge(&'static str),
    #[error("HTML rewriter: {0}")]
    Html(String),
}

/// One replacement: `range` of the input becomes `text` of [`Edits::text`] (an empty range
/// inserts).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edit {
    range: Range<usize>,
    text: Range<usize>,
}

/// The edits of one document; their replacement texts share one buffer, written in place.
#[derive(Debug, Default)]
struct Edits {
    list: Vec<Edit>,
    text: String,
    /// The most replacement text this document may have ([`GROWTH_LIMIT`]); 0 = no limit.
    limit: usize,
    /// An edit was refused because the limit was reached.
    over: bool,
}

impl Edits {
    /// Edits for a document of `len` bytes, bounded by [`GROWTH_LIMIT`].
    fn for_input(len: usize) -> Edits {
        Edits {
            limit: len.saturating_mul(GROWTH_LIMIT).max(GROWTH_FLOOR),
            ..Edits::default()
        }
    }

    /// `range` becomes what `write` appends to the buffer; nothing when it appends nothing
    /// and the range is empty, or when the buffer would pass its limit.
    fn edit_with(&mut self, range: Range<usize>, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        if self.limit > 0 && self.text.len() > self.limit {
            self.text.truncate(start);
            self.over = true;
            return;
        }
        if range.is_empty() && self.text.len() == start {
            return;
        }
        self.list.push(Edit {
            range,
            text: start..self.text.len(),
        });
    }

    /// An insertion at `at`, empty until [`Edits::fill`]: it keeps its place among the
    /// insertions at `at` made before and after it.
    fn reserve(&mut self, at: usize) -> usize {
        self.list.push(Edit {
            range: at..at,
            text: 0..0,
        });
        self.list.len() - 1
    }

    /// The reserved insertion `slot` becomes what `write` appends (within the limit).
    fn fill(&mut self, slot: usize, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        if self.limit > 0 && self.text.len() > self.limit {
            self.text.truncate(start);
            self.over = true;
            return;
        }
        if let Some(e) = self.list.get_mut(slot) {
            e.text = start..self.text.len();
        }
    }
}

/// What one document's references came to.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    rewritten: usize,
    skipped: [usize; Skip::ALL.len()],
    undimensioned: usize,
}

impl Counts {
    fn skip(&mut self, why: Skip) {
        self.skipped[why as usize] += 1;
    }

    /// Counts the outcome of one reference and passes its value on.
    fn outcome<T>(&mut self, r: Result<T, Skip>) -> Option<T> {
        match r {
            Ok(v) => {
                self.rewritten += 1;
                Some(v)
            }
            Err(why) => {
                self.skip(why);
                None
            }
        }
    }

    fn stats(&self) -> Stats {
        let skipped = Skip::ALL
            .iter()
            .zip(self.skipped)
            .filter(|(_, n)| *n > 0)
            .map(|(why, n)| (*why, n))
            .collect();
        Stats {
            rewritten: self.rewritten,
            skipped,
            undimensioned: self.undimensioned,
        }
    }
}

/// What the passes over one document collect.
#[derive(Debug, Default)]
struct Collector {
    edits: Edits,
    counts: Counts,
    memo: resolve::Memo,
    /// The images whose loading [`loading::apply`] decides.
    imgs: Vec<loading::Img>,
    unmeasured: Vec<String>,
}

impl Collector {
    /// The imgrelay URL (unescaped) of `reference`, counted, written over `range`; `Err`
    /// says why not.
    fn rewrite_url(
        &mut self,
        resolver: &Resolver,
        range: Range<usize>,
        reference: &str,
        base: Option<&Url>,
    ) -> Result<(), Skip> {
        self.rewrite_url_as(resolver, range, reference, base, false)
    }

    /// [`Collector::rewrite_url`], as a card image (`rewrite.thumbnail`) when `card`.
    fn rewrite_url_as(
        &mut self,
        resolver: &Resolver,
        range: Range<usize>,
        reference: &str,
        base: Option<&Url>,
        card: bool,
    ) -> Result<(), Skip> {
        let resolved = self.memo.resolve(resolver, reference, base);
        let skipped = resolved.as_ref().err().copied();
        if let Some(r) = self.counts.outcome(resolved) {
            self.edits.edit_with(range, |t| {
                if card {
                    resolver.thumbnail_into(r.encoded, t)
                } else {
                    resolver.variant_into(r.encoded, None, t)
                }
            });
        }
        skipped.map_or(Ok(()), Err)
    }
}

/// The article rewriter. Built once from the configuration; cheap to share (`&self` only).
pub struct Rewriter {
    resolver: Resolver,
    widths: Vec<u32>,
    sizes: String,
    front_matter_keys: Vec<String>,
    /// `rewrite.thumbnail_keys` when `rewrite.thumbnail` is set, else empty.
    thumbnail_keys: Vec<String>,
    lazy: bool,
    decoding: bool,
    dimensions: bool,
    /// `rewrite.eager`: see [`loading`].
    eager: usize,
    no_referrer: bool,
    selectors: html::Selectors,
    /// What a running imgrelay measured of the sources ([`Rewriter::with_measures`]).
    measures: Measures,
    /// `rewrite.placeholder`: what a measured image's box shows until it loads.
    placeholder: crate::config::Placeholder,
}

impl fmt::Debug for Rewriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rewriter")
            .field("resolver", &self.resolver)
            .field("widths", &self.widths)
            .finish_non_exhaustive()
    }
}

/// Most memory one lol_html pass may hold (a tag split across its internal buffers).
const HTML_MEMORY_LIMIT: usize = 4 << 20;
/// The replacement text of a document is at most this many times its length (an `img` of
/// 20 bytes may gain a `srcset` of five URLs, a few hundred bytes), or [`GROWTH_FLOOR`].
const GROWTH_LIMIT: usize = 32;
/// The growth allowed to any document, however short.
const GROWTH_FLOOR: usize = 1 << 20;

impl Rewriter {
    pub fn new(config: &Config) -> Rewriter {
        let r = &config.rewrite;
        let mut widths = r.widths.clone();
        widths.sort_unstable();
        widths.dedup();
        let resolver = Resolver::new(config);
        let thumbnail_keys = if resolver.has_thumbnail() {
            r.thumbnail_keys.clone()
        } else {
            Vec::new()
        };
        Rewriter {
            resolver,
            widths,
            sizes: r.sizes.clone(),
            front_matter_keys: r.front_matter_keys.clone(),
            thumbnail_keys,
            lazy: r.lazy,
            decoding: r.decoding,
            dimensions: r.dimensions,
            eager: r.eager,
            no_referrer: config.security.allowed_referers.is_empty(),
            selectors: html::Selectors::new(),
            measures: Measures::new(),
            placeholder: r.placeholder,
        }
    }

    /// This rewriter writing `width`/`height` from `measures` for images whose markup has no
    /// size (`imgrelay rewrite --info-from`); they count for the eager rule too.
    pub fn with_measures(self, measures: Measures) -> Rewriter {
        Rewriter { measures, ..self }
    }

    /// The most memory a rewrite of a `len`-byte document holds, for admission: the input,
    /// the output, the replacement texts (the input's size when it is typical; their bound
    /// is refused), and one `lol_html` pass.
    pub fn memory_for(len: usize) -> u64 {
        (len as u64).saturating_mul(4) + HTML_MEMORY_LIMIT as u64
    }

    /// Rewrites one document. `base` resolves relative references (a Markdown post's
    /// `permalink`/`url` front matter key is used when `base` is `None`).
    pub fn rewrite_document(
        &self,
        input: &[u8],
        kind: Kind,
        base: Option<&Url>,
    ) -> Result<Output, RewriteError> {
        let mut c = Collector {
            edits: Edits::for_input(input.len()),
            ..Collector::default()
        };
        let fm = match kind {
            Kind::Auto | Kind::Markdown => front_matter::split(input),
            Kind::Html => None,
        };
        let kind = match kind {
            Kind::Auto if fm.is_some() => Kind::Markdown,
            k => k.detect(input),
        };
        match kind {
            Kind::Markdown => markdown::rewrite(self, input, fm, base, &mut c)?,
            _ => html::rewrite(self, input, 0..input.len(), false, base, &mut c)?,
        }
        loading::apply(&mut c.imgs, self, &mut c.edits);
        c.unmeasured.sort_unstable();
        c.unmeasured.dedup();
        if c.edits.over {
            return Err(RewriteError::TooLarge(
                "the rewritten document would be too large for its input",
            ));
        }
        let output = Output {
            bytes: splice(input, &mut c.edits.list, &c.edits.text),
            stats: c.counts.stats(),
            unmeasured: c.unmeasured,
        };
        Ok(output)
    }
}

/// `input` with `edits` applied. Edits are ordered by position (insertions at one point keep
/// their order); an edit overlapping an earlier one is dropped rather than corrupting bytes.
fn splice(input: &[u8], edits: &mut [Edit], text: &str) -> Vec<u8> {
    if edits.is_empty() {
        return input.to_vec();
    }
    edits.sort_by_key(|e| e.range.start);
    let mut out = Vec::with_capacity(input.len() + text.len());
    let mut at = 0;
    for e in edits.iter() {
        if e.range.start < at || e.range.end > input.len() {
            continue;
        }
        out.extend_from_slice(&input[at..e.range.start]);
        out.extend_from_slice(&text.as_bytes()[e.text.clone()]);
        at = e.range.end;
    }
    out.extend_from_slice(&input[at..]);
    out
}

#[cfg(test)]
mod tests;
