//! The label values of imgrelay's series (SPEC §6): every closed set, as enums for the values a
//! step passes in (`Route`, `Stage`, `Upstream`) or the registry derives (`Rejection`: which
//! errors count as refusals) and as lists for the rest. A label value comes only from here: never a host, URL, id or error text.

use crate::error::Error;

/// The `route` label of requests (and the access line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/?url=…` with transform parameters.
    Image,
    /// `/?{url}` or `/?url=…` alone: the source's bytes.
    Original,
    Health,
    Metrics,
    Rewrite,
    Purge,
    Other,
}

impl Route {
    pub(super) const ALL: [Route; 7] = [
        Route::Image,
        Route::Original,
        Route::Health,
        Route::Metrics,
        Route::Rewrite,
        Route::Purge,
        Route::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Image => "image",
            Route::Original => "original",
            Route::Health => "health",
            Route::Metrics => "metrics",
            Route::Rewrite => "rewrite",
            Route::Purge => "purge",
            Route::Other => "other",
        }
    }
}

/// The `stage` label: one timed step of a fill, also named in `Server-Timing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for a worker and pixel budget on the blocking pool.
    Queue,
    Fetch,
    Decode,
    Resize,
    Encode,
    /// One read of the shared bucket (SPEC §7), hit or miss, until it answered or gave up.
    SharedGet,
    /// One write to the shared bucket, off the request path.
    SharedPut,
}

impl Stage {
    pub(super) const ALL: [Stage; 7] = [
        Stage::Queue,
        Stage::Fetch,
        Stage::Decode,
        Stage::Resize,
        Stage::Encode,
        Stage::SharedGet,
        Stage::SharedPut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Queue => "queue",
            Stage::Fetch => "fetch",
            Stage::Decode => "decode",
            Stage::Resize => "resize",
            Stage::Encode => "encode",
            Stage::SharedGet => "shared_get",
            Stage::SharedPut => "shared_put",
        }
    }
}

/// Who reads a scrape. Anyone may reach the main listener, and nothing served there may tell a
/// denied destination from an unreachable one (SPEC §2.5, §2.6): its scrape counts the upstream
/// outcome `denied` as `error`. The admin listener's readers are the operator's: the full split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Public,
    Operator,
}

/// `op` values of the shared tier's error counter.
pub(super) const SHARED_OPS: [&str; 4] = ["get", "put", "delete", "skipped"];
/// `result` values: the `X-Cache` values in lower case.
pub(super) const CACHE_RESULTS: [&str; 5] =
    ["hit-memory", "hit-disk", "hit-shared", "hit-stale", "miss"];
/// `role` values of the coalescer's counter.
pub(super) const ROLES: [&str; 2] = ["leader", "follower"];
/// `tier` values of the cache gauges.
pub(super) const TIERS: [&str; 2] = ["memory", "disk"];

/// The `outcome` label of one upstream fetch (after its redirects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    Ok,
    NotModified,
    NotFound,
    /// The destination was refused: a private address, a port or a redirect hop.
    Denied,
    Timeout,
    TooLarge,
    NotImage,
    Error,
}

impl Upstream {
    pub(super) const ALL: [Upstream; 8] = [
        Upstream::Ok,
        Upstream::NotModified,
        Upstream::NotFound,
        Upstream::Denied,
        Upstream::Timeout,
        Upstream::TooLarge,
        Upstream::NotImage,
        Upstream::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Upstream::Ok => "ok",
            Upstream::NotModified => "not_modified",
            Upstream::NotFound => "not_found",
            Upstream::Denied => "denied",
            Upstream::Timeout => "timeout",
            Upstream::TooLarge => "too_large",
            Upstream::NotImage => "not_image",
            Upstream::Error => "error",
        }
    }
}

/// The `reason` label of a refused request: the errors SPEC §6 counts as refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    QueueFull,
    Memory,
    PixelLimit,
    FrameLimit,
    Signature,
    Host,
    Referer,
}

impl Rejection {
    pub(super) const ALL: [Rejection; 7] = [
        Rejection::QueueFull,
        Rejection::Memory,
        Rejection::PixelLimit,
        Rejection::FrameLimit,
        Rejection::Signature,
        Rejection::Host,
        Rejection::Referer,
    ];

    /// The refusal `err` is, if it is one.
    pub fn of(err: &Error) -> Option<Rejection> {
        Some(match err {
            Error::Overloaded { .. } => Rejection::QueueFull,
            Error::OverMemoryBudget => Rejection::Memory,
            Error::TooManyPixels => Rejection::PixelLimit,
            Error::TooManyFrames => Rejection::FrameLimit,
            Error::BadSignature => Rejection::Signature,
            Error::HostNotAllowed => Rejection::Host,
            Error::RefererNotAllowed => Rejection::Referer,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::QueueFull => "queue_full",
            Rejection::Memory => "memory",
            Rejection::PixelLimit => "pixel_limit",
            Rejection::FrameLimit => "frame_limit",
            Rejection::Signature => "signature",
            Rejection::Host => "host",
            Rejection::Referer => "referer",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_own_reason_and_other_errors_none() {
        let refusals = [
            Error::Overloaded {
                retry_after: std::time::Duration::from_secs(1),
            },
            Error::OverMemoryBudget,
            Error::TooManyPixels,
            Error::TooManyFrames,
            Error::BadSignature,
            Error::HostNotAllowed,
            Error::RefererNotAllowed,
        ];
        let reasons: Vec<Rejection> = refusals.iter().filter_map(Rejection::of).collect();
        assert_eq!(
            reasons,
            Rejection::ALL,
            "one reason per refusal, in ALL's order"
        );
        let names: std::collections::HashSet<&str> =
            Rejection::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Rejection::ALL.len());
        assert_eq!(Rejection::of(&Error::NotFound), None);
    }
}
