//! Article rewriting on the real corpus (`tests/fixtures/corpus`, a verbatim copy of `../shared/corpus`), through the library, the CLI
//! binary and `POST /rewrite` over HTTP.
//!
//! The checks are independent of the rewriter's own bookkeeping: targets are found again with
//! `lol_html` and pulldown-cmark, rewritten URLs are decoded back, and the input and output
//! are walked in lockstep so every byte that is not a rewritten value or an added attribute
//! must be equal.

use crate::support::{request_with_body, Relay};
use imgrelay::{
    config::{Config, Secret},
    rewrite::{srcset, Kind, Rewriter},
};
use std::{
    cell::RefCell,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

const RELAY: &str = "https://relay.test";
const PREFIX: &str = "https://relay.test/?";

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let mut posts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/corpus exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    posts.sort();
    assert_eq!(posts.len(), 46, "the corpus has 46 posts");
    posts
}

fn config() -> Config {
    let mut c = Config::default();
    c.server.public_url = RELAY.into();
    c
}

fn decode_entities(s: &str) -> String {
    htmlize::unescape_attribute(s).into_owned()
}

/// What the test itself expects the original of a reference to be: the CORS-worker wrapper
/// (the only one in the corpus) stripped, protocol-relative made https.
fn expected_source(reference: &str) -> String {
    let r = decode_entities(reference.trim());
    let r = r
        .strip_prefix("https://cors.zfour.workers.dev/?")
        .map(str::to_string)
        .unwrap_or(r);
    match r.starts_with("//") {
        true => format!("https:{r}"),
        false => r,
    }
}

/// The `url` parameter of an imgrelay URL as written in a document.
fn source_of(proxied: &str) -> String {
    let url = decode_entities(proxied);
    let query = url.strip_prefix(PREFIX).expect("an imgrelay URL");
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    assert!(
        params.iter().any(|(k, v)| k == "output" && v == "webp"),
        "{url}"
    );
    params
        .into_iter()
        .find(|(k, _)| k == "url")
        .map(|(_, v)| v)
        .expect("url parameter")
}

/// Every image reference a reader of the rewritten document would load, found afresh.
fn targets(doc: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let (front, body) = match doc.trim_start().strip_prefix("---\n") {
        Some(rest) => {
            let end = rest.find("\n---\n").expect("closing fence");
            (&rest[..end], &rest[end + 5..])
        }
        None => ("", doc),
    };
    for line in front.lines() {
        for key in ["headimg", "thumbnail", "cover", "image", "banner"] {
            if let Some(v) = line.strip_prefix(key).and_then(|l| l.strip_prefix(':')) {
                let v = v.trim().trim_matches('\'').trim_matches('"');
                if !v.is_empty() {
                    found.push((format!("front matter {key}"), v.to_string()));
                }
            }
        }
    }
    for event in pulldown_cmark::Parser::new(body) {
        if let pulldown_cmark::Event::Start(pulldown_cmark::Tag::Image { dest_url, .. }) = event {
            found.push(("markdown image".into(), dest_url.to_string()));
        }
    }
    let cell = RefCell::new(Vec::new());
    let seen = &cell;
    let attrs = |sel: &'static str, names: &'static [&'static str], set: bool| {
        lol_html::element!(sel, move |el| {
            for &n in names {
                if let Some(v) = el.get_attribute(n) {
                    let v = decode_entities(&v);
                    let values = match set {
                        true => srcset::parse(&v)
                            .into_iter()
                            .map(|c| v[c.url].to_string())
                            .collect(),
                        false => vec![v],
                    };
                    for v in values {
                        seen.borrow_mut().push((format!("{sel}[{n}]"), v));
                    }
                }
            }
            Ok(())
        })
    };
    let lazy = &[
        "src",
        "data-src",
        "data-original",
        "data-lazy-src",
        "data-original-src",
    ];
    let settings = lol_html::Settings::new()
        .append_element_content_handler(attrs("img", lazy, false))
        .append_element_content_handler(attrs("img", &["srcset", "data-srcset"], true))
        .append_element_content_handler(attrs("picture source", &["src", "data-src"], false))
        .append_element_content_handler(attrs("source", &["srcset", "data-srcset"], true))
        .append_element_content_handler(attrs("video", &["poster"], false));
    let mut rewriter = lol_html::HtmlRewriter::new(settings, |_: &[u8]| {});
    rewriter.write(body.as_bytes()).unwrap();
    rewriter.end().unwrap();
    found.extend(cell.into_inner());
    found
}

