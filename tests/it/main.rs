//! The one integration binary: real imgrelay servers and real origins on loopback.

#![allow(clippy::unwrap_used)]

mod support;

mod cache;
mod http_surface;
mod limits;
mod operations;
mod passthrough;
mod process;
mod rewrite;
mod scrape;
mod ssrf;
mod transform;
mod warm;
