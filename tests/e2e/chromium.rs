//! A reader's browser: headless Chromium (Debian `chromium` + `chromium-driver`) driven through
//! chromedriver with the WebDriver client `fantoccini`, its network confined to loopback
//! (SPEC §1), each session with a fresh profile. It reports what every `<img>` of a page
//! became once decoded; what to assert about that is the suites' business.

use crate::stack::{await_listening, free_port};
use serde_json::json;
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

const PACKAGES: &str = "install the Debian packages `chromium chromium-driver` \
                        (`bash tests/e2e/setup.sh`)";

/// chromedriver on a loopback port; killed on drop.
pub(crate) struct Driver {
    url: String,
    child: Child,
}

/// One `<img>` of a page as the browser left it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shown {
    /// The `src` attribute, as the page's HTML has it.
    pub(crate) src: String,
    /// The URL the browser chose and loaded (a `srcset` candidate, or `src`).
    pub(crate) current_src: String,
    pub(crate) natural_width: u64,
    /// Whether the page asked for it to be loaded lazily (`loading="lazy"`).
    pub(crate) lazy: bool,
}

/// Each image's `[src, currentSrc, complete && naturalWidth > 0, naturalWidth, loading]`, after
/// scrolling the first image that has not decoded yet into view: lazy images load only there.
const STEP: &str = "const imgs = [...document.images];
    const done = i => i.complete && i.naturalWidth > 0;
    const pending = imgs.find(i => !done(i));
    if (pending) pending.scrollIntoView({block: 'center'});
    return imgs.map(i => [i.getAttribute('src') || '', i.currentSrc, done(i), i.naturalWidth,
                          i.getAttribute('loading') || '']);";

impl Driver {
    pub(crate) async fn start() -> Driver {
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
        await_listening(&mut d.child, addr, "chromedriver", PACKAGES).await;
        d
    }

    /// A headless Chromium with a fresh profile whose network ends at loopback: every name
    /// resolves to nothing but 127.0.0.1, no proxy is used whatever the environment says, and
    /// the browser's own background traffic (updates, sync, first-run pages) is off.
    /// Chromium that does not come up in time (chromedriver's "DevToolsActivePort file doesn't
    /// exist", seen on a loaded machine) is tried again, twice, each time with a new profile.
    async fn browser(&self, profile: &Path) -> fantoccini::Client {
        let mut why = String::new();
        for attempt in 0..3 {
            match self.session(&profile.join(format!("try-{attempt}"))).await {
                Ok(client) => return client,
                Err(e) => why = e.to_string(),
            }
        }
        panic!("cannot start Chromium through chromedriver ({why}): {PACKAGES}")
    }

    async fn session(
        &self,
        profile: &Path,
    ) -> Result<fantoccini::Client, fantoccini::error::NewSessionError> {
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-gpu".into(),
            "--window-size=1280,800".into(),
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1".into(),
            "--no-proxy-server".into(),
            "--disable-background-networking".into(),
            "--disable-sync".into(),
            "--disable-component-update".into(),
            "--disable-domain-reliability".into(),
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
    }

    /// Opens a browser with a fresh profile, loads each of `pages` in turn until every image
    /// on it has decoded, and returns what each page's images became (in `pages` order).
    /// Panics naming the images that did not decode within a minute.
    pub(crate) async fn read(&self, pages: &[String]) -> Vec<Vec<Shown>> {
        let profile = tempfile::tempdir().unwrap();
        let browser = self.browser(profile.path()).await;
        let mut all = Vec::new();
        for page in pages {
            browser.goto(page).await.unwrap();
            let mut last = serde_json::Value::Null;
            let mut decoded = false;
            for _ in 0..600 {
                last = browser.execute(STEP, vec![]).await.unwrap();
                let imgs = last.as_array().unwrap();
                decoded = imgs.iter().all(|i| i[2] == json!(true));
                if decoded {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(decoded, "{page}: images not decoded: {last:#}");
            let shown = last.as_array().unwrap().iter().map(|i| Shown {
                src: i[0].as_str().unwrap().to_string(),
                current_src: i[1].as_str().unwrap().to_string(),
                natural_width: i[3].as_u64().unwrap(),
                lazy: i[4] == json!("lazy"),
            });
            all.push(shown.collect());
        }
        let _ = browser.close().await;
        all
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