fn is_absolute(url: &str) -> bool {
    let l = url.trim().to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://") || l.starts_with("//")
}

/// Attribute names the rewriter may add to an `img`.
const ADDED: &[&str] = &[
    "srcset",
    "sizes",
    "width",
    "height",
    "loading",
    "decoding",
    "referrerpolicy",
    "fetchpriority",
];

/// Attributes the rewriter may take off an `img` (the eager rule, issue 30).
const REMOVED: &[&str] = &[" loading=\"lazy\"", " fetchpriority=\"high\""];

/// Walks `input` and `output` together. Output-only ` name="…"` attributes of [`ADDED`] and
/// input-only ones of [`REMOVED`] are skipped; an imgrelay URL in the output consumes one
/// URL-ish token of the input, whose expected source must equal the URL's `url` parameter;
/// everything else must be equal.
fn assert_masked_equal(name: &str, input: &str, output: &str) -> usize {
    let (i, o) = (input.as_bytes(), output.as_bytes());
    let (mut x, mut y, mut urls) = (0, 0, 0);
    let token_end = |s: &[u8], from: usize| {
        s[from..]
            .iter()
            .position(|&c| {
                matches!(c, b'"' | b'\'' | b')' | b'<' | b'>') || c.is_ascii_whitespace()
            })
            .map_or(s.len(), |n| from + n)
    };
    while y < o.len() {
        if o[y..].starts_with(PREFIX.as_bytes()) {
            let (ye, xe) = (token_end(o, y), token_end(i, x));
            let (new, old) = (&output[y..ye], &input[x..xe]);
            assert!(!old.starts_with(PREFIX), "{name}: proxied twice at {x}");
            assert_eq!(
                source_of(new),
                expected_source(old),
                "{name}: at input byte {x}"
            );
            urls += 1;
            (x, y) = (xe, ye);
            continue;
        }
        let added = ADDED.iter().find_map(|a| {
            let head = format!(" {a}=\"");
            let rest = o[y..].strip_prefix(head.as_bytes())?;
            let close = rest.iter().position(|&c| c == b'"')?;
            let len = head.len() + close + 1;
            (!i[x..].starts_with(head.as_bytes())).then_some(len)
        });
        if let Some(len) = added {
            y += len;
            continue;
        }
        if let Some(r) = REMOVED
            .iter()
            .find(|r| i[x..].starts_with(r.as_bytes()) && !o[y..].starts_with(r.as_bytes()))
        {
            x += r.len();
            continue;
        }
        assert!(
            x < i.len() && i[x] == o[y],
            "{name}: differs at input byte {x} / output byte {y}: {:?} vs {:?}",
            String::from_utf8_lossy(&i[x..(x + 60).min(i.len())]),
            String::from_utf8_lossy(&o[y..(y + 60).min(o.len())]),
        );
        x += 1;
        y += 1;
    }
    assert_eq!(x, i.len(), "{name}: input left over");
    urls
}

