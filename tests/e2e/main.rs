//! The e2e suite (cargo feature `e2e`): checks that need real outside programs, installed by
//! `tests/e2e/setup.sh`. A missing program fails its test and names the Debian package; it
//! never passes silently. It shares the integration suite's helpers, sequences and test CA;
//! `stack.rs` holds the pieces its stacks are built from.

#![allow(clippy::unwrap_used)]

#[path = "../it/support.rs"]
mod support;

#[path = "../it/scrape.rs"]
mod scrape;

#[path = "../it/ca.rs"]
mod ca;

#[path = "../it/spawn.rs"]
mod spawn;

#[path = "../e2e_shared/bucket.rs"]
mod bucket;

mod browser;
mod chromium;
mod cmark;
mod fleet;
mod layout;
mod placeholder;
mod promtool;
mod reader;
mod stack;
mod varnish;
