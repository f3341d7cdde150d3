//! `imgrelay rewrite --info-from URL`: asks a running imgrelay for `output=json` of every
//! source a rewrite could not size ([`super::Output::unmeasured`]), each once, through
//! [`crate::batch`]; what it answers becomes the rewriter's measures
//! ([`super::Rewriter::with_measures`]).

use super::{Measure, Measures};
use crate::{batch, config::Config, request};
use std::{
    collections::{BTreeMap, BTreeSet},
    io,
};
use url::Url;

/// The most an `output=json` answer may be (a few hundred bytes with its placeholder).
const MAX_ANSWER: usize = 64 << 10;

/// What asking came to.
#[derive(Debug, Default)]
pub struct Measured {
    pub measures: Measures,
    /// Sources asked for.
    pub asked: usize,
    /// Sources not measured, by cause (the server's error code, `status N`, …).
    pub failed: BTreeMap<String, usize>,
}

/// Asks the imgrelay at `base` for each of `sources` (`url=` encodings), signed with
/// `security.signing_keys` as the rewritten URLs are.
pub fn measure(config: &Config, base: &Url, sources: BTreeSet<String>) -> io::Result<Measured> {
    if sources.is_empty() {
        // no client, no runtime: every image is sized already (a second run)
        return Ok(Measured::default());
    }
    let keys = &config.security.signing_keys;
    let urls: Vec<String> = sources
        .iter()
        .map(|s| request::info_url(base.as_str(), keys, s))
        .collect();
    let outcomes = batch::get_all(config, &urls, MAX_ANSWER)?;
    let mut done = Measured {
        asked: urls.len(),
        ..Measured::default()
    };
    for (source, outcome) in sources.into_iter().zip(outcomes) {
        let read = outcome.and_then(|a| {
            Measure::from_json(&a.body).ok_or_else(|| "not an output=json answer".to_string())
        });
        match read {
            Ok(m) => {
                done.measures.insert(source, m);
            }
            Err(cause) => *done.failed.entry(cause).or_default() += 1,
        }
    }
    Ok(done)
}
