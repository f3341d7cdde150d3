//! `imgrelay warm PATH…`: fills the cache of a running imgrelay with every image the rewritten
//! articles reference (every srcset width too), by requesting each URL the rewriter writes,
//! so the first reader of an article gets hits. Bounded concurrency per origin host and in
//! total (`transform.queue`, what the server admits at once), a 503 asked again after its
//! `Retry-After`, a progress bar on a terminal (plain lines otherwise), a failure summary by
//! cause, exit 1 if any failed.

use crate::{
    config::Config,
    rewrite::{self, cli::collect, Kind, Rewriter},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io::{self, IsTerminal},
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::Semaphore;
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

fn source_host(url: &str) -> String {
    url.split_once('?')
        .and_then(|(_, q)| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "url"))
        .and_then(|(_, v)| crate::fetch::source::parse(&v).ok())
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let failures = runtime.block_on(fetch_all(config, urls.into_iter().collect()))?;
    Ok(failures)
}

/// How often a URL answered with 503 (the server's work queue was full) is asked again, and the
/// longest `Retry-After` waited for.
const RETRIES: u32 = 3;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Requests `url` (again after each 503, up to [`RETRIES`] times); whether it was already
/// cached, or the cause of the failure (the `X-Imgrelay-Error` code, else the status).
async fn warm_one<C>(client: &Client<C, Empty<Bytes>>, url: &str) -> Result<bool, String>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let uri = url
        .parse::<http::Uri>()
        .map_err(|_| "invalid URL".to_string())?;
    let mut tries = 0;
    loop {
        let resp = client
            .get(uri.clone())
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let status = resp.status();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
        let code = header("x-imgrelay-error").map(str::to_string);
        let hit = header("x-cache").is_some_and(|v| v.starts_with("HIT"));
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::from_secs(1), Duration::from_secs);
        let _ = resp.into_body().collect().await;
        if status.is_success() {
            return Ok(hit);
        }
        if status == http::StatusCode::SERVICE_UNAVAILABLE && tries < RETRIES {
            tries += 1;
            tokio::time::sleep(retry_after.min(MAX_RETRY_AFTER)).await;
            continue;
        }
        return Err(code.unwrap_or_else(|| format!("status {}", status.as_u16())));
    }
}

async fn fetch_all(config: &Config, urls: Vec<String>) -> io::Result<usize> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(io::Error::other)?
        .https_or_http()
        .enable_http1()
        .wrap_connector({
            let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
            http.enforce_http(false);
            http
        });
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let per_host = config.upstream.per_host_concurrency;
    let mut hosts: HashMap<String, Arc<Semaphore>> = HashMap::new();
    // no more at once than the server admits to its work queue
    let all = Arc::new(Semaphore::new(config.transform.queue));
    let bar = if io::stderr().is_terminal() {
        indicatif::ProgressBar::new(urls.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let plain = bar.is_hidden();
    let causes: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let total = urls.len();
    for url in urls {
        let sem = hosts
            .entry(source_host(&url))
            .or_insert_with(|| Arc::new(Semaphore::new(per_host)))
            .clone();
        let (client, bar, causes, hits, all) = (
            client.clone(),
            bar.clone(),
            causes.clone(),
            hits.clone(),
            all.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _host = sem.acquire_owned().await;
            let _total = all.acquire_owned().await;
            let outcome = warm_one(&client, &url).await;
            match &outcome {
                Ok(hit) => {
                    hits.fetch_add(usize::from(*hit), std::sync::atomic::Ordering::Relaxed);
                }
                Err(cause) => {
                    *causes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(cause.clone())
                        .or_default() += 1;
                    if plain {
                        eprintln!("failed {cause}: {url}");
                    } else {
                        bar.println(format!("failed {cause}: {url}"));
                    }
                }
            }
            bar.inc(1);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    bar.finish_and_clear();
    let causes = causes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let failed: usize = causes.values().sum();
    let hits = hits.load(std::sync::atomic::Ordering::Relaxed);
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
        assert_eq!(
            source_host("http://img.example/?url=https%3A%2F%2FStatic.Example%2Fa.jpg&w=1"),
            "static.example"
        );
    }
}
