//! A reader's browser: headless Chromium (Debian `chromium` + `chromium-driver`) driven through
//! chromedriver with the WebDriver client `fantoccini`, its network confined to loopback
//! (SPEC §1), each session with a fresh profile. It reports what every `<img>` of a page
//! became once decoded, and how the page loaded (its layout shifts, its Largest Contentful
//! Paint); what to assert about that is the suites' business.

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

/// The browser's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Screen {
    /// 1280×800 CSS pixels at a device pixel ratio of 1.
    Desktop,
    /// 390×844 CSS pixels at a device pixel ratio of 2 (a current iPhone), with a phone's
    /// viewport rules; the DevTools network log is kept (`goog:loggingPrefs`), for the bytes
    /// each image took.
    Phone,
}

/// How a page loaded, as the browser's own performance timeline has it.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) images: Vec<Shown>,
    /// Cumulative Layout Shift: the sum of every `layout-shift` entry not caused by input,
    /// read after every image decoded and the page was scrolled to its end.
    pub(crate) cls: f64,
    /// Each shift: its score and the elements that moved (tag and `src` or first words).
    pub(crate) shifts: Vec<(f64, Vec<String>)>,
    /// The Largest Contentful Paint element, read once the images in the first viewport
    /// decoded and before any scrolling (which would bring larger images into view).
    pub(crate) lcp: Option<Lcp>,
}

/// The Largest Contentful Paint element.
#[derive(Debug, Clone)]
pub(crate) struct Lcp {
    /// `img`, `p`, …
    pub(crate) tag: String,
    pub(crate) src: String,
    pub(crate) loading: String,
    pub(crate) fetchpriority: String,
    /// When it was painted, in milliseconds from the navigation's start.
    pub(crate) time: f64,
}

/// True once the document loaded and every image that intersects the viewport decoded.
const VIEWPORT_DECODED: &str = "if (document.readyState !== 'complete') return false;
    return [...document.images].every(i => {
        const r = i.getBoundingClientRect();
        const seen = r.bottom > 0 && r.top < innerHeight;
        return !seen || (i.complete && i.naturalWidth > 0);
    });";

/// The latest `largest-contentful-paint` entry's element (buffered), or null.
const LCP: &str = "const done = arguments[arguments.length - 1];
    new PerformanceObserver(list => {
        const all = list.getEntries();
        const e = all[all.length - 1];
        const el = e.element;
        const attr = n => (el && el.getAttribute(n)) || '';
        done({tag: el ? el.tagName.toLowerCase() : '', src: attr('src') || e.url,
              loading: attr('loading'), fetchpriority: attr('fetchpriority'),
              time: e.startTime});
    }).observe({type: 'largest-contentful-paint', buffered: true});
    setTimeout(() => done(null), 3000);";

