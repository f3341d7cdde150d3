//! Pages that neither jump nor wait (SPEC §3): posts of the article corpus rewritten by the
//! `imgrelay rewrite` binary, rendered by one fixed page template (`cmark --unsafe` of the post
//! body, `img{max-width:100%;height:auto}`, no front matter images), served through varnishd
//! with the shipped VCL and loaded in Chromium (`chromium.rs`), which reports the page's
//! Cumulative Layout Shift and its Largest Contentful Paint element.
//!
//! The posts' image hosts are pinned with `upstream.resolve` to a test origin serving real
//! photographs at a realistic size for each reference: the originals are not reachable here,
//! so each is `tests/fixtures/photo.jpg` scaled (and cropped) to the size the post's markup
//! implies (`width`/`height`, `data-size`, a CSS width), else to 1080 pixels wide, as JPEG or
//! PNG as its URL says.

use crate::{
    browser::{corpus, imgrelay, split_post},
    ca::Ca,
    chromium::{Driver, Loaded},
    cmark,
    stack::{static_site, Varnish},
    support::*,
};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

/// The posts, and what their markup says of their images' sizes.
pub(crate) const POSTS: [&str; 5] = [
    // Four wrapped plain-http images with `data-size` (the rewriter turns it into
    // `width`/`height`).
    "seed__qutoutiao_lu_yu_ecommerce_training.md",
    // Three bare images, JPEG and PNG: no size at all.
    "cnbeta__xps_viewer_fragment_href.md",
    // Four images with only `style="width: 600px;"`.
    "vgtime__lego_ai_figure_style_width.md",
    // Four PNG screenshots with `width`/`height`.
    "ithome__vmware_tpm_four_pngs.md",
    // Two wrapped images on two hosts, no size.
    "jandan__dodgem_sinaimg_wrapped.md",
];

/// The posts' image hosts served by the plain-http origin (port 80) …
pub(crate) const HTTP_HOSTS: [&str; 3] = ["static.1sapp.com", "img.jandan.net", "wx4.sinaimg.cn"];
/// … and by the https origin (port 443), whose certificate names them.
pub(crate) const HTTPS_HOSTS: [&str; 3] =
    ["static.cnbetacdn.com", "img01.vgtime.com", "img.ithome.com"];

/// The fixed page template's style: a reading column, images no wider than it.
const STYLE: &str = "body{max-width:680px;margin:0 auto;padding:0 16px;\
                     font:18px/1.6 sans-serif}img{max-width:100%;height:auto}";

/// The file name an image URL ends with, without a query or an image service's suffix
/// (`!custom`, `@s_2,w_820`): what the test origin knows its images by.
fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    // A wrapped URL (`https://cors…/?http://host/x.jpg`) names its image after the `?`.
    let path = match url.rsplit_once("?http") {
        Some((_, inner)) => inner,
        None => path,
    };
    let last = path.rsplit('/').next().unwrap_or("");
    last.split(['!', '@', '?']).next().unwrap_or("").to_string()
}

/// The size a reference's markup implies, by file name: `width`/`height`, `data-size`, a
/// CSS `width` (at 3:2); absent when the markup says nothing.
pub(crate) fn implied_sizes(posts: &[&str]) -> HashMap<String, (u32, u32)> {
    let sizes = Arc::new(Mutex::new(HashMap::new()));
    for post in posts {
        let text = std::fs::read_to_string(corpus().join(post)).unwrap();
        let found = sizes.clone();
        let img = lol_html::element!("img[src]", move |el| {
            let attr = |n: &str| {
                el.get_attribute(n)
                    .and_then(|v| v.trim().parse::<u32>().ok())
            };
            let pair = |v: String| {
                let (w, h) = v.split_once(',')?;
                Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
            };
            let style_width = el.get_attribute("style").and_then(|s| {
                let w = s.split("width:").nth(1)?.split("px").next()?;
                w.trim().parse::<u32>().ok()
            });
            let size = match (attr("width"), attr("height")) {
                (Some(w), Some(h)) => Some((w, h)),
                _ => el
                    .get_attribute("data-size")
                    .and_then(pair)
                    .or(style_width.map(|w| (w, w * 2 / 3))),
            };
            if let (Some(size), Some(src)) = (size, el.get_attribute("src")) {
                found.lock().unwrap().insert(file_name(&src), size);
            }
            Ok(())
        });
        let settings = lol_html::RewriteStrSettings::new().append_element_content_handler(img);
        lol_html::rewrite_str(split_post(&text).1, settings).unwrap();
    }
    let sizes = sizes.lock().unwrap().clone();
    sizes
}

