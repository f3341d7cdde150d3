//! `imgrelay rewrite --info-from` against a running imgrelay (issue 30): every corpus image
//! without dimensions is measured through `output=json` from an origin standing in for the
//! posts' hosts, and a second run asks nothing and changes nothing; failures are counted by
//! cause; `--check` names images without dimensions and `--require-dimensions` fails on them.

use crate::{ca::Ca, support::*};
use imgrelay::{
    config::{Config, Secret},
    rewrite::{Kind, Measure, Measures, Rewriter},
};
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};
use tokio::process::Command;
use url::Url;

const PUBLIC: &str = "https://relay.test";

fn config() -> Config {
    let mut c = Config::default();
    c.server.public_url = PUBLIC.into();
    c
}

/// What the origin serves for `host` + `target`: a size of its own for each image.
fn size_of(key: &str) -> (u32, u32) {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (160 + (h % 900) as u32, 120 + ((h >> 20) % 700) as u32)
}

/// `host` + path and query of a source, as its origin is asked for it.
fn key_of(source: &str) -> String {
    let u = Url::parse(source).unwrap();
    format!(
        "{}{}",
        u.host_str().unwrap(),
        &u[url::Position::BeforePath..url::Position::AfterQuery]
    )
}

/// An origin answering every image with a JPEG of [`size_of`] its host and target, and
/// recording what it served.
async fn sized_origin(
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    served: Arc<Mutex<Vec<String>>>,
) -> Origin {
    let handler = move |req: &Seen| {
        // the Host header carries the URL's host (and a port only when not the default)
        let host = req
            .header("host")
            .unwrap_or("")
            .split(':')
            .next()
            .unwrap_or("");
        let key = format!("{host}{}", req.target);
        served.lock().unwrap().push(key.clone());
        let (w, h) = size_of(&key);
        Reply::ok("image/jpeg", &jpeg(w, h))
    };
    match tls {
        Some(tls) => Origin::start_tls(LOCALHOST, tls, handler).await,
        None => Origin::start(handler).await,
    }
}

fn copy_corpus(to: &Path) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    std::fs::create_dir_all(to).unwrap();
    let mut posts = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "md") && !p.ends_with("README.md") {
            let copy = to.join(p.file_name().unwrap());
            std::fs::copy(&p, &copy).unwrap();
            posts.push(copy);
        }
    }
    posts.sort();
    posts
}

async fn rewrite(args: &[&str], dir: &Path, config: Option<&Path>) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgrelay"));
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd
        .arg("rewrite")
        .args(args)
        .current_dir(dir)
        .env("IMGRELAY_SERVER__PUBLIC_URL", PUBLIC)
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

