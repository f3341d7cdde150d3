//! `transform.memory_bytes`: running transforms hold no more decoded memory than the budget,
//! measured on the real process (`VmHWM` in `/proc/PID/status`) while small files that decode
//! large (a 200-frame 1000×1000 GIF of one-pixel frames, 15 MP JPEGs) are transformed at once.

use crate::{spawn::Spawned, support::*};
use std::time::Duration;

/// A GIF of `frames` frames on a `w`×`h` screen, each frame one pixel at a new place: a few
/// kilobytes that decode to `frames` × `w` × `h` × 4 bytes of RGBA.
pub(crate) fn sparse_gif(w: u16, h: u16, frames: u16) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&w.to_le_bytes());
    g.extend_from_slice(&h.to_le_bytes());
    // A global colour table of two entries (black, white); background 0, square pixels.
    g.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    // Loop forever (the NETSCAPE2.0 application extension).
    g.extend_from_slice(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00");
    for i in 0..frames {
        // Graphic control: no disposal, 20 ms.
        g.extend_from_slice(&[0x21, 0xF9, 0x04, 0x04, 2, 0, 0, 0]);
        // A 1×1 image at (i mod w, i mod h), no local colour table.
        g.push(0x2C);
        g.extend_from_slice(&(i % w).to_le_bytes());
        g.extend_from_slice(&(i % h).to_le_bytes());
        g.extend_from_slice(&[1, 0, 1, 0, 0]);
        // LZW, minimum code size 2: clear (4), index 1, end (5) in 3-bit codes, LSB first.
        g.extend_from_slice(&[2, 2, 0x4C, 0x01, 0]);
    }
    g.push(0x3B);
    g
}

#[test]
fn the_sparse_gif_decodes_to_every_frame_at_full_size() {
    use image::AnimationDecoder;
    let bytes = sparse_gif(40, 30, 5);
    let d = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap();
    let frames = d.into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), 5);
    assert!(frames.iter().all(|f| f.buffer().dimensions() == (40, 30)));
}

#[tokio::test]
async fn concurrent_large_transforms_stay_within_the_memory_budget() {
    let gif = sparse_gif(1000, 1000, 200);
    let photo = jpeg(5000, 3000);
    let origin = Origin::start(move |req| match req.target.as_str() {
        "/anim.gif" => Reply::ok("image/gif", &gif),
        _ => Reply::ok("image/jpeg", &photo),
    })
    .await;
    let budget: u64 = 256 << 20;
    let relay = Spawned::start(
        "[security]\nallow_networks = [\"127.0.0.0/8\"]\nallowed_ports = []\n\
         [cache]\nmemory_bytes = 0\n\
         [transform]\nmemory_bytes = \"256MiB\"\ntimeout = \"300s\"\n",
    )
    .await;
    let idle = relay.status_bytes("VmRSS");
    // Natural sizes: the GIF's frames are 4 MB each decoded (all 200 of them kept for WebP
    // output), the JPEGs 45 MB each decoded plus their encoders' buffers.
    let targets = [
        format!("/?url={}&output=gif", origin.url("/anim.gif")),
        format!("/?url={}&output=webp", origin.url("/anim.gif")),
        format!("/?url={}&output=jpg&q=50", origin.url("/a.jpg")),
        format!("/?url={}&output=png", origin.url("/b.jpg")),
    ];
    let answers = futures_join(relay.addr, &targets).await;
    let peak = relay.status_bytes("VmHWM");
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    eprintln!(
        "idle VmRSS {:.1} MiB, VmHWM {:.1} MiB, answers {:?}",
        mib(idle),
        mib(peak),
        answers
            .iter()
            .map(|a| (a.status, a.header("x-imgrelay-error").map(str::to_string)))
            .collect::<Vec<_>>()
    );
    for (target, a) in targets.iter().zip(&answers) {
        assert!(
            [200, 422, 503].contains(&a.status),
            "{target}: {} {}",
            a.status,
            a.text()
        );
    }
    assert!(
        answers.iter().any(|a| a.status == 200),
        "the budget lets some of the work through"
    );
    assert!(
        peak < budget + idle + (64 << 20),
        "VmHWM {:.1} MiB over the budget {:.1} + idle {:.1} + 64 MiB",
        mib(peak),
        mib(budget),
        mib(idle)
    );
}

/// Sends every request at once and returns the answers in order.
async fn futures_join(addr: std::net::SocketAddr, targets: &[String]) -> Vec<Answer> {
    let tasks: Vec<_> = targets
        .iter()
        .map(|t| {
            let t = t.clone();
            tokio::spawn(async move {
                request_within(addr, "GET", &t, &[], None, Duration::from_secs(300)).await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Regression: an AVIF was charged from the size its `ispe` box declares, while the AV1
/// decoder allocates for the size its sequence header declares. A 3000×3000 AVIF (a flat
/// picture, 677 bytes) with `ispe` patched to 16×16 answered 200 with a 3000×3000 JPEG under a
/// 16 MiB budget (peak RSS 162 MB); honest or not, it is now 422 `memory_limit`, and the
/// process stays within the budget.
#[tokio::test]
async fn an_avif_whose_ispe_lies_is_charged_for_its_coded_size() {
    let honest = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/avif/big.avif"
    ))
    .unwrap();
    let mut lying = honest.clone();
    let ispe = lying.windows(4).position(|w| w == b"ispe").unwrap();
    assert_eq!(
        &lying[ispe + 8..ispe + 16],
        &[0, 0, 0x0B, 0xB8, 0, 0, 0x0B, 0xB8]
    );
    lying[ispe + 8..ispe + 16].copy_from_slice(&[0, 0, 0, 16, 0, 0, 0, 16]);
    let origin = Origin::start(move |req| match req.target.as_str() {
        "/honest.avif" => Reply::ok("image/avif", &honest),
        _ => Reply::ok("image/avif", &lying),
    })
    .await;
    let budget: u64 = 16 << 20;
    let relay = Spawned::start(
        "[security]\nallow_networks = [\"127.0.0.0/8\"]\nallowed_ports = []\n\
         [cache]\nmemory_bytes = 0\n\
         [transform]\nmemory_bytes = \"16MiB\"\n",
    )
    .await;
    let idle = relay.status_bytes("VmRSS");
    for name in ["honest.avif", "lying.avif"] {
        for output in ["jpg", "avif"] {
            let target = format!("/?url={}&output={output}", origin.url(&format!("/{name}")));
            let a = request_within(
                relay.addr,
                "GET",
                &target,
                &[],
                None,
                Duration::from_secs(60),
            )
            .await;
            assert_eq!(a.status, 422, "{name} → {output}: {}", a.text());
            assert_eq!(
                a.header("x-imgrelay-error"),
                Some("memory_limit"),
                "{name} → {output}"
            );
        }
    }
    let peak = relay.status_bytes("VmHWM");
    assert!(
        peak < budget + idle + (64 << 20),
        "VmHWM {} MiB over the budget + idle {} MiB + 64 MiB",
        peak >> 20,
        idle >> 20
    );
}
