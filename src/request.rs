//! What a `GET /?…` asks for (SPEC §2): the form rule, then the wsrv-style parameters.
//!
//! Pure parsing, no I/O. A query that starts with `http://` or `https://` (any case) is the
//! pass-through form and is kept byte for byte; anything else is
//! `application/x-www-form-urlencoded` parameters, where unknown or repeated names are errors
//! (they would split a CDN's cache) and a name without a value means true.

use crate::{config::Secret, error::Error, sign, transform::Transform};
use std::collections::BTreeMap;

/// The `output` value that asks for metadata instead of pixels (wsrv.nl's name).
pub const INFO_OUTPUT: &str = "json";

/// Parameter names of SPEC §2.2.
pub const PARAMS: &[&str] = &[
    "url", "w", "h", "dpr", "fit", "a", "fpx", "fpy", "q", "output", "we", "bg", "blur", "sharp",
    "default", "s",
];
/// The parameters that change the image; any of them makes a request a transform.
const TRANSFORM: &[&str] = crate::transform::PARAMS;

/// One image request, before the source is parsed as a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRequest {
    /// `/?{absolute-url}`: the raw query is the source, not percent-decoded.
    PassThrough { source: String },
    /// `/?url=…&…`: decoded parameters (`url` removed from `params`).
    Params {
        source: String,
        params: BTreeMap<String, String>,
    },
}

impl ImageRequest {
    pub fn parse(query: Option<&str>) -> Result<ImageRequest, Error> {
        let query = query.unwrap_or_default();
        if query.is_empty() {
            return Err(Error::BadRequest(
                "missing source: use /?{image-url} or /?url={image-url}".into(),
            ));
        }
        if starts_with_ignore_case(query, "http://") || starts_with_ignore_case(query, "https://") {
            return Ok(ImageRequest::PassThrough {
                source: query.to_string(),
            });
        }
        let mut params = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if !PARAMS.contains(&name.as_ref()) {
                return Err(Error::BadRequest(format!(
                    "unknown parameter `{}`",
                    printable(&name)
                )));
            }
            if params
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(Error::BadRequest(format!("duplicate parameter `{name}`")));
            }
        }
        let source = params
            .remove("url")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| Error::BadRequest("missing parameter `url`".into()))?;
        Ok(ImageRequest::Params { source, params })
    }

    pub fn source(&self) -> &str {
        match self {
            ImageRequest::PassThrough { source } | ImageRequest::Params { source, .. } => source,
        }
    }

    /// Whether any parameter asks for a change to the image.
    pub fn is_transform(&self) -> bool {
        match self {
            ImageRequest::PassThrough { .. } => false,
            ImageRequest::Params { params, .. } => {
                TRANSFORM.iter().any(|p| params.contains_key(*p))
            }
        }
    }

    /// Whether this asks for the source's metadata (`output=json`) instead of pixels. Only
    /// `url` and `s` may come with it: any other parameter is a 400, so one source has one
    /// metadata URL (a CDN caches it once) and `default` cannot turn a 422 into a redirect.
    pub fn is_info(&self) -> Result<bool, Error> {
        let ImageRequest::Params { params, .. } = self else {
            return Ok(false);
        };
        if params.get("output").map(String::as_str) != Some(INFO_OUTPUT) {
            return Ok(false);
        }
        match params
            .keys()
            .find(|k| !matches!(k.as_str(), "output" | "s"))
        {
            Some(other) => Err(Error::BadRequest(format!(
                "parameter `{other}` cannot come with output={INFO_OUTPUT} (only url and s can)"
            ))),
            None => Ok(true),
        }
    }

    /// The `default=` fallback URL, if given.
    pub fn default_url(&self) -> Option<&str> {
        match self {
            ImageRequest::PassThrough { .. } => None,
            ImageRequest::Params { params, .. } => params.get("default").map(String::as_str),
        }
    }
}

/// The URL of a transform on imgrelay: `{public_url}/?url={source}&{transform}`, parameters in
/// canonical order (`Transform`'s `Display`), signed with the first key when keys are set.
/// One URL per variant, so a CDN in front caches each variant once. Used by `imgrelay sign`;
/// the rewriter writes the same URLs through [`write_transform_url`].
pub fn transform_url(
    public_url: &str,
    keys: &[Secret],
    source: &str,
    transform: &Transform,
) -> String {
    let encoded: String = form_urlencoded::byte_serialize(source.as_bytes()).collect();
    let mut url = String::with_capacity(public_url.len() + encoded.len() + 64);
    write_transform_url(&mut url, public_url, keys, &encoded, transform);
    url
}

/// [`transform_url`] appended to `out`, for a source already percent-encoded as the `url=`
/// parameter (`form_urlencoded`): the rewriter encodes a source once for all its widths.
pub(crate) fn write_transform_url(
    out: &mut String,
    public_url: &str,
    keys: &[Secret],
    encoded_source: &str,
    transform: &Transform,
) {
    write_signed(out, public_url, keys, encoded_source, transform);
}

/// The metadata URL of a source on the imgrelay at `base`: `{base}/?url={source}&output=json`,
/// signed as [`transform_url`] signs (`imgrelay rewrite --info-from`). `encoded_source` is
/// percent-encoded as the `url=` parameter.
pub fn info_url(base: &str, keys: &[Secret], encoded_source: &str) -> String {
    let mut url = String::with_capacity(base.len() + encoded_source.len() + 64);
    write_signed(
        &mut url,
        base,
        keys,
        encoded_source,
        format_args!("output={INFO_OUTPUT}"),
    );
    url
}

