//! `GET|HEAD /?url=…&output=json`: a source's metadata instead of its pixels (SPEC §2.2),
//! for build tools and `imgrelay rewrite --info-from`. The answer is a variant like any other:
//! keyed under its source (so a purge drops it), cached in every tier, signed, admitted to the
//! work queue and charged for the decode it runs. `image::info` reads the file; this file
//! fetches the original through `api::image` and stores the JSON.

use super::image::{derived, original, probe_within_limits, stage};
use crate::{
    cache::{self, Filled, Hit, Tier},
    error::Error,
    image::{self, footprint, format::ImageFormat, Job},
    metrics::Stage,
    transform::Format,
    AppState,
};
use bytes::Bytes;
use std::sync::Arc;
use url::Url;

/// The variant key's transform part: bumped when the JSON's fields change.
const INFO_VARIANT: &str = "info|v2";

/// The metadata of `url`'s source, from a tier or made from the (cached) original.
pub(super) async fn get(state: &Arc<AppState>, url: &Url) -> (Tier, Result<Hit, Error>) {
    let key = cache::variant_key(url, INFO_VARIANT);
    let group = cache::original_key(url);
    let (st, u) = (state.clone(), url.clone());
    state
        .cache
        .get_or_fill(&group, &key, move |_stale| fill(st, u))
        .await
}

async fn fill(state: Arc<AppState>, url: Url) -> Result<Filled, Error> {
    let original = original(&state, &url).await.1?;
    let src = original.entry.clone();
    let format = ImageFormat::sniff(&src.body).ok_or(Error::NotAnImage)?;
    let (w, h) = probe_within_limits(&state, &src.body, format)?;
    let _slot = state.work.admit()?;
    // Charged as the smallest still transform there is: the decode and a small resample.
    let job = Job {
        source: format,
        transform: image::info::sample_transform(),
        output: Format::Png,
        quality: 100,
        limits: (&state.config.limits).into(),
    };
    let body = src.body.clone();
    let holds = footprint::job_bytes(&body, &job, (w, h));
    let started = std::time::Instant::now();
    let (info, queued) = state
        .work
        .run(holds, move || image::info::read(&body, format, &job.limits))
        .await?;
    let mut timing = original.timing.clone();
    stage(&state, &mut timing, Stage::Queue, queued);
    stage(
        &state,
        &mut timing,
        Stage::Decode,
        started.elapsed().saturating_sub(queued),
    );
    let json = serde_json::to_vec(&info).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(derived(Bytes::from(json), "application/json", &src, timing))
}
