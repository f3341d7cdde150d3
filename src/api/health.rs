//! `/healthz` (the process answers) and `/readyz` (it should get traffic: not draining, and the
//! cache directory is writable when the disk tier is on).

use super::{text, Response};
use crate::AppState;
use http::StatusCode;
use std::sync::Arc;

pub fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

pub async fn readyz(state: &Arc<AppState>) -> Response {
    if state.is_shutting_down() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    if state.config.cache.disk_bytes.0 > 0 {
        let dir = state.config.cache.dir.clone();
        let writable = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            tempfile::NamedTempFile::new_in(&dir).map(drop)
        })
        .await;
        if !matches!(writable, Ok(Ok(()))) {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "cache directory not writable\n",
            );
        }
    }
    text(StatusCode::OK, "ready\n")
}
