//! A reader's browser: Chromium (Debian `chromium` + `chromium-driver`), driven through
//! chromedriver, loads an article rewritten with `server.public_url` at Varnish, in front of
//! imgrelay, in front of an origin that refuses hotlinks (any request with a `Referer`). Its
//! network is confined to loopback (SPEC §1).

use crate::{support::*, varnish::Varnish};
use imgrelay::{
    config::Config,
    rewrite::{Kind, Rewriter},
};
use serde_json::json;
use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::Duration,
};

const PACKAGES: &str = "install the Debian packages `chromium chromium-driver` \
                        (`bash tests/e2e/setup.sh`)";

/// chromedriver on a loopback port; killed on drop.
struct Driver {
    url: String,
    child: Child,
}

impl Driver {
    async fn start() -> Driver {
        let addr = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={}", addr.port()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run chromedriver ({e}): {PACKAGES}"));
        let mut d = Driver {
            url: format!("http://{addr}"),
            child,
        };
        for _ in 0..300 {
            if let Some(status) = d.child.try_wait().unwrap() {
                panic!("chromedriver exited with {status}: {PACKAGES}");
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not listen on {addr} within 30 s");
    }

    /// A headless Chromium with a fresh profile whose network ends at loopback.
    async fn browser(&self, profile: &std::path::Path) -> fantoccini::Client {
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-gpu".into(),
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1".into(),
            "--disable-background-networking".into(),
            "--disable-sync".into(),
            "--disable-component-update".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-default-apps".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        // Two crypto providers are compiled in (imgrelay's ring, the WebDriver client's
        // default): name the process's own.
        let _ = rustls::crypto::ring::default_provider().install_default();
        fantoccini::ClientBuilder::rustls()
            .expect("TLS for the WebDriver client")
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot start Chromium through chromedriver ({e}): {PACKAGES}")
            })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind((LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap()
}

/// An article whose images live on a host that refuses hotlinks: a plain `src`, a `srcset`
/// and a lazy image below a tall block, so it is loaded only once scrolled into view.
const ARTICLE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>post</title></head><body>
<h1>A post</h1>
<p><img src="http://photos.example/lead.jpg" alt="lead"></p>
<p><img src="http://photos.example/small.jpg" srcset="http://photos.example/small.jpg 1x, http://photos.example/big.jpg 2x" alt="set"></p>
<div style="height:4000px"></div>
<p><img loading="lazy" src="http://photos.example/late.jpg" alt="late"></p>
</body></html>
"#;

const IMAGES: &str = "return [...document.images].map(i => \
    [i.currentSrc, i.complete, i.naturalWidth]);";

/// Loads `page` in a new browser with a fresh profile, scrolls every image into view, and
/// returns `[currentSrc, complete, naturalWidth]` of each once all have decoded.
async fn show(driver: &Driver, page: &str) -> serde_json::Value {
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    browser.goto(page).await.unwrap();
    let mut last = serde_json::Value::Null;
    let mut decoded = false;
    for _ in 0..200 {
        browser
            .execute(
                "[...document.images].forEach(i => i.scrollIntoView());",
                vec![],
            )
            .await
            .unwrap();
        last = browser.execute(IMAGES, vec![]).await.unwrap();
        let imgs = last.as_array().unwrap();
        decoded = imgs.len() == 3
            && imgs
                .iter()
                .all(|i| i[1] == json!(true) && i[2].as_u64() > Some(0));
        if decoded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = browser.close().await;
    assert!(decoded, "images not decoded: {last}");
    last
}

/// How many image answers imgrelay has given (its own counter).
async fn relay_answers(relay: SocketAddr) -> f64 {
    request(relay, "GET", "/metrics", &[])
        .await
        .text()
        .lines()
        .filter(|l| l.starts_with("imgrelay_requests_total{") && l.contains("route=\"image\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn chromium_shows_every_rewritten_image_through_varnish() {
    let origin = Origin::start(|seen| {
        if seen.header("referer").is_some() || seen.header("cookie").is_some() {
            return Reply::status(403);
        }
        Reply::ok("image/jpeg", &jpeg(400, 300)).with_header("Cache-Control", "max-age=86400")
    })
    .await;
    let origin_addr = origin.addr;
    let relay = Relay::start(move |c| {
        c.upstream
            .resolve
            .insert("photos.example:80".into(), origin_addr);
    })
    .await;
    let varnish = Varnish::start(relay.addr).await;

    let mut rc = Config::default();
    rc.server.public_url = format!("http://{}", varnish.addr);
    let rewritten = Rewriter::new(&rc)
        .rewrite_document(ARTICLE.as_bytes(), Kind::Html, None)
        .unwrap();
    let page = String::from_utf8(rewritten.bytes).unwrap();
    assert!(!page.contains("src=\"http://photos.example"), "{page}");
    let pages =
        Origin::start(move |_| Reply::ok("text/html; charset=utf-8", page.as_bytes())).await;

    let driver = Driver::start().await;
    let page_url = pages.url("/post.html");
    let shown = show(&driver, &page_url).await;
    let served = relay_answers(relay.addr).await;
    let fetched = origin.seen().len();
    // A second reader, with a fresh profile: Varnish alone serves it.
    let again = show(&driver, &page_url).await;
    assert_eq!(again, shown, "the same images");
    assert_eq!(
        relay_answers(relay.addr).await,
        served,
        "nothing reached imgrelay"
    );
    assert_eq!(origin.seen().len(), fetched);

    let last = shown;
    let prefix = format!("http://{}/?", varnish.addr);
    for img in last.as_array().unwrap() {
        let src = img[0].as_str().unwrap();
        assert!(src.starts_with(&prefix), "{src} is not through Varnish");
    }
    let seen = origin.seen();
    assert!(!seen.is_empty(), "the origin served the images");
    for s in seen {
        assert_eq!(s.header("referer"), None, "{}", s.target);
        assert_eq!(s.header("cookie"), None, "{}", s.target);
    }
}