/// The photograph the origin serves for `file` at `size` (else 1080 pixels wide, 3:2 for a
/// JPEG, 16:9 for a PNG screenshot): `photo.jpg` scaled and cropped to it, JPEG at quality 85
/// or PNG.
fn photograph(file: &str, size: Option<(u32, u32)>) -> (&'static str, Vec<u8>) {
    let png = file.ends_with(".png");
    let (w, h) = size.unwrap_or(if png { (1080, 608) } else { (1080, 720) });
    let photo =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photo.jpg"))
            .unwrap();
    let img = image::load_from_memory(&photo)
        .unwrap()
        .resize_to_fill(w, h, image::imageops::FilterType::CatmullRom)
        .into_rgb8();
    let mut out = std::io::Cursor::new(Vec::new());
    if png {
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        ("image/png", out.into_inner())
    } else {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode_image(&img)
            .unwrap();
        ("image/jpeg", out.into_inner())
    }
}

/// The origin of the posts' images: each path is a photograph (made once, on first request)
/// at the size its reference implies, cacheable for a day.
pub(crate) fn photographs(
    sizes: HashMap<String, (u32, u32)>,
) -> impl Fn(&Seen) -> Reply + Clone + Send + Sync + 'static {
    let made = Arc::new(Mutex::new(HashMap::<String, (&str, Arc<Vec<u8>>)>::new()));
    move |seen| {
        let file = file_name(&seen.target);
        let mut made = made.lock().unwrap();
        let (kind, body) = made.entry(file.clone()).or_insert_with(|| {
            let (kind, body) = photograph(&file, sizes.get(&file).copied());
            (kind, Arc::new(body))
        });
        Reply::ok(kind, body).with_header("Cache-Control", "max-age=86400")
    }
}

/// The posts' images on loopback, imgrelay pinned to them, Varnish in front of it.
pub(crate) struct Stack {
    pub(crate) plain: Origin,
    pub(crate) tls: Origin,
    /// imgrelay; its address is the `--info-from` the posts are measured with.
    pub(crate) relay: Relay,
    pub(crate) varnish: Varnish,
    pub(crate) dir: tempfile::TempDir,
}

impl Stack {
    pub(crate) async fn start(configure: impl FnOnce(&mut imgrelay::config::Config)) -> Stack {
        Stack::serving(photographs(implied_sizes(&POSTS)), configure).await
    }

    /// A stack whose origins answer with `serve`.
    pub(crate) async fn serving(
        serve: impl Fn(&Seen) -> Reply + Clone + Send + Sync + 'static,
        configure: impl FnOnce(&mut imgrelay::config::Config),
    ) -> Stack {
        let plain = Origin::start(serve.clone()).await;
        let ca = Ca::new("imgrelay e2e CA");
        let tls = Origin::start_tls(LOCALHOST, ca.server(&HTTPS_HOSTS), serve).await;
        let dir = tempfile::tempdir().unwrap();
        let ca_file = ca.pem_file(dir.path());
        let relay = Relay::start(|c| {
            c.upstream.ca_file = ca_file;
            let pins = HTTP_HOSTS.map(|h| (format!("{h}:80"), plain.addr));
            let tls_pins = HTTPS_HOSTS.map(|h| (format!("{h}:443"), tls.addr));
            c.upstream.resolve = pins.into_iter().chain(tls_pins).collect();
            c.cache.memory_bytes = imgrelay::config::Bytes(64 << 20);
            configure(c);
        })
        .await;
        let varnish = Varnish::start(relay.addr).await;
        Stack {
            plain,
            tls,
            relay,
            varnish,
            dir,
        }
    }

    /// The posts copied into `dir/{name}` and rewritten in place by the binary, pointed at
    /// Varnish, with `extra` flags (`--info-from URL`); each post's path.
    pub(crate) async fn rewrite(&self, name: &str, extra: &[&str]) -> Vec<PathBuf> {
        self.rewrite_with(name, &POSTS, "", extra).await
    }

