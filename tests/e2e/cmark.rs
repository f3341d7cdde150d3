//! Markdown rewriting checked by the reference renderer: Debian's `cmark` (CommonMark's C
//! implementation, `--unsafe` so raw HTML is passed through as blogs pass it) renders each post
//! before and after its rewrite, and the renderings may differ only in image URLs. The same
//! check runs in-process with pulldown-cmark (`tests/it/differential.rs`); `cmark` shares none
//! of that library's bugs (its case-sensitive HTML block ends, for one).

#[path = "../common/differential.rs"]
mod check;

use std::{
    io::Write,
    process::{Command, Stdio},
};

/// `cmark --unsafe` of `markdown`.
pub(crate) fn render(markdown: &str) -> String {
    let mut child = Command::new("cmark")
        .arg("--unsafe")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cmark is not installed ({e}): apt-get install cmark (tests/e2e/setup.sh)")
        });
    let mut stdin = child.stdin.take().unwrap();
    let text = markdown.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "cmark failed: {:?}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn markdown_renderings_differ_only_in_image_urls_cmark() {
    let inputs = check::inputs(400);
    check::assert_all(&inputs, &render);
}
