//! The one integration binary: real imgrelay servers and real origins on loopback.

#![allow(clippy::unwrap_used)]

mod support;

mod cache;
mod http_surface;
mod limits;
mod passthrough;
mod process;
mod rewrite;
mod ssrf;
mod transform;
mod warm;
