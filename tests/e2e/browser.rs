//! Five posts of the article corpus as a reader sees them: rewritten by the `imgrelay rewrite`
//! binary with `server.public_url` at Varnish, served by a static server, shown in Chromium
//! (`chromium.rs`). Their images live on the posts' real hosts, pinned with `upstream.resolve`
//! to origins on loopback that refuse hotlinks (any request with a `Referer`): plain http, and
//! https with a test-made certificate trusted through `upstream.ca_file`. Nothing leaves
//! loopback: Chromium resolves no name but 127.0.0.1, and imgrelay reaches the posts' hosts
//! only through its pins.

use crate::{
    ca::Ca,
    chromium::{Driver, Shown},
    stack::{image_answers, static_site, Varnish},
    support::*,
};
use std::{
    collections::{BTreeSet, HashMap},
    path::Path,
    sync::Arc,
    time::Duration,
};

/// The posts, and what each brings.
const POSTS: [&str; 5] = [
    // The post this project started from: four CORS-wrapped plain-http images (JPEG and PNG,
    // `data-size`), the same image again as `headimg`.
    "seed__qutoutiao_lu_yu_ecommerce_training.md",
    // `srcset` with one `2x` candidate, a `src` whose URL holds commas; over https.
    "ithome__apple_polishing_cloth_srcset_2x.md",
    // Lazy-loading markup (`class="lazy"`, `data-original`) around wrapped images.
    "zaker__intel_tsx_lazy_data-original.md",
    // `data-original` beside a Qiniu `?imageView2/…` source, PNGs, a `headimg`; over https.
    "sspai__launchbar_km_qiniu_data-original_linkcard.md",
    // Two hosts (`!custom` suffix, sinaimg), wrapped, front matter images.
    "jandan__dodgem_sinaimg_wrapped.md",
];

/// The posts' image hosts served by the plain-http origin (port 80) …
const HTTP_HOSTS: [&str; 4] = [
    "static.1sapp.com",
    "zkres2.myzaker.com",
    "img.jandan.net",
    "wx4.sinaimg.cn",
];
/// … and by the https origin (port 443), whose certificate names them.
const HTTPS_HOSTS: [&str; 2] = ["img.ithome.com", "cdn.sspai.com"];

/// An origin for the posts' images: any path is an image (PNG where the path says so, JPEG
/// otherwise); a request with a `Referer` (a hotlink) or a cookie is refused with 403.
fn hotlink_refusing(jpeg: Arc<Vec<u8>>, png: Arc<Vec<u8>>) -> impl Fn(&Seen) -> Reply {
    move |seen| {
        if seen.header("referer").is_some() || seen.header("cookie").is_some() {
            return Reply::status(403);
        }
        let path = seen.target.split(['?', '@', '!']).next().unwrap_or("");
        let (kind, body) = if path.ends_with(".png") {
            ("image/png", &png)
        } else {
            ("image/jpeg", &jpeg)
        };
        Reply::ok(kind, body.as_slice()).with_header("Cache-Control", "max-age=86400")
    }
}

/// Runs the imgrelay binary with `args` and `dir/proxy.toml`; returns its standard error.
pub(crate) fn imgrelay(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgrelay"))
        .arg("--config")
        .arg(dir.join("proxy.toml"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "imgrelay {args:?}: {err}");
    err
}

/// Copies the posts into `dir/posts` and rewrites them in place with the binary, configured
/// with `server.public_url = public_url`. The rewriter adds no srcset of its own
/// (`rewrite.widths = []`): Chromium picks among candidates partly by what its memory cache
/// holds at that moment, so two readers of a generated srcset may ask for different widths,
/// and the second reader's hits are what this suite checks. The posts' own srcset stays.
fn rewrite_posts(dir: &Path, public_url: &str) {
    let posts = dir.join("posts");
    std::fs::create_dir(&posts).unwrap();
    for post in POSTS {
        std::fs::copy(corpus().join(post), posts.join(post)).unwrap();
    }
    let config = format!("[server]\npublic_url = {public_url:?}\n[rewrite]\nwidths = []\n");
    std::fs::write(dir.join("proxy.toml"), config).unwrap();
    let err = imgrelay(dir, &["rewrite", "--in-place", "posts"]);
    assert!(err.contains("rewrite: 5 files, 5 changed"), "{err}");
}

pub(crate) fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

/// A Hexo post's YAML front matter and its body.
pub(crate) fn split_post(post: &str) -> (&str, &str) {
    let rest = post
        .trim_start()
        .strip_prefix("---\n")
        .expect("front matter");
    rest.split_once("\n---\n")
        .expect("the end of the front matter")
}

/// The value of a front matter key as Hexo writes it (`key: 'value'`), without its quotes.
pub(crate) fn front_matter<'a>(front: &'a str, key: &str) -> Option<&'a str> {
    let line = front
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?;
    Some(line.trim().trim_matches('\''))
}

fn attr_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;")
}

