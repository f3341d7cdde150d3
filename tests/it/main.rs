//! The one integration binary: real imgrelay servers and real origins on loopback.

#![allow(clippy::unwrap_used)]

mod support;

mod avif;
mod ca;
mod cache;
mod causes;
mod cdn;
mod conformance;
mod differential;
mod http_surface;
mod info;
mod limits;
mod measured;
mod memory;
mod operations;
mod output_bounds;
mod passthrough;
mod peers;
mod process;
mod rewrite;
mod scrape;
mod smart_crop;
mod spawn;
mod ssrf;
mod tls;
mod transform;
mod warm;
