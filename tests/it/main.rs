//! The one integration binary: real imgrelay servers and real origins on loopback.

#![allow(clippy::unwrap_used)]

mod support;

mod avif;
mod cache;
mod http_surface;
mod limits;
mod memory;
mod output_bounds;
mod passthrough;
mod process;
mod rewrite;
mod smart_crop;
mod spawn;
mod ssrf;
mod tls;
mod transform;
mod warm;
