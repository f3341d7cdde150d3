//! Pixel statistics the test suites compare pictures by (`tests/it`, `tests/e2e`).

/// The mean colour of a picture.
pub fn mean(img: &image::RgbImage) -> [f64; 3] {
    let n = f64::from(img.width() * img.height());
    let mut sum = [0f64; 3];
    for p in img.pixels() {
        for (s, v) in sum.iter_mut().zip(p.0) {
            *s += f64::from(v);
        }
    }
    sum.map(|s| s / n)
}
