//! The real binary: configuration errors, the open-proxy guard, and SIGTERM draining.

use crate::{spawn::Spawned, support::*};
use std::{
    process::{Command, Stdio},
    time::Duration,
};
use tokio::io::AsyncBufReadExt;

const BIN: &str = env!("CARGO_BIN_EXE_imgrelay");

fn imgrelay(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap(); // no ./proxy.toml there
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn a_bad_value_or_key_exits_2_naming_it() {
    let out = imgrelay(
        &["check-config"],
        &[("IMGRELAY_UPSTREAM__TIMEOUT", "forever")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("upstream.timeout") && err.contains("IMGRELAY_UPSTREAM__TIMEOUT"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[cache]\nmemory_byts = \"1MiB\"\n").unwrap();
    let out = imgrelay(&["--config", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("memory_byts"), "{err}");

    let out = imgrelay(&["--listen", "nonsense"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.listen"));
}

#[test]
fn a_bad_shared_tier_setting_or_missing_credentials_exit_2_naming_the_key() {
    let run = |env: &[(&str, &str)]| {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("check-config").current_dir(dir.path());
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        cmd.env("IMGRELAY_CACHE__SHARED__URL", "s3://fleet-cache/imgrelay");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.stdout,
        )
    };
    let (code, err, _) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("cache.shared.url") && err.contains("AWS_ACCESS_KEY_ID"),
        "{err}"
    );
    let creds = [
        ("AWS_ACCESS_KEY_ID", "id"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ];
    let with = |more: &[(&'static str, &'static str)]| {
        let mut env = creds.to_vec();
        env.extend_from_slice(more);
        run(&env)
    };
    let (code, err, _) = with(&[("IMGRELAY_CACHE__SHARED__ENDPOINT", "http://127.0.0.1:9")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cache.shared.allow_http"), "{err}");
    let (code, err, _) = with(&[("IMGRELAY_CACHE__SHARED__TIMEOUT", "0s")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cache.shared.timeout"), "{err}");
    let reachable = [
        ("IMGRELAY_CACHE__SHARED__ENDPOINT", "http://127.0.0.1:9"),
        ("IMGRELAY_CACHE__SHARED__ALLOW_HTTP", "true"),
    ];
    // Without the MAC key a bucket writer could make imgrelay serve anything.
    let (code, err, _) = with(&reachable);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("cache.shared.key") && err.contains("required"),
        "{err}"
    );
    let (code, err, stdout) = with(&[
        reachable[0],
        reachable[1],
        (
            "IMGRELAY_CACHE__SHARED__KEY",
            "a-fleet-wide-mac-key-of-32-bytes-or-more",
        ),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !String::from_utf8_lossy(&stdout).contains("a-fleet-wide-mac-key"),
        "the key is masked"
    );
    let shown = String::from_utf8_lossy(&stdout);
    assert!(
        shown.contains("[cache.shared]") && shown.contains("s3://fleet-cache/imgrelay"),
        "{shown}"
    );
}

#[test]
fn an_unreadable_ca_file_or_a_bad_pin_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "no certificate here\n").unwrap();
    for (path, why) in [
        (dir.path().join("missing.pem"), "cannot read"),
        (not_pem, "no PEM certificate"),
    ] {
        let path = path.to_str().unwrap().to_string();
        let out = imgrelay(&["check-config"], &[("IMGRELAY_UPSTREAM__CA_FILE", &path)]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("upstream.ca_file") && err.contains(why),
            "{err}"
        );
    }
    let out = imgrelay(
        &["check-config"],
        &[(
            "IMGRELAY_UPSTREAM__RESOLVE",
            r#"{"img.test" = "127.0.0.1:443"}"#,
        )],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("upstream.resolve") && err.contains("host:port"),
        "{err}"
    );
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_masked() {
    let out = imgrelay(
        &["check-config"],
        &[
            ("IMGRELAY_SERVER__ADMIN_TOKEN", "hunter2hunter2"),
            (
                "IMGRELAY_SECURITY__SIGNING_KEYS",
                r#"["0123456789abcdef0123456789abcdef"]"#,
            ),
            ("IMGRELAY_TRANSFORM__QUALITY__JPEG", "70"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("jpeg = 70"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("0123456789abcdef"),
        "{text}"
    );
    assert!(text.contains("***"));
    let parsed: toml::Table = text.parse().expect("check-config prints TOML");
    assert!(parsed.contains_key("upstream"));
}

#[test]
fn open_proxy_guard_refuses_a_public_listener_without_keys_or_hosts() {
    // Refused during validation, before any socket is bound.
    let out = imgrelay(&["serve", "--listen", "0.0.0.0:8080"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("open proxy") && err.contains("security.open_proxy"),
        "{err}"
    );
}

#[tokio::test]
async fn sigterm_lets_the_in_flight_request_finish_then_exits_0() {
    let image = jpeg(64, 64);
    let img = image.clone();
    // The origin takes ~1.5 s: the request is still in flight when SIGTERM lands.
    let origin = Origin::start(move |_| {
        Reply::Delayed(
            Duration::from_millis(1500),
            Box::new(Reply::ok("image/jpeg", &img)),
        )
    })
    .await;
    let mut relay =
        Spawned::start("[security]\nallow_networks = [\"127.0.0.0/8\"]\nallowed_ports = []\n")
            .await;
    let (addr, pid) = (relay.addr, relay.pid);
    let target = format!("/?{}", origin.url("/slow.jpg"));
    let in_flight = tokio::spawn(async move { request(addr, "GET", &target, &[]).await });
    // Give the request time to reach the origin, then ask the process to stop.
    while origin.seen().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());

    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, image);
    let status = tokio::time::timeout(Duration::from_secs(30), relay.wait())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // New connections are refused once it has exited.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn sign_prints_the_readme_test_vector() {
    // The same vector as README.md "Signing"; cross-checked with Python's hmac module.
    let out = imgrelay(
        &[
            "sign",
            "https://static.example.com/a.jpeg",
            "output=webp",
            "w=640",
        ],
        &[(
            "IMGRELAY_SECURITY__SIGNING_KEYS",
            r#"["imgrelay-test-key-0123456789abcdef"]"#,
        )],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "http://127.0.0.1:8080/?url=https%3A%2F%2Fstatic.example.com%2Fa.jpeg&w=640&output=webp&s=2K4VaJcRwO3CbtxFVLEx_g"
    );
    let bad = imgrelay(&["sign", "https://h/a.jpg", "w=0"], &[]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`w`"));
}

/// Runs the real binary with JSON logs and `env`, sends `requests` (target, headers), stops it
/// with SIGTERM, and returns its answers and every log line it wrote.
async fn logged(
    env: &[(&str, &str)],
    requests: &[(String, Vec<(&str, &str)>)],
) -> (Vec<Answer>, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("IMGRELAY_SECURITY__ALLOW_NETWORKS", r#"["127.0.0.0/8"]"#)
        .env("IMGRELAY_SECURITY__ALLOWED_PORTS", "[]")
        .env("IMGRELAY_CACHE__DISK_BYTES", "0")
        .env("IMGRELAY_LOG__FORMAT", "json")
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let addr: std::net::SocketAddr = loop {
        let line = lines.next_line().await.unwrap().expect("a listening line");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        let addr = v["addr"].as_str().map(str::to_string);
        log.push(v);
        if let Some(a) = addr {
            break a.parse().unwrap();
        }
    };
    let mut answers = Vec::new();
    for (target, headers) in requests {
        answers.push(request(addr, "GET", target, headers).await);
    }
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    while let Some(line) = lines.next_line().await.unwrap() {
        log.push(serde_json::from_str(&line).expect("JSON log line"));
    }
    assert_eq!(child.wait().await.unwrap().code(), Some(0));
    (answers, log)
}

fn access_lines(log: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    log.iter()
        .filter(|v| v["target"] == "imgrelay::access")
        .collect()
}

#[tokio::test]
async fn json_access_lines_carry_the_spec_fields() {
    let image = png(8, 8);
    let origin = Origin::start({
        let image = image.clone();
        move |_| Reply::ok("image/png", &image)
    })
    .await;
    let requests = [
        (
            format!("/?{}", origin.url("/a.png")),
            vec![("X-Request-Id", "json-access-1")],
        ),
        ("/nope".to_string(), vec![("X-Request-Id", "json-access-2")]),
    ];
    let (answers, log) = logged(&[], &requests).await;
    assert_eq!(answers[0].body, image);
    let lines = access_lines(&log);
    assert_eq!(lines.len(), 2, "one access line per request: {log:#?}");
    let ok = lines[0];
    assert_eq!(ok["request_id"], "json-access-1");
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["route"], "original");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["cache"], "MISS");
    assert_eq!(ok["bytes"], image.len() as u64);
    assert!(
        ok["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{ok}"
    );
    assert_eq!(ok["level"], "INFO");
    let missing = lines[1];
    assert_eq!(missing["request_id"], "json-access-2");
    assert_eq!(
        (missing["route"].as_str(), missing["status"].as_u64()),
        (Some("other"), Some(404))
    );
    assert_eq!(missing["error"], "not_found");
    assert!(
        missing.get("cache").is_none(),
        "no X-Cache, no cache field: {missing}"
    );
}

#[tokio::test]
async fn log_access_false_writes_no_access_line() {
    let origin = Origin::start(|_| Reply::ok("image/png", &png(8, 8))).await;
    let requests = [
        (format!("/?{}", origin.url("/a.png")), vec![]),
        ("/nope".to_string(), vec![]),
    ];
    let (answers, log) = logged(&[("IMGRELAY_LOG__ACCESS", "false")], &requests).await;
    assert_eq!((answers[0].status, answers[1].status), (200, 404));
    assert!(access_lines(&log).is_empty(), "{log:#?}");
    assert!(
        log.iter().any(|v| v["message"] == "drained"),
        "the log was read to its end: {log:#?}"
    );
}

#[tokio::test]
async fn log_lines_about_a_request_carry_its_id() {
    // The origin's copy is stale at once (ttl 0); the second request's revalidation fails, so
    // the fill, on a task of its own, logs that it serves the stale copy.
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let origin =
        Origin::start(
            move |_| match served.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Reply::ok("image/png", &png(8, 8)),
                _ => Reply::status(503),
            },
        )
        .await;
    let target = format!("/?{}", origin.url("/a.png"));
    let requests = [
        (target.clone(), vec![("X-Request-Id", "first")]),
        (target, vec![("X-Request-Id", "stale-served")]),
    ];
    let env = [
        ("IMGRELAY_CACHE__MIN_TTL", "0s"),
        ("IMGRELAY_CACHE__MAX_TTL", "0s"),
    ];
    let (answers, log) = logged(&env, &requests).await;
    assert_eq!(answers[1].header("x-cache"), Some("HIT-STALE"));
    let stale = log
        .iter()
        .find(|v| v["message"] == "origin failed; serving a stale copy")
        .unwrap_or_else(|| panic!("no stale line: {log:#?}"));
    assert_eq!(stale["span"]["request_id"], "stale-served", "{stale}");
}
