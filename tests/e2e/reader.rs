//! What a reader on a phone gains (BENCHMARKS.md, "A reader's phone"): the posts of
//! `layout.rs` in Chromium at 390 CSS pixels and a device pixel ratio of 2, each page loaded
//! in a fresh profile under DevTools' "Slow 4G" throttling, the original (its images from
//! their hosts, here the test origin) against the rewritten one (through Varnish and
//! imgrelay, measured with `--info-from`). Per post: the bytes its images took and when its
//! Largest Contentful Paint was painted. A benchmark, not a check: the one command is
//!
//! ```sh
//! cargo test --features e2e --test e2e reader_ -- --ignored --nocapture
//! ```
//!
//! Resource Timing reports no size for a cross-origin image without `Timing-Allow-Origin`
//! (both imgrelay's and the originals' are), so the bytes are read from DevTools' network log
//! (`Network.loadingFinished`'s `encodedDataLength`: headers and body as received, what
//! `transferSize` counts).

use crate::{
    chromium::{self, Driver, Screen},
    layout::{site, Stack, HTTPS_HOSTS, HTTP_HOSTS, POSTS},
};
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{json, Value};
use std::{collections::HashSet, net::SocketAddr, path::PathBuf};

/// Loads of each page; the LCP time reported is their median.
const RUNS: usize = 3;

/// A chromedriver extension command: `POST /session/{id}/{path}` with `body`.
#[derive(Debug)]
struct Goog {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for Goog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/{}", session.unwrap_or(""), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

async fn cdp(browser: &fantoccini::Client, cmd: &str, params: Value) {
    let body = json!({ "cmd": cmd, "params": params });
    let path = "goog/cdp/execute";
    browser.issue_cmd(Goog { path, body }).await.unwrap();
}

/// DevTools' "Slow 4G" preset: 562.5 ms of latency, 180,000 bytes/s down, 84,375 up.
async fn slow_4g(browser: &fantoccini::Client) {
    cdp(browser, "Network.enable", json!({})).await;
    let conditions = json!({
        "offline": false,
        "latency": 562.5,
        "downloadThroughput": 180_000.0,
        "uploadThroughput": 84_375.0,
    });
    cdp(browser, "Network.emulateNetworkConditions", conditions).await;
}

/// How many image responses over http DevTools logged and the bytes they took, headers
/// included (the browser's own `chrome://` pictures of a new profile are not the page's).
async fn image_bytes(browser: &fantoccini::Client) -> (usize, u64) {
    let path = "se/log";
    let body = json!({ "type": "performance" });
    let log = browser.issue_cmd(Goog { path, body }).await.unwrap();
    let mut images = HashSet::new();
    let mut finished = Vec::new();
    for entry in log.as_array().unwrap() {
        let m: Value = serde_json::from_str(entry["message"].as_str().unwrap()).unwrap();
        let (method, params) = (&m["message"]["method"], &m["message"]["params"]);
        let id = params["requestId"].as_str().unwrap_or("").to_string();
        let url = params["response"]["url"].as_str().unwrap_or("");
        if method == "Network.responseReceived"
            && params["type"] == "Image"
            && url.starts_with("http")
        {
            images.insert(id);
        } else if method == "Network.loadingFinished" {
            finished.push((id, params["encodedDataLength"].as_f64().unwrap_or(0.0)));
        }
    }
    let done: Vec<f64> = finished
        .into_iter()
        .filter(|(id, _)| images.contains(id))
        .map(|(_, n)| n)
        .collect();
    (done.len(), done.iter().sum::<f64>() as u64)
}

/// One load of `page` on the phone, throttled: image count, bytes, LCP time (ms).
async fn read(driver: &Driver, page: &str, throttled: bool) -> (usize, u64, f64) {
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path(), Screen::Phone).await;
    if throttled {
        slow_4g(&browser).await;
    }
    let loaded = chromium::load(&browser, page).await;
    let (count, bytes) = image_bytes(&browser).await;
    let _ = browser.close().await;
    (count, bytes, loaded.lcp.map_or(f64::NAN, |l| l.time))
}

/// The post as published: its images from their own hosts, here all on the plain-http test
/// origin (`http://{origin}/{path}`, the same photograph at the same path), unwrapped from
/// the CORS proxy it names.
fn original(post: &PathBuf, origin: SocketAddr) -> String {
    let mut text = std::fs::read_to_string(post)
        .unwrap()
        .replace("https://cors.zfour.workers.dev/?", "");
    for host in HTTP_HOSTS.iter().chain(&HTTPS_HOSTS) {
        for scheme in ["http", "https"] {
            text = text.replace(&format!("{scheme}://{host}/"), &format!("http://{origin}/"));
        }
    }
    text
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test]
#[ignore = "a benchmark: minutes under throttling; its figures are in BENCHMARKS.md"]
async fn reader_bytes_and_lcp_on_a_phone_original_against_rewritten() {
    let stack = Stack::start(|_| {}).await;
    let relay = format!("http://{}", stack.relay.addr);
    let rewritten = stack.rewrite("measured", &["--info-from", &relay]).await;
    let originals: Vec<PathBuf> = POSTS
        .iter()
        .map(|p| {
            let path = stack.dir.path().join(format!("original-{p}"));
            std::fs::write(
                &path,
                original(&crate::browser::corpus().join(p), stack.plain.addr),
            )
            .unwrap();
            path
        })
        .collect();
    let (_site, urls) = site(&[("original", &originals), ("rewritten", &rewritten)]).await;
    let driver = Driver::start().await;
    // Varnish and imgrelay hold what a phone asks for, as they would for a post's readers.
    for url in &urls[1] {
        read(&driver, url, false).await;
    }
    let mut table = String::from(
        "| post | images | original KB | rewritten KB | saved | LCP original | LCP rewritten |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let (mut total_o, mut total_r) = (0, 0);
    for (i, post) in POSTS.iter().enumerate() {
        let mut runs = [Vec::new(), Vec::new()];
        let mut bytes = [(0, 0); 2];
        for _ in 0..RUNS {
            for (v, run) in runs.iter_mut().enumerate() {
                let (count, b, lcp) = read(&driver, &urls[v][i], true).await;
                bytes[v] = (count, b);
                run.push(lcp);
            }
        }
        let [(n, o), (_, r)] = bytes;
        total_o += o;
        total_r += r;
        let name = post.split("__").next().unwrap_or(post);
        table += &format!(
            "| {name} | {n} | {:.0} | {:.0} | {:.0} % | {:.0} ms | {:.0} ms |\n",
            o as f64 / 1000.0,
            r as f64 / 1000.0,
            100.0 * (1.0 - r as f64 / o as f64),
            median(runs[0].clone()),
            median(runs[1].clone()),
        );
    }
    table += &format!(
        "| all | | {:.0} | {:.0} | {:.0} % | | |\n",
        total_o as f64 / 1000.0,
        total_r as f64 / 1000.0,
        100.0 * (1.0 - total_r as f64 / total_o as f64)
    );
    println!("{table}");
}
