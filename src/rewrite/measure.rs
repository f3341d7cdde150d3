//! What a running imgrelay measured of the sources (`imgrelay rewrite --info-from`): the
//! fields of its `output=json` answer the rewriter writes from, keyed by the source's `url=`
//! encoding ([`super::Resolver::encode`]), the form the rewriter holds a source in.

use serde::Deserialize;
use std::collections::BTreeMap;

/// One source as `output=json` describes it (SPEC §2.2); fields the rewriter does not use are
/// ignored, so the answer may grow.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Measure {
    /// As displayed (after EXIF orientation): what `width`/`height` attributes must say.
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub has_alpha: bool,
    /// `#rrggbb`.
    #[serde(default)]
    pub dominant_color: Option<String>,
    /// A tiny blurred image as a `data:` URI, when the server writes one.
    #[serde(default)]
    pub placeholder: Option<String>,
}

impl Measure {
    /// Reads an `output=json` answer; `None` unless it is JSON with positive dimensions.
    pub fn from_json(body: &[u8]) -> Option<Measure> {
        serde_json::from_slice::<Measure>(body)
            .ok()
            .filter(|m| m.width > 0 && m.height > 0)
    }
}

/// Measures by the `url=` encoding of their source.
pub type Measures = BTreeMap<String, Measure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_their_fields() {
        let m = Measure::from_json(
            br##"{"format":"jpeg","width":1200,"height":800,"frames":1,"has_alpha":false,
                "bytes":123,"dominant_color":"#102030","new_field":[1]}"##,
        )
        .unwrap();
        assert_eq!((m.width, m.height), (1200, 800));
        assert_eq!(m.dominant_color.as_deref(), Some("#102030"));
        assert_eq!(m.placeholder, None);
        for bad in [
            &b"{}"[..],
            b"{\"width\":0,\"height\":5}",
            b"{\"width\":-1,\"height\":5}",
            b"<html>",
            b"",
        ] {
            assert_eq!(Measure::from_json(bad), None, "{bad:?}");
        }
    }
}
