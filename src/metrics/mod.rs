//! Prometheus metrics (SPEC §6): the registry, every series with its closed label set, and the
//! text rendering of `GET /metrics` (format 0.0.4, the `prometheus` crate's `TextEncoder`).
//!
//! Each step counts its own events through the handles it was given when it was built (the
//! fetcher its upstream outcomes, the coalescer its roles); the server counts requests and
//! rejections at the boundary, once per answer. Gauges that mirror state (queue depth, running
//! transforms, cache sizes) are read when a scrape asks, not kept up to date on the hot path.
//! Label values come only from `labels`: never a host, URL, id or error text; `handles` holds
//! what the steps keep.

mod handles;
mod labels;

pub use handles::{Roles, SharedSeries, Snapshot};
pub use labels::{Audience, Route, Stage, Upstream};

use crate::error::Error;
use http::StatusCode;
use labels::{Rejection, CACHE_RESULTS, ROLES, SHARED_OPS, TIERS};
use prometheus::{
    proto::MetricFamily, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::time::Duration;

/// Request-duration buckets, in seconds: memory hits take tens of µs, slow misses tens of s.
const REQUEST_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];
/// Stage buckets, in seconds: a stage worth timing takes a millisecond or more.
const STAGE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every series of SPEC §6, registered in one registry per server.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    cache_results: IntCounterVec,
    stage_duration: HistogramVec,
    upstream: IntCounterVec,
    coalesced: IntCounterVec,
    rejected: IntCounterVec,
    queue_depth: IntGauge,
    transforms_in_progress: IntGauge,
    cache_bytes: IntGaugeVec,
    cache_entries: IntGaugeVec,
    shared_errors: IntCounterVec,
    shared_dropped_writes: IntCounter,
    shared_unverified: IntCounter,
    /// Children resolved once for the hot path, indexed by `Route as usize`: the duration
    /// histogram and the `status="200"` counter of each route.
    durations: Vec<Histogram>,
    ok: Vec<IntCounter>,
    /// Indexed like `CACHE_RESULTS`.
    results: Vec<IntCounter>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::build().unwrap_or_else(|e| unreachable!("metric definitions are valid: {e}"))
    }

    fn build() -> prometheus::Result<Metrics> {
        debug_assert!(Route::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<_> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let histogram =
            |name: &str, help: &str, label: &str, buckets: &[f64]| -> prometheus::Result<_> {
                let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
                let h = HistogramVec::new(opts, &[label])?;
                registry.register(Box::new(h.clone()))?;
                Ok(h)
            };
        let gauge = |name: &str, help: &str| -> prometheus::Result<_> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let gauges = |name: &str, help: &str, label: &str| -> prometheus::Result<_> {
            let g = IntGaugeVec::new(Opts::new(name, help), &[label])?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let m = Metrics {
            requests: counter(
                "imgrelay_requests_total",
                "Requests answered, by route and HTTP status.",
                &["route", "status"],
            )?,
            request_duration: histogram(
                "imgrelay_request_duration_seconds",
                "Time from the request's head to its answer's head, by route.",
                "route",
                REQUEST_BUCKETS,
            )?,
            cache_results: counter(
                "imgrelay_cache_results_total",
                "Image requests by where their answer came from (X-Cache in lower case).",
                &["result"],
            )?,
            stage_duration: histogram(
                "imgrelay_stage_duration_seconds",
                "Time spent in one stage of a fill, as in Server-Timing.",
                "stage",
                STAGE_BUCKETS,
            )?,
            upstream: counter(
                "imgrelay_upstream_requests_total",
                "Fetches from origins (redirects included), by outcome.",
                &["outcome"],
            )?,
            coalesced: counter(
                "imgrelay_coalesced_total",
                "Cache fills run (leader) and requests that waited for another's fill (follower).",
                &["role"],
            )?,
            rejected: counter(
                "imgrelay_rejected_total",
                "Requests refused before or during work, by reason.",
                &["reason"],
            )?,
            queue_depth: gauge(
                "imgrelay_queue_depth",
                "Requests admitted to the work queue and not yet answered.",
            )?,
            transforms_in_progress: gauge(
                "imgrelay_transforms_in_progress",
                "Image jobs holding a worker of the blocking pool.",
            )?,
            cache_bytes: gauges(
                "imgrelay_cache_bytes",
                "Bytes held by a cache tier.",
                "tier",
            )?,
            cache_entries: gauges(
                "imgrelay_cache_entries",
                "Entries held by a cache tier.",
                "tier",
            )?,
            shared_errors: counter(
                "imgrelay_shared_errors_total",
                "Failed or skipped operations on the shared cache tier, by operation.",
                &["op"],
            )?,
            shared_dropped_writes: plain_counter(
                &registry,
                "imgrelay_shared_dropped_writes_total",
                "Answers not written to the shared cache tier because its write queue was full.",
            )?,
            shared_unverified: plain_counter(
                &registry,
                "imgrelay_shared_unverified_total",
                "Shared cache objects that failed verification (MAC, key or checksum): misses, \
                 never served.",
            )?,
            registry,
            durations: Vec::new(),
            ok: Vec::new(),
            results: Vec::new(),
        };
        let build = IntGaugeVec::new(
            Opts::new("imgrelay_build_info", "The running build; value 1."),
            &["version"],
        )?;
        m.registry.register(Box::new(build.clone()))?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let mut m = m;
        m.touch_closed_sets();
        m.durations = Route::ALL
            .map(|r| m.request_duration.with_label_values(&[r.as_str()]))
            .to_vec();
        m.ok = Route::ALL
            .map(|r| m.requests.with_label_values(&[r.as_str(), "200"]))
            .to_vec();
        m.results = CACHE_RESULTS
            .map(|r| m.cache_results.with_label_values(&[r]))
            .to_vec();
        Ok(m)
    }

    /// Creates every series of a closed label set at zero, so a rate over it exists from the
    /// first scrape on and an absent series means a missing feature, not a quiet one.
    fn touch_closed_sets(&self) {
        for r in Route::ALL {
            self.request_duration.with_label_values(&[r.as_str()]);
        }
        for r in CACHE_RESULTS {
            self.cache_results.with_label_values(&[r]);
        }
        for s in Stage::ALL {
            self.stage_duration.with_label_values(&[s.as_str()]);
        }
        for o in Upstream::ALL {
            self.upstream.with_label_values(&[o.as_str()]);
        }
        for r in ROLES {
            self.coalesced.with_label_values(&[r]);
        }
        for r in Rejection::ALL {
            self.rejected.with_label_values(&[r.as_str()]);
        }
        for t in TIERS {
            self.cache_bytes.with_label_values(&[t]);
            self.cache_entries.with_label_values(&[t]);
        }
        for op in SHARED_OPS {
            self.shared_errors.with_label_values(&[op]);
        }
    }

    /// One answered request.
    pub fn request(&self, route: Route, status: StatusCode, took: Duration) {
        let i = route as usize;
        match (status, self.ok.get(i)) {
            (StatusCode::OK, Some(ok)) => ok.inc(),
            _ => self
                .requests
                .with_label_values(&[route.as_str(), status.as_str()])
                .inc(),
        }
        if let Some(h) = self.durations.get(i) {
            h.observe(took.as_secs_f64());
        }
    }

    /// Where one image request's answer came from: an `X-Cache` value.
    pub fn cache_result(&self, x_cache: &str) {
        let miss = CACHE_RESULTS.len() - 1;
        let i = CACHE_RESULTS
            .iter()
            .position(|r| r.eq_ignore_ascii_case(x_cache))
            .unwrap_or(miss);
        if let Some(c) = self.results.get(i) {
            c.inc();
        }
    }

    pub fn stage(&self, stage: Stage, took: Duration) {
        self.stage_duration
            .with_label_values(&[stage.as_str()])
            .observe(took.as_secs_f64());
    }

    pub fn upstream(&self, outcome: Upstream) {
        self.upstream.with_label_values(&[outcome.as_str()]).inc();
    }

    /// The coalescer's counters.
    pub fn roles(&self) -> Roles {
        Roles {
            leader: self.coalesced.with_label_values(&["leader"]),
            follower: self.coalesced.with_label_values(&["follower"]),
        }
    }

    /// The shared tier's handles.
    pub fn shared(&self) -> SharedSeries {
        SharedSeries {
            get: self
                .stage_duration
                .with_label_values(&[Stage::SharedGet.as_str()]),
            put: self
                .stage_duration
                .with_label_values(&[Stage::SharedPut.as_str()]),
            dropped_writes: self.shared_dropped_writes.clone(),
            unverified: self.shared_unverified.clone(),
        }
    }

    /// Counts an error answer when it is a refusal SPEC §6 names.
    pub fn rejected(&self, err: &Error) {
        if let Some(reason) = Rejection::of(err) {
            self.rejected.with_label_values(&[reason.as_str()]).inc();
        }
    }

    /// The text of `GET /metrics` for `audience`, with the state-mirroring gauges set from
    /// `now`.
    pub fn render(&self, now: &Snapshot, audience: Audience) -> Vec<u8> {
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.queue_depth.set(int(now.queue_depth as u64));
        self.transforms_in_progress
            .set(int(now.transforms_in_progress as u64));
        let tiers = [
            ("memory", now.memory_bytes, now.memory_entries),
            ("disk", now.disk_bytes, now.disk_entries),
        ];
        for (tier, bytes, entries) in tiers {
            self.cache_bytes.with_label_values(&[tier]).set(int(bytes));
            self.cache_entries
                .with_label_values(&[tier])
                .set(int(entries));
        }
        // The shared tier counts its own errors; the counter catches up to its totals.
        for &(op, total) in &now.shared_errors {
            let c = self.shared_errors.with_label_values(&[op]);
            c.inc_by(total.saturating_sub(c.get()));
        }
        let mut families = self.registry.gather();
        if audience == Audience::Public {
            fold_denied_into_error(&mut families);
        }
        let mut out = Vec::with_capacity(16 << 10);
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }

    /// The `Content-Type` of [`Metrics::render`]'s text.
    pub fn content_type(&self) -> &'static str {
        prometheus::TEXT_FORMAT
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A counter without labels, registered in `registry`.
fn plain_counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

/// Removes the `outcome="denied"` series of the upstream counter and adds its count to
/// `outcome="error"`: the public scrape then says exactly what a client's 502 says.
fn fold_denied_into_error(families: &mut [MetricFamily]) {
    let Some(upstream) = families
        .iter_mut()
        .find(|f| f.name() == "imgrelay_upstream_requests_total")
    else {
        return;
    };
    let outcome_is = |m: &prometheus::proto::Metric, value: &str| {
        m.get_label()
            .iter()
            .any(|l| l.name() == "outcome" && l.value() == value)
    };
    let series = upstream.mut_metric();
    let Some(i) = series.iter().position(|m| outcome_is(m, "denied")) else {
        return;
    };
    let denied = series.remove(i).get_counter().get_value();
    if let Some(error) = series.iter_mut().find(|m| outcome_is(m, "error")) {
        let mut counter = error.get_counter().clone();
        counter.set_value(counter.get_value() + denied);
        error.set_counter(counter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(m: &Metrics) -> String {
        String::from_utf8(m.render(&Snapshot::default(), Audience::Operator)).unwrap()
    }

    #[test]
    fn closed_label_sets_are_exported_at_zero() {
        let text = scrape(&Metrics::new());
        for line in [
            "imgrelay_cache_results_total{result=\"hit-shared\"} 0",
            "imgrelay_upstream_requests_total{outcome=\"not_modified\"} 0",
            "imgrelay_coalesced_total{role=\"follower\"} 0",
            "imgrelay_rejected_total{reason=\"memory\"} 0",
            "imgrelay_shared_errors_total{op=\"skipped\"} 0",
            "imgrelay_stage_duration_seconds_count{stage=\"shared_put\"} 0",
            "imgrelay_request_duration_seconds_bucket{route=\"image\",le=\"0.0001\"} 0",
            "imgrelay_cache_entries{tier=\"disk\"} 0",
            "imgrelay_queue_depth 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        let build = format!(
            "imgrelay_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&build), "{text}");
        assert!(text.contains("# TYPE imgrelay_request_duration_seconds histogram"));
        assert!(
            text.contains("imgrelay_stage_duration_seconds_bucket{stage=\"fetch\",le=\"0.001\"} 0")
        );
    }

    #[test]
    fn the_public_scrape_counts_a_denied_destination_as_an_error() {
        let m = Metrics::new();
        m.upstream(Upstream::Denied);
        m.upstream(Upstream::Denied);
        m.upstream(Upstream::Error);
        let public = String::from_utf8(m.render(&Snapshot::default(), Audience::Public)).unwrap();
        assert!(!public.contains("denied"), "{public}");
        assert!(public
            .lines()
            .any(|l| l == "imgrelay_upstream_requests_total{outcome=\"error\"} 3"));
        let full = scrape(&m);
        for line in [
            "imgrelay_upstream_requests_total{outcome=\"denied\"} 2",
            "imgrelay_upstream_requests_total{outcome=\"error\"} 1",
        ] {
            assert!(full.lines().any(|l| l == line), "missing {line}\n{full}");
        }
    }

    #[test]
    fn events_land_in_their_series() {
        let m = Metrics::new();
        m.request(Route::Image, StatusCode::OK, Duration::from_micros(50));
        m.request(
            Route::Image,
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(1),
        );
        m.cache_result("HIT-MEMORY");
        m.rejected(&Error::Overloaded {
            retry_after: Duration::from_secs(1),
        });
        m.rejected(&Error::NotFound);
        m.rejected(&Error::OverMemoryBudget);
        m.roles().follower.inc();
        m.stage(Stage::Decode, Duration::from_millis(3));
        let text = scrape(&m);
        for line in [
            "imgrelay_requests_total{route=\"image\",status=\"200\"} 1",
            "imgrelay_requests_total{route=\"image\",status=\"503\"} 1",
            "imgrelay_request_duration_seconds_bucket{route=\"image\",le=\"0.0001\"} 1",
            "imgrelay_request_duration_seconds_count{route=\"image\"} 2",
            "imgrelay_cache_results_total{result=\"hit-memory\"} 1",
            "imgrelay_rejected_total{reason=\"queue_full\"} 1",
            "imgrelay_rejected_total{reason=\"memory\"} 1",
            "imgrelay_coalesced_total{role=\"follower\"} 1",
            "imgrelay_stage_duration_seconds_bucket{stage=\"decode\",le=\"0.0025\"} 0",
            "imgrelay_stage_duration_seconds_bucket{stage=\"decode\",le=\"0.005\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert_eq!(
            text.matches("imgrelay_rejected_total{").count(),
            Rejection::ALL.len(),
            "a non-refusal adds no reason"
        );
    }
}
