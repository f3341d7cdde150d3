//! AVIF as encoders really write it (SPEC §2.2): grids, clean apertures, `irot`/`imir` stored
//! before `ispe`, layered files, alpha of image sequences, full and limited range, 10 and 12
//! bits. The files were written by libavif's avifenc, some with boxes edited afterwards
//! (`tests/fixtures/avif/make.py` makes them all); each is compared, through a real relay, with
//! a decode by libavif with libgav1 or libaom (never the dav1d family that imgrelay's rav1d
//! ports), checked in beside it as PNG, against a PSNR floor.

use crate::conformance::{assert_near_in, assert_rgba_near_in, through_in};

/// The PSNR (dB) every file reaches against its reference decode.
const FLOOR: f64 = 48.0;

async fn through(name: &str, params: &str) -> crate::support::Answer {
    through_in("avif", name, params).await
}

/// Regression: `colr` was not read, so a file whose nclx box says full range over a sequence
/// header that says limited came out with stretched contrast; with it, the other ranges and
/// depths.
#[tokio::test]
async fn the_range_in_colr_outranks_the_sequence_header() {
    for (file, reference) in [
        ("full-seqlimited.avif", "full.ref.png"),
        ("full.avif", "full.ref.png"),
        ("limited.avif", "limited.ref.png"),
        ("full-10bit.avif", "full-10bit.ref.png"),
        ("limited-12bit-444.avif", "limited-12bit-444.ref.png"),
    ] {
        let a = through(file, "output=png").await;
        assert_near_in("avif", &a, reference, FLOOR);
    }
}

/// Regression: a grid (here 3×2 tiles of 64×64) was refused: "declares no image size".
#[tokio::test]
async fn a_grid_is_composed_from_its_tiles() {
    let a = through("grid.avif", "output=png").await;
    assert_near_in("avif", &a, "grid.ref.png", FLOOR);
}

/// Regression: a clean aperture (`clap`) was refused like a grid; it crops the picture.
#[tokio::test]
async fn a_clean_aperture_crops_the_picture() {
    let a = through("clap.avif", "output=png").await;
    assert_near_in("avif", &a, "clap.ref.png", FLOOR);
}

/// Regression: `irot` and `imir` stored before `ispe` were refused by the container parser.
#[tokio::test]
async fn irot_and_imir_before_ispe_are_applied() {
    let a = through("irot-first.avif", "output=png").await;
    assert_near_in("avif", &a, "irot-first.ref.png", FLOOR);
}

/// Regression: an image sequence with only tracks (no `meta` box) lost its alpha track or was
/// refused, at 8 and at 12 bits; files with an alpha item beside the tracks kept it.
#[tokio::test]
async fn the_alpha_of_an_image_sequence_is_kept() {
    for (file, reference) in [
        ("alpha-seq-8bit-tracks.avifs", "alpha-seq-8bit.ref.png"),
        ("alpha-seq-12bit-tracks.avifs", "alpha-seq-12bit.ref.png"),
        ("alpha-seq-8bit.avifs", "alpha-seq-8bit.ref.png"),
        ("alpha-seq-12bit.avifs", "alpha-seq-12bit.ref.png"),
    ] {
        let a = through(file, "output=png").await;
        assert_rgba_near_in("avif", &a, reference, FLOOR);
    }
}

/// Regression: a layered item (`a1lx`, `lsel`) was refused; it shows its best (last) layer.
#[tokio::test]
async fn a_layered_file_shows_its_best_layer() {
    let a = through("layered.avif", "output=png").await;
    assert_near_in("avif", &a, "layered.ref.png", FLOOR);
}

/// Regression: nclx primaries other than sRGB's were ignored: Display P3 (nclx 12/13/6) came
/// out as if sRGB, its colours dulled. The reference is libavif's decode converted to sRGB by
/// the primaries' matrices.
#[tokio::test]
async fn nclx_primaries_are_converted_to_srgb() {
    let a = through("p3.avif", "output=png").await;
    assert_near_in("avif", &a, "p3.ref.png", FLOOR);
}

/// A grid whose alpha is itself a grid is not read yet: a clear 422, not an opaque picture.
#[tokio::test]
async fn a_grid_with_an_alpha_grid_is_refused_clearly() {
    let a = through("grid-alpha.avif", "output=png").await;
    assert_eq!(a.status, 422, "{}", a.text());
    assert_eq!(a.header("x-imgrelay-error"), Some("undecodable"));
    assert!(a.text().contains("alpha"), "{}", a.text());
}