#[test]
fn every_corpus_post_points_every_image_at_imgrelay() {
    let rw = Rewriter::new(&config());
    let base = url::Url::parse("https://blog.example/2021/10/post/").unwrap();
    let (mut total_urls, mut unchanged) = (0, 0);
    for path in corpus() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read_to_string(&path).unwrap();
        let out = rw
            .rewrite_document(input.as_bytes(), Kind::Auto, None)
            .unwrap();
        let output = String::from_utf8(out.bytes.clone()).unwrap();

        for (what, url) in targets(&output) {
            if is_absolute(&url) {
                assert!(url.starts_with(PREFIX), "{name}: {what} = {url}");
            }
        }
        let urls = assert_masked_equal(&name, &input, &output);
        assert!(
            urls >= out.stats.rewritten,
            "{name}: {urls} < {}",
            out.stats.rewritten
        );
        total_urls += urls;
        if output == input {
            unchanged += 1;
            assert!(
                targets(&input).iter().all(|(_, u)| !is_absolute(u)),
                "{name}"
            );
        }

        let again = rw.rewrite_document(&out.bytes, Kind::Auto, None).unwrap();
        assert_eq!(again.bytes, out.bytes, "{name}: twice = once");

        // With a base, relative references are resolved too.
        let with_base = rw
            .rewrite_document(input.as_bytes(), Kind::Auto, Some(&base))
            .unwrap();
        let with_base = String::from_utf8(with_base.bytes).unwrap();
        for (what, url) in targets(&with_base) {
            let inline = url.starts_with("data:") || url.starts_with('#') || url.is_empty();
            assert!(
                inline || url.starts_with(PREFIX),
                "{name} with base: {what} = {url}"
            );
        }
    }
    assert!(
        total_urls > 200,
        "the corpus holds hundreds of images: {total_urls}"
    );
    assert!(
        unchanged >= 3,
        "posts without images stay byte-identical: {unchanged}"
    );
}

#[test]
fn signed_corpus_urls_verify() {
    let key = Secret("corpus-signing-key-0123456789abcdef".into());
    let mut c = config();
    c.security.signing_keys = vec![key.clone()];
    let rw = Rewriter::new(&c);
    let post = corpus()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("seed__"))
        .unwrap();
    let out = rw
        .rewrite_document(&std::fs::read(post).unwrap(), Kind::Auto, None)
        .unwrap();
    let text = String::from_utf8(out.bytes).unwrap();
    let mut n = 0;
    for piece in text.split(RELAY).skip(1) {
        let end = piece.find(['"', '\'', ' ', '\n']).unwrap();
        let target = decode_entities(&piece[..end]);
        imgrelay::sign::verify(std::slice::from_ref(&key), &target).unwrap();
        n += 1;
    }
    assert!(n >= 5, "{n}");
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

fn cli(args: &[&str], dir: &Path, stdin: Option<&[u8]>) -> (i32, Vec<u8>, String) {
    use std::io::Write;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imgrelay"));
    cmd.arg("rewrite")
        .args(args)
        .current_dir(dir)
        .env("IMGRELAY_SERVER__PUBLIC_URL", RELAY)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), out.stdout, err)
}

#[test]
fn cli_check_in_place_check_on_a_copy_of_the_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("posts/nested");
    std::fs::create_dir_all(&dir).unwrap();
    let old = SystemTime::now() - Duration::from_secs(86_400);
    for p in corpus() {
        let to = dir.join(p.file_name().unwrap());
        std::fs::copy(&p, &to).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&to)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    std::fs::write(tmp.path().join("posts/notes.txt"), "https://h/a.jpg").unwrap();
    let rw = Rewriter::new(&config());

    let (code, stdout, err) = cli(&["--check", "posts"], tmp.path(), None);
    assert_eq!(code, 1, "{err}");
    assert!(stdout.is_empty());
    assert!(err.contains("rewrite: 46 files, "), "{err}");

    let (code, _, err) = cli(&["--in-place", "posts"], tmp.path(), None);
    assert_eq!(code, 0, "{err}");
    let summary = err.lines().last().unwrap();
    assert!(
        summary.starts_with("rewrite: 46 files, ") && summary.contains("images rewritten"),
        "{summary}"
    );
    let mut untouched = 0;
    for p in corpus() {
        let original = std::fs::read(&p).unwrap();
        let copy = dir.join(p.file_name().unwrap());
        let want = rw
            .rewrite_document(&original, Kind::Markdown, None)
            .unwrap()
            .bytes;
        assert_eq!(std::fs::read(&copy).unwrap(), want, "{}", copy.display());
        if want == original {
            assert_eq!(
                mtime(&copy),
                old,
                "unchanged {} keeps its mtime",
                copy.display()
            );
            untouched += 1;
        } else {
            assert_ne!(mtime(&copy), old);
        }
    }
    assert!(untouched >= 3, "{untouched}");
    assert_eq!(
        std::fs::read(tmp.path().join("posts/notes.txt")).unwrap(),
        b"https://h/a.jpg"
    );
    let leftovers = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(leftovers, 46, "no temp files left behind");

    let (code, _, err) = cli(&["--check", "posts"], tmp.path(), None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(" 0 would change, 0 images rewritten"), "{err}");

    // stdin to stdout; --in-place and --check exclude each other
    let doc = b"<p><img src=\"//h.example/a.png\"></p>";
    let (code, stdout, err) = cli(&["-"], tmp.path(), Some(doc));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stdout,
        rw.rewrite_document(doc, Kind::Auto, None).unwrap().bytes
    );
    let (code, _, _) = cli(&["--check", "--in-place", "posts"], tmp.path(), None);
    assert_eq!(code, 2, "clap refuses conflicting flags");
    let (code, _, err) = cli(&["missing-dir"], tmp.path(), None);
    assert_eq!(code, 1, "{err}");
}

