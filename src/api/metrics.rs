//! `GET /metrics`: the Prometheus scrape (text format 0.0.4). Reads the gauges that mirror
//! state (queue, running transforms, tier sizes) at scrape time and renders the registry;
//! which listener serves it is the server's choice (`server.admin_listen`), and it says who
//! reads the answer: the public listener's scrape folds the upstream outcome `denied` into
//! `error` (SPEC §2.5).

use super::Response;
use crate::{
    metrics::{Audience, Snapshot},
    AppState,
};
use bytes::Bytes;
use http::{header, HeaderValue};
use http_body_util::Full;

pub async fn get(state: &AppState, audience: Audience) -> Response {
    let mut now = Snapshot {
        queue_depth: state.work.queued(&state.config),
        transforms_in_progress: state.work.running(),
        ..Snapshot::default()
    };
    state.cache.measure(&mut now).await;
    let text = state.metrics.render(&now, audience);
    let mut r = Response::new(Full::new(Bytes::from(text)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(state.metrics.content_type()),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