#[tokio::test]
async fn info_from_measures_every_corpus_image_once_and_a_second_run_asks_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let posts = copy_corpus(&tmp.path().join("posts"));
    let originals: Vec<Vec<u8>> = posts.iter().map(|p| std::fs::read(p).unwrap()).collect();
    // what the rewrite cannot size from the markup: the sources it must ask for
    let rw = Rewriter::new(&config());
    let mut wanted = BTreeSet::new();
    for (p, input) in posts.iter().zip(&originals) {
        let out = rw
            .rewrite_document(input, Kind::from_path(p), None)
            .unwrap();
        wanted.extend(out.unmeasured);
    }
    let sources: Vec<String> = wanted
        .iter()
        .map(|e| {
            form_urlencoded::parse(format!("u={e}").as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned()
        })
        .collect();
    assert!(
        sources.len() >= 40,
        "the corpus has images without sizes: {}",
        sources.len()
    );

    // the posts' hosts, pinned to two loopback origins (plain and TLS)
    let hosts = |scheme: &str| -> BTreeSet<(String, u16)> {
        sources
            .iter()
            .map(|s| Url::parse(s).unwrap())
            .filter(|u| u.scheme() == scheme)
            .map(|u| {
                (
                    u.host_str().unwrap().to_string(),
                    u.port_or_known_default().unwrap(),
                )
            })
            .collect()
    };
    let (plain_hosts, tls_hosts) = (hosts("http"), hosts("https"));
    let served = Arc::new(Mutex::new(Vec::new()));
    let ca = Ca::new("imgrelay measured CA");
    let names: Vec<&str> = tls_hosts.iter().map(|(h, _)| h.as_str()).collect();
    let plain = sized_origin(None, served.clone()).await;
    let tls = sized_origin(Some(ca.server(&names)), served.clone()).await;
    let ca_file = ca.pem_file(tmp.path());
    let relay = Relay::start(|c| {
        c.upstream.ca_file = ca_file;
        let pin = |(h, port): &(String, u16), to| (format!("{h}:{port}"), to);
        c.upstream.resolve = plain_hosts
            .iter()
            .map(|h| pin(h, plain.addr))
            .chain(tls_hosts.iter().map(|h| pin(h, tls.addr)))
            .collect();
    })
    .await;
    let info_from = format!("http://{}", relay.addr);

    let dir = tmp.path();
    let (code, err) = rewrite(
        &["--info-from", &info_from, "--in-place", "posts"],
        dir,
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let n = sources.len();
    // the figures README's blog workflow shows
    assert!(
        err.starts_with("rewrite: 46 files, 43 changed, 214 images rewritten"),
        "{err}"
    );
    assert!(
        err.contains(&format!("; {n} sources asked for sizes, {n} measured")),
        "{err}"
    );
    // each source asked once (no cache here: every answer went to the origin)
    let mut asked: Vec<String> = served.lock().unwrap().clone();
    asked.sort();
    let want: Vec<String> = {
        let mut k: Vec<String> = sources.iter().map(|s| key_of(s)).collect();
        k.sort();
        k
    };
    assert_eq!(asked, want);

    // what was written is what the origin's sizes give, image by image
    let measures: Measures = wanted
        .iter()
        .zip(&sources)
        .map(|(e, s)| {
            let (width, height) = size_of(&key_of(s));
            let m = Measure {
                width,
                height,
                has_alpha: false,
                dominant_color: None,
                placeholder: None,
            };
            (e.clone(), m)
        })
        .collect();
    let measured = Rewriter::new(&config()).with_measures(measures);
    let mut left = 0;
    for (p, input) in posts.iter().zip(&originals) {
        let want = measured
            .rewrite_document(input, Kind::from_path(p), None)
            .unwrap();
        let got = std::fs::read(p).unwrap();
        assert!(got == want.bytes, "{}", p.display());
        assert!(want.unmeasured.is_empty());
        left += want.stats.undimensioned;
        // the first photo of the post is eager with high priority; one image at most has it
        let text = String::from_utf8(got).unwrap();
        assert!(
            text.matches("fetchpriority=\"high\"").count() <= 1,
            "{}",
            p.display()
        );
    }
    let written = posts
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .matches(" height=\"")
                .count()
        })
        .sum::<usize>();
    assert!(written >= n, "{written} heights for {n} measured sources");

    // a second run finds every image sized: it asks nothing and changes nothing
    let before = served.lock().unwrap().len();
    let (code, err) = rewrite(&["--info-from", &info_from, "--check", "posts"], dir, None).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(", 0 would change,") && err.contains("; 0 sources asked"),
        "{err}"
    );
    assert_eq!(served.lock().unwrap().len(), before);
    assert_eq!(
        left, 0,
        "every rewritten image of the corpus has a size now"
    );
}

/// A post of three images: one the origin has, one it does not, one that is no image.
fn three_images(origin: &Origin) -> String {
    format!(
        "---\ntitle: t\n---\n\n<p><img src=\"{}\"></p>\n<p><img src=\"{}\"></p>\n<p><img src=\"{}\"></p>\n",
        origin.url("/photo.jpg"),
        origin.url("/gone.jpg"),
        origin.url("/page.jpg")
    )
}

async fn three_image_origin() -> Origin {
    let photo = jpeg(1000, 600);
    Origin::start(move |req| match req.target.as_str() {
        "/photo.jpg" => Reply::ok("image/jpeg", &photo),
        "/page.jpg" => Reply::ok("image/jpeg", b"<html>not an image</html>"),
        _ => Reply::status(404),
    })
    .await
}