/// Every `layout-shift` entry so far (buffered), once two frames have passed at the end of
/// the page: `[value, hadRecentInput, [moved element, …]]`.
const SHIFTS: &str = "const done = arguments[arguments.length - 1];
    const shifts = [];
    new PerformanceObserver(list => {
        for (const e of list.getEntries()) {
            const moved = e.sources.map(s => {
                const n = s.node;
                if (!n) return '(gone)';
                const what = n.getAttribute ? (n.getAttribute('src') || '') : '';
                return n.nodeName.toLowerCase() + ' ' + (what || (n.textContent || '').slice(0, 40));
            });
            shifts.push([e.value, e.hadRecentInput, moved]);
        }
    }).observe({type: 'layout-shift', buffered: true});
    window.scrollTo(0, document.documentElement.scrollHeight);
    requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => done(shifts), 200)));";

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
    pub(crate) async fn browser(&self, profile: &Path, screen: Screen) -> fantoccini::Client {
        self.browser_waiting(profile, screen, true).await
    }

    /// [`Driver::browser`]; with `for_load` false, navigating returns once the document is
    /// parsed (`pageLoadStrategy: eager`), not after its eager images arrived (`load`): for
    /// a page whose images the origin holds back.
    pub(crate) async fn browser_waiting(
        &self,
        profile: &Path,
        screen: Screen,
        for_load: bool,
    ) -> fantoccini::Client {
        let mut why = String::new();
        for attempt in 0..3 {
            let dir = profile.join(format!("try-{attempt}"));
            match self.session(&dir, screen, for_load).await {
                Ok(client) => return client,
                Err(e) => why = e.to_string(),
            }
        }
        panic!("cannot start Chromium through chromedriver ({why}): {PACKAGES}")
    }

    async fn session(
        &self,
        profile: &Path,
        screen: Screen,
        for_load: bool,
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
        let mut options = json!({ "binary": "/usr/bin/chromium", "args": args });
        let mut caps = serde_json::Map::new();
        if screen == Screen::Phone {
            let metrics = json!({ "width": 390, "height": 844, "pixelRatio": 2.0, "mobile": true });
            options["mobileEmulation"] = json!({ "deviceMetrics": metrics });
            caps.insert("goog:loggingPrefs".into(), json!({ "performance": "ALL" }));
        }
        caps.insert("goog:chromeOptions".into(), options);
        if !for_load {
            caps.insert("pageLoadStrategy".into(), json!("eager"));
        }
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
        let browser = self.browser(profile.path(), Screen::Desktop).await;
        let mut all = Vec::new();
        for page in pages {
            browser.goto(page).await.unwrap();
            all.push(decode_all(&browser, page).await);
        }
        let _ = browser.close().await;
        all
    }

    /// Opens a browser with a fresh profile and loads each of `pages` in turn ([`load`]).
    pub(crate) async fn load(&self, pages: &[String]) -> Vec<Loaded> {
        let profile = tempfile::tempdir().unwrap();
        let browser = self.browser(profile.path(), Screen::Desktop).await;
        let mut all = Vec::new();
        for page in pages {
            all.push(load(&browser, page).await);
        }
        let _ = browser.close().await;
        all
    }
}

/// Loads `page` in `browser` as a reader would: waits for the first viewport's images and
/// reads the LCP element, scrolls image by image until every one decoded, then to the end,
/// and reads the layout shifts.
pub(crate) async fn load(browser: &fantoccini::Client, page: &str) -> Loaded {
    browser.goto(page).await.unwrap();
    let mut ready = false;
    for _ in 0..600 {
        ready = browser.execute(VIEWPORT_DECODED, vec![]).await.unwrap() == json!(true);
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "{page}: the first viewport's images did not decode");
    let lcp = browser.execute_async(LCP, vec![]).await.unwrap();
    let lcp = (!lcp.is_null()).then(|| {
        let field = |k: &str| lcp[k].as_str().unwrap_or("").to_string();
        Lcp {
            tag: field("tag"),
            src: field("src"),
            loading: field("loading"),
            fetchpriority: field("fetchpriority"),
            time: lcp["time"].as_f64().unwrap_or(0.0),
        }
    });
    let images = decode_all(browser, page).await;
    let entries = browser.execute_async(SHIFTS, vec![]).await.unwrap();
    let shifts: Vec<(f64, Vec<String>)> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e[1] != json!(true))
        .map(|e| {
            let moved = e[2].as_array().unwrap().iter();
            let moved = moved.map(|m| m.as_str().unwrap_or("").to_string());
            (e[0].as_f64().unwrap(), moved.collect())
        })
        .collect();
    Loaded {
        images,
        cls: shifts.iter().fold(0.0, |sum, s| sum + s.0),
        shifts,
        lcp,
    }
}

/// Scrolls image by image until every `<img>` of the page decoded (lazy images load only
/// near the viewport); what each became. Panics naming the images that did not decode
/// within a minute.
pub(crate) async fn decode_all(browser: &fantoccini::Client, page: &str) -> Vec<Shown> {
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
    shown.collect()
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