    /// [`Stack::rewrite`] of `posts`, with `[rewrite]` keys `keys` (TOML lines). The binary
    /// runs on a blocking thread: with `--info-from` it asks the relay this runtime serves.
    pub(crate) async fn rewrite_with(
        &self,
        name: &str,
        posts: &[&str],
        keys: &str,
        extra: &[&str],
    ) -> Vec<PathBuf> {
        let dir = self.dir.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let config = format!(
            "[server]\npublic_url = \"http://{}\"\n[rewrite]\n{keys}\n",
            self.varnish.addr
        );
        std::fs::write(dir.join("proxy.toml"), config).unwrap();
        std::fs::create_dir(dir.join("posts")).unwrap();
        for post in posts {
            std::fs::copy(corpus().join(post), dir.join("posts").join(post)).unwrap();
        }
        let mut args: Vec<String> = vec!["rewrite".into(), "--in-place".into()];
        args.extend(extra.iter().map(|a| a.to_string()));
        args.push("posts".into());
        let paths = posts.iter().map(|p| dir.join("posts").join(p)).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            imgrelay(&dir, &args)
        })
        .await
        .unwrap();
        paths
    }
}

/// The fixed page template: the post's title and its body as `cmark --unsafe` renders it,
/// in a reading column; no front matter image.
pub(crate) fn page(post: &str) -> String {
    let (front, body) = split_post(post);
    let title = crate::browser::front_matter(front, "title")
        .unwrap_or("post")
        .replace('<', "&lt;");
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><h1>{title}</h1><article>{}</article></body></html>",
        cmark::render(body)
    )
}

/// Serves each of `posts` as `/{prefix}{i}.html`; their URLs, in order.
pub(crate) async fn site(sets: &[(&str, &[PathBuf])]) -> (Origin, Vec<Vec<String>>) {
    let mut pages = HashMap::new();
    for (prefix, posts) in sets {
        for (i, post) in posts.iter().enumerate() {
            let text = std::fs::read_to_string(post).unwrap();
            pages.insert(format!("/{prefix}{i}.html"), page(&text).into_bytes());
        }
    }
    let origin = static_site(pages).await;
    let urls = sets
        .iter()
        .map(|(prefix, posts)| {
            (0..posts.len())
                .map(|i| origin.url(&format!("/{prefix}{i}.html")))
                .collect()
        })
        .collect();
    (origin, urls)
}

/// One line per post: its CLS, what shifted, and its LCP element.
fn report(loaded: &[Loaded]) -> String {
    let mut out = String::new();
    for (post, l) in POSTS.iter().zip(loaded) {
        let lcp = l.lcp.as_ref().map_or("none".to_string(), |e| {
            format!(
                "<{} loading={:?} fetchpriority={:?}> {}",
                e.tag, e.loading, e.fetchpriority, e.src
            )
        });
        out += &format!("{post}: CLS {:.4}, LCP {lcp}\n", l.cls);
        for (value, moved) in &l.shifts {
            out += &format!("    shift {value:.4}: {moved:?}\n");
        }
    }
    out
}

/// Issue 31: with sizes measured by a running imgrelay (`--info-from`) no post's layout moves
/// as its images arrive, and the LCP image, when the LCP is one, loads eagerly with high
/// priority; rewritten without them, a post whose markup gives no size jumps.
#[tokio::test]
async fn chromium_posts_rewritten_with_info_from_neither_jump_nor_wait() {
    let stack = Stack::start(|_| {}).await;
    let relay = format!("http://{}", stack.relay.addr);
    let plain = stack.rewrite("plain", &[]).await;
    let measured = stack.rewrite("measured", &["--info-from", &relay]).await;
    let (_site, urls) = site(&[("plain", &plain), ("measured", &measured)]).await;
    let driver = Driver::start().await;
    let without = driver.load(&urls[0]).await;
    let with = driver.load(&urls[1]).await;
    let (without, with) = ((report(&without), without), (report(&with), with));
    eprintln!(
        "without --info-from:\n{}with --info-from:\n{}",
        without.0, with.0
    );
    for l in without.1.iter().chain(&with.1) {
        assert!(l.images.iter().all(|i| i.natural_width > 0), "{l:?}");
    }
    assert!(
        without.1.iter().any(|l| l.cls > 0.0),
        "a post whose images have no size shifts as they load:\n{}",
        without.0
    );
    let mut image_lcps = 0;
    for (post, l) in POSTS.iter().zip(&with.1) {
        assert_eq!(l.cls, 0.0, "{post} shifts with measured sizes:\n{}", with.0);
        if let Some(lcp) = l.lcp.as_ref().filter(|e| e.tag == "img") {
            image_lcps += 1;
            assert!(
                lcp.loading != "lazy" && lcp.fetchpriority == "high",
                "{post}: the LCP image is not eager with fetchpriority=high:\n{}",
                with.0
            );
        }
    }
    assert!(image_lcps > 0, "no post's LCP is an image:\n{}", with.0);
    // Both origins served (the pins reached them), plain http and https.
    assert!(!stack.plain.seen().is_empty() && !stack.tls.seen().is_empty());
}
