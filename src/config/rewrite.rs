//! `[rewrite]`: what the article rewriter writes and which foreign wrappers it strips.

use super::HostPattern;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rewrite {
    pub widths: Vec<u32>,
    pub sizes: String,
    pub unwrap: Vec<UnwrapRule>,
    pub skip_hosts: Vec<HostPattern>,
    pub front_matter_keys: Vec<String>,
    pub lazy: bool,
    pub decoding: bool,
    pub dimensions: bool,
    /// How many content images, the first of at least 50,000 px² (`rewrite::loading`)
    /// (or of unknown size), load eagerly; the first of them gets `fetchpriority="high"`.
    pub eager: usize,
    /// A running imgrelay (`http://127.0.0.1:8080`) that `imgrelay rewrite` asks for
    /// `output=json` of each image without usable dimensions; `""` asks nothing.
    pub info_from: String,
    /// What a measured image's box shows until its picture arrives.
    pub placeholder: Placeholder,
    /// The `output=` of every URL the rewriter writes (`""` keeps the source format).
    #[serde(with = "output_key")]
    pub output: crate::transform::Output,
    /// The transform written into the URLs of `thumbnail_keys` (`"w=640&h=360&fit=cover"`;
    /// `""` = the same URL as every other image). Checked by `validate`.
    pub thumbnail: String,
    /// Front matter keys whose image is a card, written with `thumbnail`.
    pub thumbnail_keys: Vec<String>,
}

impl Rewrite {
    /// `thumbnail` as a transform (`None` when empty), its output `output` unless it names
    /// one: a card is written in the same format as every other image.
    pub fn thumbnail_transform(
        &self,
        max_output_px: u32,
    ) -> Result<Option<crate::transform::Transform>, crate::error::Error> {
        use crate::transform::{Output, Transform};
        if self.thumbnail.trim().is_empty() {
            return Ok(None);
        }
        let mut t = Transform::from_query(self.thumbnail.trim(), max_output_px)?;
        if t.output == Output::Source {
            t.output = self.output;
        }
        Ok(Some(t))
    }
}

/// `rewrite.output` as its keyword, parsed at load so a bad value names the key.
mod output_key {
    use crate::transform::Output;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(o: &Output, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(o)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Output, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|()| {
            serde::de::Error::custom(format!(
                "`{s}` is not one of webp, avif, jpg, png, gif, auto or \"\""
            ))
        })
    }
}

impl Default for Rewrite {
    fn default() -> Self {
        let unwrap = |prefix: &str, mode| UnwrapRule {
            prefix: prefix.into(),
            mode,
        };
        Rewrite {
            widths: vec![320, 640, 960, 1280],
            sizes: "(max-width: 800px) 100vw, 800px".into(),
            unwrap: vec![
                unwrap("https://cors.zfour.workers.dev/?", UnwrapMode::Rest),
                unwrap("https://wsrv.nl/?", UnwrapMode::ParamUrl),
                unwrap("https://images.weserv.nl/?", UnwrapMode::ParamUrl),
                unwrap("https://i0.wp.com/", UnwrapMode::Path),
                unwrap("https://i1.wp.com/", UnwrapMode::Path),
                unwrap("https://i2.wp.com/", UnwrapMode::Path),
                unwrap("https://i3.wp.com/", UnwrapMode::Path),
            ],
            skip_hosts: Vec::new(),
            front_matter_keys: ["headimg", "thumbnail", "cover", "image", "banner"]
                .map(String::from)
                .to_vec(),
            lazy: true,
            decoding: true,
            dimensions: true,
            eager: 1,
            info_from: String::new(),
            placeholder: Placeholder::None,
            output: crate::transform::Output::Fixed(crate::transform::Format::Webp),
            thumbnail: String::new(),
            thumbnail_keys: ["thumbnail", "cover"].map(String::from).to_vec(),
        }
    }
}

/// `rewrite.placeholder`: what the rewriter paints behind a measured image (`--info-from`),
/// merged into its `style`, until the picture arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placeholder {
    /// Nothing.
    #[default]
    None,
    /// `background-color`: the picture's dominant colour.
    Color,
    /// A tiny blurred copy as a `data:` URI background, over the dominant colour.
    Blur,
}

/// A foreign proxy wrapper to strip before rewriting (SPEC §3).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UnwrapRule {
    pub prefix: String,
    pub mode: UnwrapMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum UnwrapMode {
    /// The remainder after the prefix, verbatim.
    #[serde(rename = "rest")]
    Rest,
    /// The percent-decoded `url` query parameter.
    #[serde(rename = "param:url")]
    ParamUrl,
    /// Host and path follow the prefix; scheme https; the wrapper's query dropped.
    #[serde(rename = "path")]
    Path,
}
