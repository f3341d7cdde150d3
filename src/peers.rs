//! The fleet side of `/purge` (SPEC §7): the replica that receives a purge forwards it to each
//! of `server.peers` (the other replicas' base URLs), so their memory and disk tiers drop the
//! source too. Sent through [`fanout`](crate::fanout): each peer once, all at the same time,
//! each within [`fanout::TIMEOUT`], with the same bearer token; each peer's answer is reported.
//!
//! A forwarded purge carries `scope=local`, which tells the peer to drop the source from its
//! own tiers only: not to forward it again (no loops, however the peer lists are written), and
//! not to purge the shared bucket or the CDN, which the receiving replica does itself.

use crate::{config::Config, fanout};
use http::{header, Method, Request};
use http_body_util::Empty;

pub use fanout::Outcome;

/// The `scope` value of a purge that stays on the replica that receives it.
pub const LOCAL_SCOPE: &str = "local";

/// `POST {peer}/purge?url={source}&scope=local` to every peer; one outcome per peer, in the
/// configured order.
pub async fn purge(config: &Config, source: &str) -> Vec<Outcome> {
    let auth = format!("Bearer {}", config.server.admin_token.expose());
    let url: String = form_urlencoded::byte_serialize(source.as_bytes()).collect();
    fanout::send_all(config, "peer", &config.server.peers, |peer| {
        let target = format!(
            "{}/purge?url={url}&scope={LOCAL_SCOPE}",
            peer.trim_end_matches('/')
        );
        let uri: http::Uri = target.parse().map_err(|_| "invalid URL".to_string())?;
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::AUTHORIZATION, &auth)
            .header(header::CONTENT_LENGTH, "0")
            .body(Empty::new())
            .map_err(|e| e.to_string())
    })
    .await
}
