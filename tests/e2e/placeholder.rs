//! Placeholders (`rewrite.placeholder`, SPEC §3) as a reader sees them: a corpus post rewritten
//! with `--info-from` and `placeholder = "color"`, then `"blur"`, loaded in Chromium while the
//! origin holds every picture back; a screenshot shows the placeholder painted in the first
//! image's box before the picture arrives, and the picture arrives once the origin lets go.

#[path = "../common/pixels.rs"]
mod pixels;

use crate::{
    chromium::{decode_all, Driver, Screen},
    layout::{implied_sizes, photographs, site, Stack},
    support::*,
};
use serde_json::json;
use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

/// Three bare images, no size in the markup: all it shows comes from `--info-from`.
const POST: &str = "cnbeta__xps_viewer_fragment_href.md";

/// The first image's box (left, top, width, height in CSS pixels, which a DPR-1 screenshot
/// counts in too), whether it decoded, and its computed background colour.
const FIRST_IMAGE: &str = "const i = document.images[0];
    if (!i) return null;
    const r = i.getBoundingClientRect();
    return [r.left, r.top, r.width, r.height, i.complete && i.naturalWidth > 0,
            getComputedStyle(i).backgroundColor, i.getAttribute('style') || ''];";

/// `rgb(r, g, b)` as CSS computes it.
fn rgb(css: &str) -> [f64; 3] {
    let inner = css.trim_start_matches("rgb(").trim_end_matches(')');
    let v: Vec<f64> = inner
        .split(',')
        .map(|c| c.trim().parse().unwrap())
        .collect();
    assert_eq!(v.len(), 3, "{css}");
    [v[0], v[1], v[2]]
}

fn near(a: [f64; 3], b: [f64; 3], within: f64) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= within)
}

#[tokio::test]
async fn chromium_paints_the_placeholder_while_the_origin_holds_the_image_back() {
    let (open, gate) = tokio::sync::watch::channel(false);
    let hold = Arc::new(AtomicBool::new(false));
    let serve = photographs(implied_sizes(&[POST]));
    let held = hold.clone();
    let origin = move |seen: &Seen| {
        let reply = serve(seen);
        if held.load(Ordering::SeqCst) {
            Reply::Gated(gate.clone(), Box::new(reply))
        } else {
            reply
        }
    };
    // No cache tier: the picture a page asks for is fetched again, not made from the original
    // imgrelay read when it measured it.
    let stack = Stack::serving(origin, |c| {
        c.cache.memory_bytes = imgrelay::config::Bytes(0)
    })
    .await;
    let relay = format!("http://{}", stack.relay.addr);
    let mut posts = Vec::new();
    for mode in ["color", "blur"] {
        let keys = format!("placeholder = \"{mode}\"");
        let args = ["--info-from", relay.as_str()];
        posts.extend(stack.rewrite_with(mode, &[POST], &keys, &args).await);
    }
    hold.store(true, Ordering::SeqCst);
    let (_site, urls) = site(&[("color", &posts[..1]), ("blur", &posts[1..])]).await;

    let photo =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photo.jpg"));
    let photo_mean = pixels::mean(
        &image::load_from_memory(&photo.unwrap())
            .unwrap()
            .into_rgb8(),
    );
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver
        .browser_waiting(profile.path(), Screen::Desktop, false)
        .await;
    for (mode, url) in ["color", "blur"].iter().zip(&urls) {
        browser.goto(&url[0]).await.unwrap();
        let mut first = json!(null);
        for _ in 0..100 {
            first = browser.execute(FIRST_IMAGE, vec![]).await.unwrap();
            if first[3].as_f64().unwrap_or(0.0) > 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            first[3].as_f64().unwrap_or(0.0) > 0.0,
            "{mode}: no box: {first}"
        );
        assert_eq!(
            first[4],
            json!(false),
            "{mode}: the origin let the picture go: {first}"
        );
        let shot = browser.screenshot().await.unwrap();
        let still = browser.execute(FIRST_IMAGE, vec![]).await.unwrap();
        assert_eq!(
            still[4],
            json!(false),
            "{mode}: decoded before the screenshot"
        );

        // The box's part on screen, 4 pixels in from each edge.
        let shot = image::load_from_memory(&shot).unwrap().into_rgb8();
        let f = |i: usize| first[i].as_f64().unwrap();
        let (left, top) = (f(0).max(0.0) as u32 + 4, f(1).max(0.0) as u32 + 4);
        let right = ((f(0) + f(2)) as u32).min(shot.width()) - 4;
        let bottom = ((f(1) + f(3)) as u32).min(shot.height()) - 4;
        assert!(right > left + 16 && bottom > top + 16, "{mode}: {first}");
        let seen =
            image::imageops::crop_imm(&shot, left, top, right - left, bottom - top).to_image();
        let painted = pixels::mean(&seen);
        let white = [255.0; 3];
        assert!(
            !near(painted, white, 8.0),
            "{mode}: the box shows the page's white, no placeholder ({first})"
        );
        match *mode {
            "color" => {
                // One colour, the one written: every pixel of the box.
                let want = rgb(first[5].as_str().unwrap());
                for p in seen.pixels() {
                    let got = p.0.map(f64::from);
                    assert!(near(got, want, 3.0), "color: {got:?}, written {want:?}");
                }
            }
            _ => {
                // The blurred picture: not one flat colour, the picture's own on average.
                let spread = seen.pixels().map(|p| p.0[0]).max().unwrap()
                    - seen.pixels().map(|p| p.0[0]).min().unwrap();
                assert!(spread > 8, "blur: one flat colour, no picture ({first})");
                assert!(
                    near(painted, photo_mean, 40.0),
                    "blur: mean {painted:?}, the picture's {photo_mean:?}"
                );
            }
        }
    }
    // Let go: the pictures arrive and cover their placeholders.
    open.send(true).unwrap();
    let shown = decode_all(&browser, &urls[1][0]).await;
    assert!(shown.iter().all(|s| s.natural_width > 0), "{shown:?}");
    let _ = browser.close().await;
}
