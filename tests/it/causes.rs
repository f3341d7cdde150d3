//! What the operator reads when something fails: each error line names its cause (the origin's
//! status and host), a purge that left a tier behind answers 502 and says which, and every
//! access line written before SIGTERM reaches the log.

use crate::{spawn::Spawned, support::*};
use std::{process::Command, time::Duration};

const TOKEN: &str = "causes-admin-token-causes-admin-token";

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn an_upstream_500_is_logged_with_its_status_and_host() {
    // The access line of an origin's 500 said `detail: ""`: no status, no host.
    let origin = Origin::start(|_| Reply::status(500)).await;
    let relay =
        Spawned::start("[security]\nallow_networks = [\"127.0.0.0/8\"]\nallowed_ports = []\n")
            .await;
    let answer = request(
        relay.addr,
        "GET",
        &format!("/?{}", origin.url("/broken.jpg")),
        &[("X-Request-Id", "upstream-500")],
    )
    .await;
    assert_eq!(answer.status, 502);
    assert!(
        !answer.text().contains("500"),
        "the cause is logged, never sent"
    );
    let line = relay
        .log_line(&["\"request_id\":\"upstream-500\"", "upstream_error"])
        .await
        .expect("an access line for the failed request");
    let v = json(&line);
    assert_eq!(v["level"], "WARN", "{v}");
    let detail = v["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&origin.addr.to_string()) && detail.contains("500"),
        "the detail names the host and the status: {v}"
    );
}

#[tokio::test]
async fn a_disk_purge_that_fails_answers_502_and_says_the_disk_tier_failed() {
    // A purge whose disk tier could not be removed answered `200 purged`: the operator
    // believed a source gone that this replica went on serving from its disk.
    let image = png(16, 16);
    let origin = Origin::start({
        let image = image.clone();
        move |_| Reply::ok("image/png", &image)
    })
    .await;
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap().to_string();
    let relay = Spawned::start_with_env(
        "[security]\nallow_networks = [\"127.0.0.0/8\"]\nallowed_ports = []\n",
        &[
            ("IMGRELAY_CACHE__DISK_BYTES", "64MiB"),
            ("IMGRELAY_CACHE__MEMORY_BYTES", "0"),
            ("IMGRELAY_CACHE__DIR", &cache_dir),
            ("IMGRELAY_SERVER__ADMIN_TOKEN", TOKEN),
        ],
    )
    .await;
    let src = origin.url("/kept.png");
    let first = request(relay.addr, "GET", &format!("/?{src}"), &[]).await;
    assert_eq!((first.status, first.header("x-cache")), (200, Some("MISS")));

    // Where the disk tier keeps every entry of the source, a file instead of a directory: the
    // disk purge cannot remove it (root ignores permission bits, so those cannot stand in).
    let url = imgrelay::fetch::source::parse(&src).unwrap();
    let group = imgrelay::cache::original_key(&url);
    let dir = cache
        .path()
        .join(imgrelay::cache::layout::group_dir(&group));
    assert!(dir.join("o").is_file(), "the original is on disk");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();

    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("X-Request-Id", "purge-1"),
    ];
    let purge = request(
        relay.addr,
        "POST",
        &format!("/purge?url={}", encode(&src)),
        &headers,
    )
    .await;
    assert_eq!(purge.status, 502, "{}", purge.text());
    assert!(
        purge.text().contains("disk of this replica: failed"),
        "{}",
        purge.text()
    );
    let logged = relay
        .log_line(&["this replica's disk tier was not purged"])
        .await
        .expect("an error line for the failed purge");
    let v = json(&logged);
    assert_eq!(v["level"], "ERROR", "{v}");
    assert!(
        v["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cannot remove") && d.contains(&cache_dir)),
        "the cause and the path: {v}"
    );

    // A forwarded purge (this replica only) fails the same way, as an error answer.
    let local = request(
        relay.addr,
        "POST",
        &format!("/purge?url={}&scope=local", encode(&src)),
        &[
            ("Authorization", auth.as_str()),
            ("X-Request-Id", "purge-2"),
        ],
    )
    .await;
    assert_eq!(local.status, 502, "{}", local.text());
    assert_eq!(local.header("x-imgrelay-error"), Some("disk_purge_failed"));
    assert!(local.text().contains("disk cache"), "{}", local.text());
    let line = relay
        .log_line(&["\"request_id\":\"purge-2\"", "disk_purge_failed"])
        .await
        .expect("the access line names the failure");
    assert!(json(&line)["detail"]
        .as_str()
        .is_some_and(|d| d.contains("cannot remove")));

    // Once the obstacle is gone the purge succeeds.
    std::fs::remove_file(&dir).unwrap();
    let again = request(
        relay.addr,
        "POST",
        &format!("/purge?url={}", encode(&src)),
        &headers,
    )
    .await;
    assert_eq!((again.status, again.text().as_str()), (200, "purged\n"));
}

#[tokio::test]
async fn every_access_line_written_before_sigterm_reaches_the_log() {
    // Access lines are written by a logging thread, off the request's path; a SIGTERM right
    // after a burst must still find each of them in the log, none left in a buffer.
    let mut relay = Spawned::start("").await;
    let addr = relay.addr;
    let mut tasks = Vec::new();
    for t in 0..4 {
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                let id = format!("burst-{t}-{i}");
                let a = request(addr, "GET", "/healthz", &[("X-Request-Id", &id)]).await;
                assert_eq!(a.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(Command::new("kill")
        .args(["-TERM", &relay.pid.to_string()])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(30), relay.wait())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // The reader task has seen the pipe close once "drained" is there and the process is gone.
    relay
        .log_line(&["\"message\":\"drained\""])
        .await
        .expect("the log was read to its end");
    let ids: std::collections::HashSet<String> = relay
        .lines_with(&["\"target\":\"imgrelay::access\"", "burst-"])
        .iter()
        .map(|l| {
            json(l)["request_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let missing: Vec<String> = (0..4)
        .flat_map(|t| (0..100).map(move |i| format!("burst-{t}-{i}")))
        .filter(|id| !ids.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} lines lost: {missing:?}",
        missing.len()
    );
}
