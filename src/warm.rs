//! `imgrelay warm PATH…`: fills the cache of a running imgrelay with every image the rewritten
//! articles reference (every srcset width too), by requesting each URL the rewriter writes,
//! so the first reader of an article gets hits (requests as [`crate::batch`] makes them:
//! bounded per origin host and in total, 503s asked again, a progress bar), a failure summary
//! by cause, exit 1 if any failed.

use crate::{
    batch,
    config::Config,
    rewrite::{self, cli::collect, Kind, Rewriter},
};
use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    path::PathBuf,
    process::ExitCode,
};
use url::Url;

/// Flags of `imgrelay warm`.
#[derive(Debug, Clone, clap::Args)]
pub struct WarmArgs {
    /// Resolve relative image URLs against this URL (as `rewrite --base`).
    #[arg(long)]
    pub base: Option<Url>,
    /// Files or directories (recursive) of articles.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Every imgrelay URL in a rewritten document: attribute values (entity-escaped `&amp;`),
/// srcset candidates, Markdown and front matter values.
pub fn imgrelay_urls(doc: &str, public_url: &str) -> Vec<String> {
    let prefix = format!("{}/?url=", public_url.trim_end_matches('/'));
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find(&prefix) {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '<' | '>' | ','))
            .unwrap_or(tail.len());
        out.push(tail[..end].replace("&amp;", "&"));
        rest = &tail[end..];
    }
    out
}

/// Runs `warm`; prints the summary; exit 1 when anything failed.
pub fn main(config: &Config, args: &WarmArgs) -> ExitCode {
    match run(config, args) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("imgrelay warm: {e}");
            ExitCode::from(1)
        }
    }
}

/// Returns the number of URLs that failed.
pub fn run(config: &Config, args: &WarmArgs) -> io::Result<usize> {
    let rewriter = Rewriter::new(config);
    let mut urls = BTreeSet::new();
    for root in &args.paths {
        for file in collect(root)? {
            let input = std::fs::read(&file)?;
            let output = rewriter
                .rewrite_document(&input, Kind::from_path(&file), args.base.as_ref())
                .map_err(|e: rewrite::RewriteError| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", file.display()),
                    )
                })?;
            urls.extend(imgrelay_urls(
                &String::from_utf8_lossy(&output.bytes),
                &config.server.public_url,
            ));
        }
    }
    fetch_all(config, urls.into_iter().collect())
}

/// Requests every URL ([`batch::get_all`]) and prints the summary; the number that failed.
fn fetch_all(config: &Config, urls: Vec<String>) -> io::Result<usize> {
    let outcomes = batch::get_all(config, &urls, 0)?;
    let mut causes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut hits = 0;
    for outcome in &outcomes {
        match outcome {
            Ok(a) => hits += usize::from(a.hit),
            Err(cause) => *causes.entry(cause).or_default() += 1,
        }
    }
    let total = urls.len();
    let failed: usize = causes.values().sum();
    let mut line = format!(
        "warm: {total} URLs, {} warmed ({hits} already cached), {failed} failed",
        total - failed
    );
    if failed > 0 {
        let by: Vec<String> = causes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        line.push_str(&format!(": {}", by.join(", ")));
    }
    eprintln!("{line}");
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_urls_in_attributes_srcset_and_markdown() {
        let p = "http://img.example";
        let doc = r#"<img src="http://img.example/?url=a&amp;w=640&amp;output=webp" srcset="http://img.example/?url=a&amp;w=320 320w, http://img.example/?url=a&amp;w=640 640w">
![x](http://img.example/?url=b&output=webp "t")
headimg: 'http://img.example/?url=c&output=webp'
<a href="https://elsewhere/?url=z">"#;
        assert_eq!(
            imgrelay_urls(doc, p),
            vec![
                "http://img.example/?url=a&w=640&output=webp",
                "http://img.example/?url=a&w=320",
                "http://img.example/?url=a&w=640",
                "http://img.example/?url=b&output=webp",
                "http://img.example/?url=c&output=webp",
            ]
        );
    }
}
