//! The e2e suite (cargo feature `e2e`): checks that need real outside programs, installed by
//! `tests/e2e/setup.sh`. A missing program fails its test and names the Debian package; it
//! never passes silently. It shares the integration suite's helpers and sequences.

#![allow(clippy::unwrap_used)]

#[path = "../it/support.rs"]
mod support;

#[path = "../it/scrape.rs"]
mod scrape;

#[path = "../it/spawn.rs"]
mod spawn;

#[path = "../e2e_shared/bucket.rs"]
mod bucket;

mod browser;
mod fleet;
mod promtool;
mod varnish;
