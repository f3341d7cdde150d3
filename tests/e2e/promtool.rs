//! Prometheus' own linter on imgrelay's `/metrics`: the scrapes taken after the whole known
//! sequence (misses, hits, a 404, a 503, a coalesced burst, a restart) pass
//! `promtool check metrics`, so the text format and the naming are what Prometheus 2.x accepts.

use crate::scrape::known_sequence;
use std::{
    io::Write,
    process::{Command, Stdio},
};

/// `promtool check metrics` on `text`: its verdict and what it printed.
fn promtool_check(text: &str) -> (bool, String) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run promtool ({e}): install the Debian package `prometheus` \
             (`bash tests/e2e/setup.sh`)"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && said.trim().is_empty(), said)
}

#[tokio::test]
async fn scrapes_after_the_whole_sequence_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let (first, restarted) = known_sequence(dir.path()).await;
    for (name, text) in [("first server", first), ("after the restart", restarted)] {
        assert!(text.contains("imgrelay_requests_total{"), "{name}: {text}");
        let (clean, said) = promtool_check(&text);
        assert!(
            clean,
            "promtool check metrics ({name}):\n{said}\n--- scrape ---\n{text}"
        );
    }
}

#[test]
fn promtool_rejects_a_broken_scrape() {
    // The check above can fail: a counter named against the conventions is reported.
    let (clean, said) = promtool_check("# HELP x A counter.\n# TYPE x counter\nx 1\n");
    assert!(!clean && said.contains("_total"), "{said}");
}
