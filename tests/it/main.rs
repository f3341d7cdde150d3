//! The one integration binary: real imgrelay servers and real origins on loopback.

mod support;

mod http_surface;
mod limits;
mod passthrough;
mod process;
mod ssrf;
