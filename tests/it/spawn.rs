//! The real binary as a child process, for tests that read what only a process shows: its log
//! lines (the causes that never reach a client) and its memory (`/proc/PID/status`).

#![allow(dead_code)]

use std::{
    net::SocketAddr,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::io::AsyncBufReadExt;

const BIN: &str = env!("CARGO_BIN_EXE_imgrelay");

/// A running `imgrelay serve` on 127.0.0.1, its JSON log collected line by line; killed on drop.
pub struct Spawned {
    pub addr: SocketAddr,
    pub pid: u32,
    child: tokio::process::Child,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Spawned {
    /// Starts the binary with `config` as its `proxy.toml` (loopback origins reachable, any port,
    /// no disk tier and JSON logs are added by the environment unless `config` sets them).
    pub async fn start(config: &str) -> Spawned {
        Spawned::start_with_env(config, &[]).await
    }

    /// [`Spawned::start`] with `env` set last (over the defaults above).
    pub async fn start_with_env(config: &str, env: &[(&str, &str)]) -> Spawned {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("proxy.toml");
        std::fs::write(&file, config).unwrap();
        let mut child = tokio::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&file)
            .current_dir(dir.path())
            .env("IMGRELAY_LOG__FORMAT", "json")
            .env("IMGRELAY_CACHE__DISK_BYTES", "0")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("imgrelay said where it listens");
            if let Some(i) = line.find("\"addr\":\"") {
                break line[i + 8..].split('"').next().unwrap().parse().unwrap();
            }
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Spawned {
            addr,
            pid,
            child,
            log,
            _dir: dir,
        }
    }

    /// The first log line that contains every one of `needles`, waiting for it to be written
    /// (the access line follows the answer by moments); `None` after ten seconds.
    pub async fn log_line(&self, needles: &[&str]) -> Option<String> {
        for _ in 0..500 {
            if let Some(found) = self.lines_with(needles).into_iter().next() {
                return Some(found);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// The log lines written so far that contain every one of `needles`.
    pub fn lines_with(&self, needles: &[&str]) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .cloned()
            .collect()
    }

    /// Waits for the process to exit (after a signal the test sent).
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().await.unwrap()
    }

    /// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in bytes.
    pub fn status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"));
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb * 1024
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
