//! Smart crop and focal points end to end: a subject off-centre in a PNG served by a loopback
//! origin, cropped with `fit=cover`; the answer is decoded and the subject looked for.

use crate::support::*;

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// An origin serving `files` under `/f/{name}`.
async fn fixture_origin(files: Vec<(&'static str, Vec<u8>)>) -> Origin {
    Origin::files(files.into_iter().map(|(n, b)| (format!("/f/{n}"), b))).await
}

/// The bounding box (left, top, right, bottom) of the strongly red pixels of a PNG answer.
fn red_box(body: &[u8]) -> Option<(u32, u32, u32, u32)> {
    let img = image::load_from_memory(body).unwrap().into_rgb8();
    let red: Vec<_> = img
        .enumerate_pixels()
        .filter(|(_, _, p)| p[0] > 180 && p[1] < 80 && p[2] < 80)
        .map(|(x, y, _)| (x, y))
        .collect();
    let (xs, ys) = (red.iter().map(|p| p.0), red.iter().map(|p| p.1));
    Some((xs.clone().min()?, ys.clone().min()?, xs.max()?, ys.max()?))
}

#[tokio::test]
async fn smart_crops_and_focal_points_keep_the_subject() {
    // 1200×400 grey with a red 200×200 square near the right edge (x 950..1150, y 100..300),
    // and its portrait twin (400×1200, the square at y 950..1150).
    let paint = |w: u32, h: u32, portrait: bool| {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let (along, across) = if portrait { (y, x) } else { (x, y) };
            if (950..1150).contains(&along) && (100..300).contains(&across) {
                image::Rgb([220, 30, 40])
            } else {
                image::Rgb([120, 120, 120])
            }
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let origin = fixture_origin(vec![
        ("wide.png", paint(1200, 400, false)),
        ("tall.png", paint(400, 1200, true)),
    ])
    .await;
    let relay = &Relay::start(|_| {}).await;
    for (name, portrait) in [("wide.png", false), ("tall.png", true)] {
        let src = enc(&origin.url(&format!("/f/{name}")));
        let get = |a: &str| {
            let target = format!("/?url={src}&w=200&h=200&fit=cover&output=png&{a}");
            async move { relay.get(&target).await }
        };
        let centre = get("a=center").await;
        assert_eq!(centre.status, 200, "{name}: {}", centre.text());
        assert_eq!(
            red_box(&centre.body),
            None,
            "{name}: a centre crop misses it"
        );
        // The 400×400 window is halved: the square is 100×100, whole, inside the answer.
        for a in [
            "a=attention",
            "a=focal&fpx=0.875&fpy=0.875",
            "a=focal&fpx=1&fpy=1",
        ] {
            let answer = get(a).await;
            assert_eq!(answer.status, 200, "{name} {a}: {}", answer.text());
            assert_eq!(decoded_size(&answer.body), (200, 200), "{name} {a}");
            let (l, t, r, b) = red_box(&answer.body).expect("the subject is kept");
            let (along, across) = if portrait {
                ((t, b), (l, r))
            } else {
                ((l, r), (t, b))
            };
            assert!(
                along.1 - along.0 >= 98 && along.1 - along.0 <= 101,
                "{name} {a}: {along:?}"
            );
            assert!(
                across == (50, 149) || across == (50, 150),
                "{name} {a}: {across:?}"
            );
            if a.contains("fpx=0.8125") {
                // Centred on 975: the window starts at 775, the square at (950-775)/2.
                assert!(along.0.abs_diff(88) <= 1, "{name} {a}: {along:?}");
            }
            if a.contains("fpx=1") {
                // Clamped to the edge: the window starts at 800.
                assert!(along.0.abs_diff(75) <= 1, "{name} {a}: {along:?}");
            }
        }
    }
}
