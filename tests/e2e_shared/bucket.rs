//! A real S3-compatible server for the tests: `s3s-fs` on a loopback port, serving a bucket
//! that is a directory under a temporary root, so it can be stopped and restarted with its
//! objects kept. The tests also read and overwrite objects through their own S3 client.
//! Shared by the `e2e_shared` and `e2e` (fleet) suites; each uses a part of it.

#![allow(dead_code)]

use bytes::Bytes;
use futures_util::TryStreamExt;
use imgrelay::config::{Config, Dur, Secret};
use object_store::{aws::AmazonS3Builder, path::Path, ObjectStore, ObjectStoreExt};
use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Once},
    time::Duration,
};
use tokio::process::{Child, Command};

const BUCKET: &str = "imgrelay-e2e";
const PREFIX: &str = "fleet";
const ACCESS_KEY: &str = "e2e-access-key";
const SECRET_KEY: &str = "e2e-secret-key-e2e-secret-key";
/// The MAC key of `cache.shared.key` every replica of one test shares.
pub const MAC_KEY: &str = "e2e-shared-mac-key-e2e-shared-mac-key";
const INSTALL: &str = "s3s-fs is not installed: run tests/e2e/setup.sh \
     (cargo install s3s-fs --version 0.14.1 --features binary --locked)";

/// The credentials every replica and the test client use, set once for the process.
fn credentials() {
    static SET: Once = Once::new();
    SET.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    });
}

/// `s3s-fs` on `$PATH` or in cargo's bin directory.
fn binary() -> PathBuf {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin"));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(cargo_bin)
        .map(|dir| dir.join("s3s-fs"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{INSTALL}"))
}

pub struct S3Server {
    root: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    client: Arc<dyn ObjectStore>,
}

impl S3Server {
    pub async fn start() -> S3Server {
        credentials();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let port = {
            let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let client = AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .unwrap();
        let mut server = S3Server {
            root,
            port,
            child: None,
            client: Arc::new(client),
        };
        server.restart().await;
        server
    }

    /// Points `config`'s shared tier at this server.
    pub fn configure(&self, config: &mut Config) {
        let s = &mut config.cache.shared;
        s.url = format!("s3://{BUCKET}/{PREFIX}");
        s.endpoint = format!("http://127.0.0.1:{}", self.port);
        s.allow_http = true;
        s.timeout = Dur(Duration::from_secs(2));
        s.key = Secret(MAC_KEY.into());
    }

    /// The same settings as [`S3Server::configure`], as the `[cache.shared]` table of a
    /// `proxy.toml` (for replicas started as processes; they inherit the credentials).
    pub fn toml(&self) -> String {
        format!(
            "[cache.shared]\nurl = \"s3://{BUCKET}/{PREFIX}\"\n\
             endpoint = \"http://127.0.0.1:{}\"\nallow_http = true\ntimeout = \"2s\"\n\
             key = \"{MAC_KEY}\"\n",
            self.port
        )
    }

    /// Starts the server (again) on its port and root; returns once it accepts connections.
    pub async fn restart(&mut self) {
        let mut child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{INSTALL} ({e})"));
        for _ in 0..400 {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("s3s-fs exited at start-up: {status}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                self.child = Some(child);
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("s3s-fs did not listen on port {} within 10 s", self.port);
    }

    /// Stops the server; its objects stay in the root directory.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// The bucket prefix of every object of `source`'s original and variants.
    fn prefix(source: &str) -> Path {
        let url = imgrelay::fetch::source::parse(source).unwrap();
        let group = imgrelay::cache::original_key(&url);
        Path::from(format!(
            "{PREFIX}/{}",
            imgrelay::cache::layout::group_dir(&group)
        ))
    }

    /// Every object of `source`, with its bytes, sorted by path.
    pub async fn objects(&self, source: &str) -> Vec<(Path, Bytes)> {
        let listed: Vec<_> = self
            .client
            .list(Some(&Self::prefix(source)))
            .try_collect()
            .await
            .unwrap();
        let mut out = Vec::new();
        for meta in listed {
            let bytes = self
                .client
                .get(&meta.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            out.push((meta.location, bytes));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub async fn put(&self, path: &Path, bytes: Vec<u8>) {
        self.client.put(path, bytes.into()).await.unwrap();
    }

    /// Waits until `source` has at least `n` objects (the replicas write after answering).
    pub async fn wait_for_objects(&self, source: &str, n: usize) {
        for _ in 0..600 {
            if self.objects(source).await.len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} objects of {source} never reached the bucket");
    }

    /// Waits until every object in `before` has been overwritten with other bytes.
    pub async fn wait_until_changed(&self, before: &[(Path, Bytes)]) {
        for _ in 0..600 {
            let now = self.objects_at(before).await;
            if now.iter().zip(before).all(|(a, b)| a != &b.1) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the damaged objects were never overwritten");
    }

    async fn objects_at(&self, paths: &[(Path, Bytes)]) -> Vec<Bytes> {
        let mut out = Vec::new();
        for (path, _) in paths {
            let got = match self.client.get(path).await {
                Ok(got) => got.bytes().await.unwrap(),
                Err(_) => Bytes::new(),
            };
            out.push(got);
        }
        out
    }
}