#[tokio::test]
async fn info_from_signs_its_questions_and_counts_what_it_could_not_measure_by_cause() {
    let key = "an-info-from-signing-key-0123456789abcdef";
    let origin = three_image_origin().await;
    let relay = Relay::start(|c| c.security.signing_keys = vec![Secret(key.into())]).await;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("imgrelay.toml");
    std::fs::write(&file, format!("[security]\nsigning_keys = [\"{key}\"]\n")).unwrap();
    std::fs::write(tmp.path().join("post.md"), three_images(&origin)).unwrap();
    let info_from = format!("http://{}", relay.addr);
    let (code, err) = rewrite(
        &["--info-from", &info_from, "--in-place", "post.md"],
        tmp.path(),
        Some(&file),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("; 3 sources asked for sizes, 1 measured, 2 not ("),
        "{err}"
    );
    assert!(
        err.contains("not_found 1") || err.contains("status 404"),
        "{err}"
    );
    assert!(err.contains(", 2 without width/height"), "{err}");
    let out = std::fs::read_to_string(tmp.path().join("post.md")).unwrap();
    assert_eq!(
        out.matches(" width=\"1000\" height=\"600\"").count(),
        1,
        "{out}"
    );
    // the measured photo is the first content image: eager, high priority
    assert!(
        out.contains("height=\"600\" fetchpriority=\"high\""),
        "{out}"
    );

    // without the key, the server refuses every question: nothing measured, nothing broken
    std::fs::write(tmp.path().join("post.md"), three_images(&origin)).unwrap();
    let (code, err) = rewrite(&["--info-from", &info_from, "post.md"], tmp.path(), None).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("; 3 sources asked for sizes, 0 measured, 3 not ("),
        "{err}"
    );
}

#[tokio::test]
async fn check_names_images_without_dimensions_and_require_dimensions_fails_on_them() {
    let origin = three_image_origin().await;
    let relay = Relay::start(|_| {}).await;
    let tmp = tempfile::tempdir().unwrap();
    let post = format!("<p><img src=\"{}\"></p>\n", origin.url("/photo.jpg"));
    std::fs::write(tmp.path().join("post.html"), &post).unwrap();
    let dir = tmp.path();
    let (code, _) = rewrite(&["--in-place", "post.html"], dir, None).await;
    assert_eq!(code, 0);
    // rewritten, nothing would change, but the image has no size
    let (code, err) = rewrite(&["--check", "post.html"], dir, None).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("1 images without width/height in post.html"),
        "{err}"
    );
    let (code, err) = rewrite(&["--check", "--require-dimensions", "post.html"], dir, None).await;
    assert_eq!(code, 1, "{err}");
    // an earlier rewrite measured now: the image already pointing at imgrelay gains its size
    let info_from = format!("http://{}", relay.addr);
    let (code, err) = rewrite(
        &["--info-from", &info_from, "--in-place", "post.html"],
        dir,
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, err) = rewrite(&["--check", "--require-dimensions", "post.html"], dir, None).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("without width/height"), "{err}");
    let out = std::fs::read_to_string(dir.join("post.html")).unwrap();
    assert!(out.contains(" width=\"1000\" height=\"600\""), "{out}");
    // a bad --info-from is refused before anything is read
    let (code, err) = rewrite(&["--info-from", "ftp://x", "post.html"], dir, None).await;
    assert_eq!(code, 2, "{err}");
}

/// A full work queue answers 503: the question is asked again (after `Retry-After`), not
/// counted as a failure. The imgrelay here is a stand-in that is full for its first answer.
#[tokio::test]
async fn info_from_asks_again_after_a_503() {
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = asked.clone();
    let full_once = Origin::start(move |req| {
        assert!(req.target.ends_with("&output=json"), "{}", req.target);
        match count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => Reply::status(503).with_header("retry-after", "0"),
            _ => Reply::ok(
                "application/json",
                br##"{"format":"jpeg","width":640,"height":480,"frames":1,"has_alpha":false,"bytes":9,"dominant_color":"#000000"}"##,
            ),
        }
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("p.html"),
        "<img src=\"https://h.example/a.jpg\">",
    )
    .unwrap();
    let info_from = full_once.url("");
    let (code, err) = rewrite(
        &["--info-from", &info_from, "--in-place", "p.html"],
        tmp.path(),
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("; 1 sources asked for sizes, 1 measured"),
        "{err}"
    );
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
    let out = std::fs::read_to_string(tmp.path().join("p.html")).unwrap();
    assert!(out.contains(" width=\"640\" height=\"480\""), "{out}");
}
