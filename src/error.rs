//! The one error type of the request path: each variant knows its HTTP status, a stable code
//! string for `X-Imgrelay-Error`, the one-line reason a client may read, and how loudly to log.
//!
//! Clients never see internals: no upstream address, upstream body or panic text goes into a
//! reason. Details that help an operator travel in `detail`, which is logged, never sent.

use http::StatusCode;
use std::time::Duration;

/// Everything that can end a request early.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Malformed request target or parameters (the reason names the parameter).
    #[error("{0}")]
    BadRequest(String),
    /// The source URL is not one imgrelay will fetch: scheme, userinfo, syntax.
    #[error("{0}")]
    BadSource(&'static str),
    /// The source host is not in `allowed_hosts`, or is in `denied_hosts`.
    #[error("source host not allowed")]
    HostNotAllowed,
    /// The inbound `Referer` is not in `allowed_referers`.
    #[error("referer not allowed")]
    RefererNotAllowed,
    /// An admin endpoint's bearer token is missing or wrong.
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// A request body (a document to rewrite) is over its limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// A document to rewrite needs more memory than the rewriter's bounds allow.
    #[error("{0}")]
    DocumentTooLarge(&'static str),
    /// A signature was required and is missing or wrong.
    #[error("invalid or missing signature")]
    BadSignature,
    /// No route for this path.
    #[error("not found")]
    NotFound,
    /// The origin answered 404 or 410.
    #[error("upstream image not found")]
    UpstreamNotFound,
    /// Method not served on this path; carries the `Allow` value.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// The source is larger than `upstream.max_bytes` (declared or read).
    #[error("source image too large")]
    SourceTooLarge,
    /// The request target is longer than `limits.max_url_bytes`.
    #[error("request URL too long")]
    UriTooLong,
    /// The bytes are no supported image, whatever the upstream label said.
    #[error("source is not a supported image")]
    NotAnImage,
    /// The source's dimensions are over `limits.max_source_pixels` (read from its header).
    #[error("source image has too many pixels")]
    TooManyPixels,
    /// An animation over `limits.max_frames` or `limits.max_animation_pixels`.
    #[error("source animation has too many frames")]
    TooManyFrames,
    /// Corrupt, truncated or unsupported image data, as imgrelay's own checks found it.
    #[error("{0}")]
    Undecodable(&'static str),
    /// A decoder refused the data; `detail` is its own message, for the log.
    #[error("the image data is corrupt or unsupported")]
    Decode { detail: String },
    /// imgrelay's own code panicked while handling the image (caught: the process goes on).
    /// The client sees an image that could not be processed; the payload goes to the log.
    #[error("the image could not be processed")]
    Panicked { detail: String },
    /// The transform would hold more memory than `transform.memory_bytes` allows in all.
    #[error("the image needs more memory to process than this server allows")]
    OverMemoryBudget,
    /// The result, already bounded by `limits.max_output_px`, is larger than the output
    /// format can store (WebP's 16383 px a side, say); the reason names the format.
    #[error("{0}")]
    OutputTooLarge(&'static str),
    /// The transform did not finish within `transform.timeout`.
    #[error("image processing took too long, retry later")]
    TransformTimeout,
    /// Admission refused: the work queue is full.
    #[error("server busy, retry later")]
    Overloaded { retry_after: Duration },
    /// The origin could not be reached, **or the destination was denied**: the two must be
    /// indistinguishable to a client (SPEC §2.6), so they share this variant and its answer.
    #[error("upstream unreachable")]
    Unreachable { detail: String },
    /// The origin answered with a status imgrelay does not relay (other 4xx, 5xx); `detail`
    /// names the host and the status, for the log.
    #[error("upstream error")]
    UpstreamStatus { status: StatusCode, detail: String },
    /// Too many redirects, a loop, or a 3xx without `Location`.
    #[error("upstream redirect error")]
    BadRedirect(&'static str),
    /// `upstream.connect_timeout` or `upstream.timeout` ran out.
    #[error("upstream timeout")]
    UpstreamTimeout,
    /// `/purge` could not delete the source's objects from the shared bucket (it did drop
    /// them from this replica's memory and disk); the detail is logged, never sent.
    #[error("the shared cache could not be purged, retry later")]
    SharedPurge { detail: String },
    /// `/purge` could not remove the source from this replica's disk tier; the detail (the
    /// I/O error) is logged, never sent.
    #[error("the disk cache could not be purged, retry later")]
    DiskPurge { detail: String },
    /// A bug or an environment failure; the detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

/// How loudly the boundary should log an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The client's doing: debug.
    Client,
    /// The origin's doing: warn.
    Upstream,
    /// Ours: error.
    Server,
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) | Error::BadSource(_) => StatusCode::BAD_REQUEST,
            Error::HostNotAllowed | Error::RefererNotAllowed | Error::BadSignature => {
                StatusCode::FORBIDDEN
            }
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::PayloadTooLarge | Error::DocumentTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::NotFound | Error::UpstreamNotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::SourceTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UriTooLong => StatusCode::URI_TOO_LONG,
            Error::NotAnImage => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::TooManyPixels
            | Error::TooManyFrames
            | Error::Undecodable(_)
            | Error::Decode { .. }
            | Error::Panicked { .. }
            | Error::OverMemoryBudget
            | Error::OutputTooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::TransformTimeout => StatusCode::SERVICE_UNAVAILABLE,
            Error::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Unreachable { .. } | Error::UpstreamStatus { .. } | Error::BadRedirect(_) => {
                StatusCode::BAD_GATEWAY
            }
            Error::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Error::SharedPurge { .. } | Error::DiskPurge { .. } => StatusCode::BAD_GATEWAY,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code for `X-Imgrelay-Error`; never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::BadSource(_) => "bad_source",
            Error::HostNotAllowed => "host_not_allowed",
            Error::RefererNotAllowed => "referer_not_allowed",
            Error::BadSignature => "bad_signature",
            Error::Unauthorized => "unauthorized",
            Error::PayloadTooLarge => "body_too_large",
            Error::DocumentTooLarge(_) => "document_too_large",
            Error::NotFound => "not_found",
            Error::UpstreamNotFound => "upstream_not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::SourceTooLarge => "source_too_large",
            Error::UriTooLong => "uri_too_long",
            Error::NotAnImage => "not_an_image",
            Error::TooManyPixels => "pixel_limit",
            Error::TooManyFrames => "frame_limit",
            Error::Undecodable(_) | Error::Decode { .. } | Error::Panicked { .. } => "undecodable",
            Error::OutputTooLarge(_) => "output_too_large",
            Error::OverMemoryBudget => "memory_limit",
            Error::TransformTimeout => "transform_timeout",
            Error::Overloaded { .. } => "overloaded",
            Error::Unreachable { .. } => "upstream_unreachable",
            Error::UpstreamStatus { .. } => "upstream_error",
            Error::BadRedirect(_) => "upstream_redirect",
            Error::UpstreamTimeout => "upstream_timeout",
            Error::SharedPurge { .. } => "shared_purge_failed",
            Error::DiskPurge { .. } => "disk_purge_failed",
            Error::Internal(_) => "internal",
        }
    }

    /// Who is at fault, which sets how loudly the boundary logs it: imgrelay itself (a bug, a
    /// panic, overload, a transform over its time), the origin (unreachable, refusing, or
    /// serving something that is no usable image), or the client (everything else).
    pub fn severity(&self) -> Severity {
        match self {
            Error::Internal(_)
            | Error::Panicked { .. }
            | Error::Overloaded { .. }
            | Error::TransformTimeout
            | Error::SharedPurge { .. }
            | Error::DiskPurge { .. } => Severity::Server,
            Error::Unreachable { .. }
            | Error::UpstreamStatus { .. }
            | Error::BadRedirect(_)
            | Error::UpstreamTimeout
            | Error::UpstreamNotFound
            | Error::NotAnImage
            | Error::SourceTooLarge
            | Error::TooManyPixels
            | Error::TooManyFrames
            | Error::Undecodable(_)
            | Error::Decode { .. }
            | Error::OverMemoryBudget => Severity::Upstream,
            _ => Severity::Client,
        }
    }

    /// Whether a CDN may cache this answer for `cache.negative_ttl` (SPEC §2.4): the origin
    /// said the image is gone, or the bytes are no image. Everything else is `no-store`.
    pub fn is_negative_cacheable(&self) -> bool {
        matches!(self, Error::UpstreamNotFound | Error::NotAnImage)
    }

    /// A caught panic, its payload (a `&str` or `String` from `panic!`) kept for the log.
    pub fn from_panic(payload: &(dyn std::any::Any + Send), during: &str) -> Error {
        let text = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a payload that is not text");
        Error::Panicked {
            detail: format!("panic {during}: {text}"),
        }
    }

    /// What the operator should see in the log line, beyond the public reason.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Error::Unreachable { detail }
            | Error::Internal(detail)
            | Error::SharedPurge { detail }
            | Error::DiskPurge { detail }
            | Error::UpstreamStatus { detail, .. }
            | Error::Decode { detail }
            | Error::Panicked { detail } => Some(detail),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_reason_never_carries_the_detail() {
        let e = Error::Unreachable {
            detail: "10.0.0.7:80 denied".into(),
        };
        assert_eq!(e.to_string(), "upstream unreachable");
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(e.detail(), Some("10.0.0.7:80 denied"));
        let e = Error::Internal("panic at foo.rs:12".into());
        assert_eq!(e.to_string(), "internal error");
    }

    #[test]
    fn only_gone_and_non_images_are_negative_cacheable() {
        assert!(Error::UpstreamNotFound.is_negative_cacheable());
        assert!(Error::NotAnImage.is_negative_cacheable());
        assert!(!Error::UpstreamTimeout.is_negative_cacheable());
        assert!(!Error::UpstreamStatus {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            detail: String::new(),
        }
        .is_negative_cacheable());
    }

    #[test]
    fn own_failures_are_not_blamed_on_the_origin() {
        let ours = [
            Error::Internal("bug".into()),
            Error::Panicked {
                detail: "index out of bounds".into(),
            },
            Error::Overloaded {
                retry_after: Duration::from_secs(1),
            },
            Error::TransformTimeout,
        ];
        for e in ours {
            assert_eq!(e.severity(), Severity::Server, "{e:?}");
        }
        let theirs = [
            Error::UpstreamTimeout,
            Error::NotAnImage,
            Error::TooManyPixels,
            Error::Decode {
                detail: "bad huffman code".into(),
            },
        ];
        for e in theirs {
            assert_eq!(e.severity(), Severity::Upstream, "{e:?}");
        }
        for e in [
            Error::OutputTooLarge("too large for WebP"),
            Error::BadSignature,
        ] {
            assert_eq!(e.severity(), Severity::Client, "{e:?}");
        }
    }

    #[test]
    fn causes_are_logged_never_sent() {
        let panic = Error::Panicked {
            detail: "attempt to subtract with overflow at src/image/decode.rs:7".into(),
        };
        assert_eq!(panic.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!panic.to_string().contains("overflow"));
        assert!(panic.detail().is_some_and(|d| d.contains("overflow")));
        let decode = Error::Decode {
            detail: "Format error decoding Png: CRC error".into(),
        };
        assert!(!decode.to_string().contains("CRC"));
        assert_eq!(
            decode.detail(),
            Some("Format error decoding Png: CRC error")
        );
    }
}