/// A post page as a Hexo theme renders one: the `headimg` as a banner, then the HTML body.
fn render(post: &str) -> String {
    let (front, body) = split_post(post);
    let title = front_matter(front, "title").unwrap_or("post");
    let banner = front_matter(front, "headimg")
        .map(|u| {
            format!(
                "<img class=\"headimg\" src=\"{}\" alt=\"\">",
                attr_escape(u)
            )
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body><header>{banner}</header><article>{body}</article></body></html>",
        title.replace('<', "&lt;")
    )
}

/// How many images a post of the corpus has: its `<img>` tags and its `headimg`.
fn images_in(post: &str) -> usize {
    let (front, _) = split_post(post);
    post.matches("<img").count() + usize::from(front_matter(front, "headimg").is_some())
}

/// Everything both origins were asked, in order.
fn fetched(origins: &[&Origin]) -> Vec<Seen> {
    origins.iter().flat_map(|o| o.seen()).collect()
}

#[tokio::test]
async fn chromium_shows_five_rewritten_posts_through_varnish() {
    let (jpeg, png) = (Arc::new(jpeg(1024, 768)), Arc::new(png(320, 240)));
    let plain = Origin::start(hotlink_refusing(jpeg.clone(), png.clone())).await;
    let ca = Ca::new("imgrelay e2e CA");
    let tls = Origin::start_tls(
        LOCALHOST,
        ca.server(&HTTPS_HOSTS),
        hotlink_refusing(jpeg, png),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.pem_file(dir.path());
    let relay = Relay::start(|c| {
        c.upstream.ca_file = ca_file;
        let pins = HTTP_HOSTS.map(|h| (format!("{h}:80"), plain.addr));
        let tls_pins = HTTPS_HOSTS.map(|h| (format!("{h}:443"), tls.addr));
        c.upstream.resolve = pins.into_iter().chain(tls_pins).collect();
    })
    .await;
    let varnish = Varnish::start(relay.addr).await;
    let public_url = format!("http://{}", varnish.addr);
    rewrite_posts(dir.path(), &public_url);

    let mut pages = HashMap::new();
    let mut urls = Vec::new();
    for (i, post) in POSTS.iter().enumerate() {
        let rewritten = std::fs::read_to_string(dir.path().join("posts").join(post)).unwrap();
        pages.insert(format!("/{i}.html"), render(&rewritten).into_bytes());
    }
    let site = static_site(pages).await;
    for i in 0..POSTS.len() {
        urls.push(site.url(&format!("/{i}.html")));
    }

    let driver = Driver::start().await;
    let through_varnish = format!("{public_url}/?");
    let first = driver.read(&urls).await;
    let lazy = assert_shown(&first, &through_varnish);
    // The rewriter marks the images it rewrites `loading="lazy"` (`rewrite.lazy`), and
    // `assert_shown` found every one of them decoded: those below the fold after scrolling.
    assert!(lazy > 0, "the rewritten images carry loading=\"lazy\"");

    // Each origin was asked for exactly its hosts' images (the Host header imgrelay sent).
    let hosts = |o: &Origin| -> BTreeSet<String> {
        let seen = o.seen();
        seen.iter()
            .map(|s| s.header("host").unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(hosts(&plain), HTTP_HOSTS.map(String::from).into());
    assert_eq!(hosts(&tls), HTTPS_HOSTS.map(String::from).into());

    let backend = settled(&varnish, relay.addr).await;
    let answers = image_answers(relay.addr).await;
    let seen = fetched(&[&plain, &tls]);

    // A second reader, with a fresh profile: Varnish alone serves it.
    let second = driver.read(&urls).await;
    assert_eq!(second, first, "the same images, decoded");
    assert_eq!(
        varnish.backend_requests(),
        backend,
        "no new backend request"
    );
    assert_eq!(
        image_answers(relay.addr).await,
        answers,
        "nothing reached imgrelay"
    );
    assert_eq!(
        fetched(&[&plain, &tls]).len(),
        seen.len(),
        "nothing reached the origins"
    );
    for s in &seen {
        assert_eq!(s.header("referer"), None, "{}", s.target);
        assert_eq!(s.header("cookie"), None, "{}", s.target);
    }
}

/// Checks one reader's view of the posts (in `POSTS` order): every image has an absolute URL
/// in the corpus, so the rewriter changed them all; each has decoded, from a URL through
/// Varnish. Returns how many were lazy.
fn assert_shown(read: &[Vec<Shown>], through_varnish: &str) -> usize {
    let mut lazy = 0;
    for (post, shown) in POSTS.iter().zip(read) {
        let original = std::fs::read_to_string(corpus().join(post)).unwrap();
        let changed: Vec<&Shown> = shown
            .iter()
            .filter(|s| s.src.starts_with(through_varnish))
            .collect();
        assert_eq!(changed.len(), images_in(&original), "{post}: {shown:#?}");
        for img in changed {
            assert!(img.natural_width > 0, "{post}: {img:?}");
            assert!(
                img.current_src.starts_with(through_varnish),
                "{post}: {img:?} not through Varnish"
            );
            lazy += usize::from(img.lazy);
        }
    }
    lazy
}

/// Varnish's count of backend requests once it equals imgrelay's count of image answers:
/// every image request Varnish forwarded is one imgrelay answered, and varnishstat's counters
/// are summed from its threads a moment after each fetch.
async fn settled(varnish: &Varnish, relay: std::net::SocketAddr) -> u64 {
    let mut backend = varnish.backend_requests();
    for _ in 0..100 {
        if backend as f64 == image_answers(relay).await {
            return backend;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        backend = varnish.backend_requests();
    }
    let answers = image_answers(relay).await;
    panic!("varnishstat MAIN.backend_req {backend}, imgrelay's image answers {answers}");
}