/// `{base}/?url={encoded_source}&{params}`, then `&s=` signing what follows the authority of
/// `base` with the first key, when keys are set.
fn write_signed(
    out: &mut String,
    base: &str,
    keys: &[Secret],
    encoded_source: &str,
    params: impl std::fmt::Display,
) {
    use std::fmt::Write;
    // No URL parsing: the signed target is what follows the authority of the (validated)
    // base URL.
    let base = base.trim_end_matches('/');
    let authority = base.find("://").map_or(0, |i| i + 3);
    let split = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let (origin, path) = base.split_at(split);
    out.push_str(origin);
    let target_at = out.len();
    out.push_str(path);
    out.push_str("/?url=");
    out.push_str(encoded_source);
    let params_at = out.len();
    out.push('&');
    let _ = write!(out, "{params}");
    if out.len() == params_at + 1 {
        out.truncate(params_at);
    }
    if let Some(key) = keys.first() {
        let s = sign::signature(key.expose().as_bytes(), &out.as_bytes()[target_at..]);
        out.push_str("&s=");
        out.push_str(&s);
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// A client-supplied name, safe to echo in a one-line reason.
fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(q: &str) -> String {
        match ImageRequest::parse(Some(q)).unwrap() {
            ImageRequest::PassThrough { source } => source,
            other => panic!("{q}: {other:?}"),
        }
    }

    #[test]
    fn output_json_takes_only_url_and_s() {
        let info = |q: &str| ImageRequest::parse(Some(q)).unwrap().is_info();
        assert!(info("url=h/a.jpg&output=json").unwrap());
        assert!(info("output=json&url=h/a.jpg&s=abc").unwrap());
        assert!(!info("url=h/a.jpg&output=webp").unwrap());
        assert!(!info("url=h/a.jpg").unwrap());
        assert!(!info("http://h/a.jpg?output=json").unwrap());
        for extra in ["w=10", "default=h/b.jpg", "q=50", "we"] {
            let err = info(&format!("url=h/a.jpg&output=json&{extra}")).unwrap_err();
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST, "{extra}");
        }
    }

    #[test]
    fn the_raw_form_keeps_the_query_verbatim() {
        assert_eq!(
            pass("http://static.1sapp.com/a.jpeg"),
            "http://static.1sapp.com/a.jpeg"
        );
        assert_eq!(pass("https://h/p.png?x=1&y=2"), "https://h/p.png?x=1&y=2");
        assert_eq!(
            pass("HTTPS://h/p%20q.png?u=a%2Fb"),
            "HTTPS://h/p%20q.png?u=a%2Fb"
        );
    }

    #[test]
    fn parameters_are_decoded_in_any_order() {
        let r = ImageRequest::parse(Some("w=300&url=https%3A%2F%2Fh%2Fp.png%3Fx%3D1&we")).unwrap();
        assert_eq!(r.source(), "https://h/p.png?x=1");
        assert!(r.is_transform());
        let ImageRequest::Params { params, .. } = &r else {
            unreachable!()
        };
        assert_eq!(params.get("we").map(String::as_str), Some(""));

        let r = ImageRequest::parse(Some("url=//h/p.png")).unwrap();
        assert!(!r.is_transform());
        let r = ImageRequest::parse(Some("default=https%3A%2F%2Fh%2Fd.png&url=h/p.png")).unwrap();
        assert!(!r.is_transform());
        assert_eq!(r.default_url(), Some("https://h/d.png"));
    }

    /// What the rewriter asks for: `width` (if any) in `output`.
    fn variant_url(
        public_url: &str,
        keys: &[Secret],
        source: &str,
        width: Option<u32>,
        output: &str,
    ) -> String {
        let t = Transform {
            w: width,
            output: output.parse().unwrap(),
            ..Transform::default()
        };
        transform_url(public_url, keys, source, &t)
    }

    #[test]
    fn variant_urls_are_canonical_and_signed_when_keys_are_set() {
        let src = "http://static.1sapp.com/qupost/img/a.jpeg?x=1&y=2";
        assert_eq!(
            variant_url("https://img.example/", &[], src, Some(640), "webp"),
            "https://img.example/?url=http%3A%2F%2Fstatic.1sapp.com%2Fqupost%2Fimg%2Fa.jpeg%3Fx%3D1%26y%3D2&w=640&output=webp"
        );
        let key = Secret("imgrelay-test-key-0123456789abcdef".into());
        let signed = variant_url(
            "https://img.example/relay",
            std::slice::from_ref(&key),
            "https://h/a.png",
            None,
            "webp",
        );
        let target = signed.strip_prefix("https://img.example").unwrap();
        assert!(
            target.starts_with("/relay/?url=https%3A%2F%2Fh%2Fa.png&output=webp&s="),
            "{signed}"
        );
        sign::verify(&[key], target).unwrap();
        // what the server parses back is the same source
        let query = target.split_once('?').unwrap().1;
        assert_eq!(
            ImageRequest::parse(Some(query)).unwrap().source(),
            "https://h/a.png"
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let msg = |q: &str| ImageRequest::parse(Some(q)).unwrap_err().to_string();
        assert_eq!(msg("url=h/p&width=3"), "unknown parameter `width`");
        assert_eq!(msg("url=h/p&w=3&w=4"), "duplicate parameter `w`");
        assert_eq!(msg("w=3"), "missing parameter `url`");
        assert_eq!(msg("url="), "missing parameter `url`");
        assert_eq!(
            msg("url=h/p&x%0D%0ASet-Cookie=1"),
            "unknown parameter `x??Set-Cookie`"
        );
        assert!(ImageRequest::parse(None).is_err());
        assert!(ImageRequest::parse(Some("")).is_err());
    }
}