#[tokio::test]
async fn post_rewrite_over_http() {
    const TOKEN: &str = "admin-token-for-tests";
    let relay = Relay::start(|c| {
        c.server.public_url = RELAY.into();
        c.server.admin_token = Secret(TOKEN.into());
    })
    .await;
    let post = std::fs::read(
        corpus()
            .into_iter()
            .find(|p| p.to_string_lossy().contains("zaker__zstd"))
            .unwrap(),
    )
    .unwrap();
    let auth = format!("Bearer {TOKEN}");
    let send = |headers: Vec<(&'static str, String)>, target: &'static str, body: Vec<u8>| {
        let addr = relay.addr;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            request_with_body(addr, "POST", target, &h, Some(&body)).await
        }
    };

    let ok = send(
        vec![
            ("Authorization", auth.clone()),
            ("Content-Type", "text/markdown".into()),
        ],
        "/rewrite",
        post.clone(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.header("content-type"), Some("text/markdown"));
    assert_eq!(ok.header("cache-control"), Some("no-store"));
    let want = Rewriter::new(&config())
        .rewrite_document(&post, Kind::Markdown, None)
        .unwrap();
    assert_eq!(ok.body, want.bytes);
    assert_eq!(
        ok.header("x-imgrelay-rewritten"),
        Some(want.stats.rewritten.to_string().as_str())
    );

    let html = b"<video poster=\"/p.jpg\"></video>".to_vec();
    let based = send(
        vec![("Authorization", auth.clone())],
        "/rewrite?base=https%3A%2F%2Fblog.example%2F",
        html,
    )
    .await;
    assert_eq!(based.status, 200);
    assert!(
        based
            .text()
            .contains("url=https%3A%2F%2Fblog.example%2Fp.jpg"),
        "{}",
        based.text()
    );

    for (headers, code) in [
        (vec![], 401),
        (
            vec![("Authorization", "Bearer wrong-token-for-tests".to_string())],
            401,
        ),
        (vec![("Authorization", format!("Basic {TOKEN}"))], 401),
    ] {
        let a = send(headers, "/rewrite", post.clone()).await;
        assert_eq!(a.status, code);
        assert_eq!(a.header("x-imgrelay-error"), Some("unauthorized"));
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    }
    let big = send(
        vec![("Authorization", auth.clone())],
        "/rewrite",
        vec![b'x'; (8 << 20) + 1],
    )
    .await;
    assert_eq!(big.status, 413);
    // A tag larger than the rewriter's memory bound: 413 with a reason, not a 500.
    let mut huge_tag = b"<img alt=\"".to_vec();
    huge_tag.resize(5 << 20, b'x');
    huge_tag.extend_from_slice(b"\" src=\"https://h/a.jpg\">");
    let refused = send(vec![("Authorization", auth.clone())], "/rewrite", huge_tag).await;
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert_eq!(
        refused.header("x-imgrelay-error"),
        Some("document_too_large")
    );
    assert!(
        refused.text().contains("memory limit"),
        "{}",
        refused.text()
    );
    let bad = send(
        vec![("Authorization", auth.clone())],
        "/rewrite?base=/rel",
        post.clone(),
    )
    .await;
    assert_eq!(bad.status, 400);
    let get =
        crate::support::request(relay.addr, "GET", "/rewrite", &[("Authorization", &auth)]).await;
    assert_eq!(
        (get.status, get.header("allow")),
        (405, Some("POST, OPTIONS"))
    );

    // Without a token the endpoint does not exist.
    let off = Relay::start(|_| {}).await;
    let a = request_with_body(
        off.addr,
        "POST",
        "/rewrite",
        &[("Authorization", "Bearer x")],
        Some(&post),
    )
    .await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn post_rewrite_is_admitted_through_the_work_queue() {
    use tokio::io::AsyncWriteExt;
    let relay = Relay::start(|c| {
        c.server.admin_token = Secret("admin-token-for-tests".into());
        c.transform.queue = 1;
    })
    .await;
    // A client that declares a body and stalls holds the only place in the queue.
    let mut stalled = tokio::net::TcpStream::connect(relay.addr).await.unwrap();
    let head = "POST /rewrite HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-token-for-tests\r\nContent-Length: 100\r\n\r\n<p>";
    stalled.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let auth = [("Authorization", "Bearer admin-token-for-tests")];
    let busy = request_with_body(relay.addr, "POST", "/rewrite", &auth, Some(b"<p>x</p>")).await;
    assert_eq!(busy.status, 503);
    assert_eq!(busy.header("retry-after"), Some("1"));
    drop(stalled);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ok = request_with_body(relay.addr, "POST", "/rewrite", &auth, Some(b"<p>x</p>")).await;
    assert_eq!((ok.status, ok.body.as_slice()), (200, &b"<p>x</p>"[..]));
}

#[test]
fn card_keys_get_the_thumbnail_transform_on_corpus_posts() {
    const CARD: &str = "w=640&h=360&fit=cover&a=attention";
    let plain = Rewriter::new(&config());
    let mut c = config();
    c.rewrite.thumbnail = CARD.into();
    c.validate().unwrap();
    let rw = Rewriter::new(&c);
    let key_of = |line: &str| line.split([':', ' ']).next().unwrap_or("").to_string();
    let (mut cards, mut others) = (0, 0);
    for path in corpus() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read(&path).unwrap();
        let out = rw.rewrite_document(&input, Kind::Auto, None).unwrap();
        let before = plain.rewrite_document(&input, Kind::Auto, None).unwrap();
        let (out, before) = (
            String::from_utf8(out.bytes).unwrap(),
            String::from_utf8(before.bytes).unwrap(),
        );
        assert_eq!(
            out.lines().count(),
            before.lines().count(),
            "{name}: only values change"
        );
        let mut in_front = 0;
        for (line, was) in out.lines().zip(before.lines()) {
            if line.trim() == "---" {
                in_front += 1;
            }
            let key = key_of(line);
            let card = in_front == 1 && matches!(key.as_str(), "thumbnail" | "cover");
            if !card || !line.contains(PREFIX) {
                assert_eq!(line, was, "{name}: not a card, as without a thumbnail");
                others += usize::from(line.contains(PREFIX));
                continue;
            }
            cards += 1;
            let url = &line[line.find(PREFIX).unwrap()..];
            let url = url.trim_end_matches(['\'', '"']);
            let query: Vec<(String, String)> =
                form_urlencoded::parse(&url.as_bytes()[PREFIX.len()..])
                    .into_owned()
                    .collect();
            let source = &query[0];
            let was_url = &was[was.find(PREFIX).unwrap()..].trim_end_matches(['\'', '"']);
            let was_query: Vec<(String, String)> =
                form_urlencoded::parse(&was_url.as_bytes()[PREFIX.len()..])
                    .into_owned()
                    .collect();
            assert_eq!(source, &was_query[0], "{name}: the same source");
            let rest: Vec<String> = query[1..].iter().map(|(k, v)| format!("{k}={v}")).collect();
            assert_eq!(
                rest.join("&"),
                format!("{CARD}&output=webp"),
                "{name}: {line}"
            );
        }
        let again = rw
            .rewrite_document(out.as_bytes(), Kind::Auto, None)
            .unwrap();
        assert_eq!(again.bytes, out.as_bytes(), "{name}: twice = once");
    }
    assert!(cards >= 30, "most corpus posts have a thumbnail: {cards}");
    assert!(others > 100, "lines with other images, as before: {others}");
}
