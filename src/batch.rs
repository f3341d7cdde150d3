//! Many GETs to a running imgrelay, for the subcommands that feed it (`imgrelay warm`) or ask
//! it (`imgrelay rewrite --info-from`): bounded concurrency per source host
//! (`upstream.per_host_concurrency`, read from each URL's `url=`) and in total
//! (`transform.queue`, what the server admits at once), a 503 asked again after its
//! `Retry-After`, a progress bar on a terminal (plain lines otherwise), each failure printed
//! with its cause as it happens.

use crate::config::Config;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use std::{
    collections::HashMap,
    io::{self, IsTerminal},
    sync::Arc,
    time::Duration,
};
use tokio::sync::Semaphore;

/// How often a URL answered with 503 (the server's work queue was full) is asked again, and
/// the longest `Retry-After` waited for.
const RETRIES: u32 = 3;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Whether imgrelay had it cached (`X-Cache: HIT…`).
    pub hit: bool,
    /// The body, when asked for ([`get_all`]'s `max_body`).
    pub body: Bytes,
}

/// An answer, or the cause of the failure: the `X-Imgrelay-Error` code, else `status N`, else
/// what failed before a status.
pub type Outcome = Result<Answer, String>;

/// GETs every URL of `urls`; bodies up to `max_body` bytes are kept (0: read and dropped; a
/// longer one is a failure). Outcomes in the order of `urls`.
pub fn get_all(config: &Config, urls: &[String], max_body: usize) -> io::Result<Vec<Outcome>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(fetch_all(config, urls, max_body))
}

/// The host of the source a URL of imgrelay names in its `url=` parameter (`""` without one).
pub fn source_host(url: &str) -> String {
    url.split_once('?')
        .and_then(|(_, q)| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "url"))
        .and_then(|(_, v)| crate::fetch::source::parse(&v).ok())
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// Requests `url` (again after each 503, up to [`RETRIES`] times).
async fn get_one<C>(client: &Client<C, Empty<Bytes>>, url: &str, max_body: usize) -> Outcome
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
        let body = read(resp.into_body(), max_body).await;
        if status.is_success() {
            return body.map(|body| Answer { hit, body });
        }
        if status == http::StatusCode::SERVICE_UNAVAILABLE && tries < RETRIES {
            tries += 1;
            tokio::time::sleep(retry_after.min(MAX_RETRY_AFTER)).await;
            continue;
        }
        return Err(code.unwrap_or_else(|| format!("status {}", status.as_u16())));
    }
}

/// The body up to `max` bytes (0: read to the end and dropped, frame by frame).
async fn read(mut body: hyper::body::Incoming, max: usize) -> Result<Bytes, String> {
    if max == 0 {
        while let Some(frame) = body.frame().await {
            frame.map_err(|e| format!("body: {e}"))?;
        }
        return Ok(Bytes::new());
    }
    Limited::new(body, max)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| format!("body: {e}"))
}

async fn fetch_all(config: &Config, urls: &[String], max_body: usize) -> io::Result<Vec<Outcome>> {
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
    let all = Arc::new(Semaphore::new(config.transform.queue));
    let bar = if io::stderr().is_terminal() {
        indicatif::ProgressBar::new(urls.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let plain = bar.is_hidden();
    let mut tasks = Vec::with_capacity(urls.len());
    for url in urls {
        let sem = hosts
            .entry(source_host(url))
            .or_insert_with(|| Arc::new(Semaphore::new(per_host)))
            .clone();
        let (client, bar, all, url) = (client.clone(), bar.clone(), all.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let _host = sem.acquire_owned().await;
            let _total = all.acquire_owned().await;
            let outcome = get_one(&client, &url, max_body).await;
            if let Err(cause) = &outcome {
                if plain {
                    eprintln!("failed {cause}: {url}");
                } else {
                    bar.println(format!("failed {cause}: {url}"));
                }
            }
            bar.inc(1);
            outcome
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        outcomes.push(t.await.unwrap_or_else(|e| Err(format!("task: {e}"))));
    }
    bar.finish_and_clear();
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_host_is_read_from_the_url_parameter() {
        assert_eq!(
            source_host("http://img.example/?url=https%3A%2F%2FStatic.Example%2Fa.jpg&w=1"),
            "static.example"
        );
        assert_eq!(source_host("http://img.example/?w=1"), "");
        assert_eq!(source_host("http://img.example/"), "");
    }
}
