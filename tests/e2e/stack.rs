//! The pieces every e2e stack is built from, started on loopback ports: `varnishd` with the
//! shipped VCL in front of imgrelay, a static server for pages, and the helpers to start an
//! outside program and wait until it listens. imgrelay itself and scripted origins come from
//! the integration suite's `support.rs`; the suites (`varnish.rs`, `browser.rs`) only assemble
//! these and assert.

use crate::support::*;
use std::{
    collections::HashMap,
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

pub(crate) const VCL: &str = include_str!("../../deploy/varnish/imgrelay.vcl");
/// The rules `imgrelay.vcl` and `fleet.vcl` include as "./imgrelay-common.vcl".
const COMMON_VCL: &str = include_str!("../../deploy/varnish/imgrelay-common.vcl");
pub(crate) const VARNISH_PACKAGES: &str = "install the Debian packages `varnish varnish-modules` \
                                (`bash tests/e2e/setup.sh`)";

/// A loopback port nobody listens on now (the kernel's pick, released at once).
pub(crate) fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind((LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap()
}

pub(crate) fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Waits until `child` accepts connections on `addr`; panics, naming `program` and what to
/// install (`packages`), when it exits first or is not listening within 30 s.
pub(crate) async fn await_listening(
    child: &mut Child,
    addr: SocketAddr,
    program: &str,
    packages: &str,
) {
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{program} exited with {status}: {packages}");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{program} did not listen on {addr} within 30 s");
}

/// A `varnishd` in the foreground with the shipped VCL pointed at `backend`; killed on drop.
pub(crate) struct Varnish {
    pub(crate) addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Varnish {
    pub(crate) async fn start(backend: SocketAddr) -> Varnish {
        Varnish::start_on(backend, free_port()).await
    }

    /// Listens on `addr`, a port reserved by [`free_port`].
    pub(crate) async fn start_on(backend: SocketAddr, addr: SocketAddr) -> Varnish {
        Varnish::run(&shipped_vcl(backend), addr).await
    }

    /// The shipped VCL in front of `backend`, started without a purge token.
    pub(crate) async fn start_without_token(backend: SocketAddr) -> Varnish {
        Varnish::run_with_token(&shipped_vcl(backend), free_port(), None).await
    }

    /// `varnishd` with `vcl` as its main file, next to the shipped common rules it includes,
    /// listening on `addr`, with the tests' purge token in its environment; returns once it
    /// accepts connections.
    pub(crate) async fn run(vcl: &str, addr: SocketAddr) -> Varnish {
        Varnish::run_with_token(vcl, addr, Some(PURGE_TOKEN)).await
    }

    /// [`Varnish::run`] with `IMGRELAY_CDN__PURGE_TOKEN` set to `token`, or unset.
    pub(crate) async fn run_with_token(
        vcl: &str,
        addr: SocketAddr,
        token: Option<&str>,
    ) -> Varnish {
        let (dir, vcl_path) = vcl_dir(vcl);
        let mut varnishd = Command::new("varnishd");
        varnishd.env_remove(PURGE_TOKEN_VAR);
        if let Some(token) = token {
            varnishd.env(PURGE_TOKEN_VAR, token);
        }
        let child = varnishd
            .arg("-F")
            .args(["-a", &addr.to_string()])
            .arg("-f")
            .arg(&vcl_path)
            .arg("-n")
            .arg(dir.path().join("n"))
            .args(["-s", "malloc,64m", "-T", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run varnishd ({e}): {VARNISH_PACKAGES}"));
        let mut v = Varnish { addr, child, dir };
        let why = format!("is vmod xkey missing? {VARNISH_PACKAGES}");
        await_listening(&mut v.child, addr, "varnishd", &why).await;
        v
    }

    pub(crate) async fn get(&self, target: &str, headers: &[(&str, &str)]) -> Answer {
        request(self.addr, "GET", target, headers).await
    }

    /// Varnish's own count of requests it sent to imgrelay (`MAIN.backend_req`, read with
    /// `varnishstat`); health probes are not among them.
    pub(crate) fn backend_requests(&self) -> u64 {
        self.counter("MAIN.backend_req")
    }

    /// One of Varnish's counters or gauges (`MAIN.n_object`, …), read with `varnishstat`.
    pub(crate) fn counter(&self, name: &str) -> u64 {
        let out = Command::new("varnishstat")
            .arg("-1")
            .arg("-n")
            .arg(self.dir.path().join("n"))
            .args(["-f", name])
            .output()
            .unwrap_or_else(|e| panic!("cannot run varnishstat ({e}): {VARNISH_PACKAGES}"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "varnishstat: {text}");
        // `MAIN.backend_req   12   0.50 Backend requests made`
        text.lines()
            .find_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some(name)).then(|| f.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no {name} in varnishstat's output: {text}"))
    }

    /// The `TTL` records Varnish logged so far (`TTL RFC 7190 10 -1 …`: the source, then TTL,
    /// grace and keep in seconds, then the source's own fields), read back with `varnishlog -d`.
    pub(crate) fn ttl_records(&self) -> Vec<String> {
        let out = Command::new("varnishlog")
            .arg("-d")
            .arg("-n")
            .arg(self.dir.path().join("n"))
            .args(["-g", "raw", "-i", "TTL"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run varnishlog ({e}): {VARNISH_PACKAGES}"));
        assert!(out.status.success(), "varnishlog failed");
        // `     32770 TTL            b RFC 7198 604800 -1 …`: vxid, tag, side, record.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                (fields.get(1) == Some(&"TTL")).then(|| fields[3..].join(" "))
            })
            .collect()
    }
}

/// The variable of varnishd's environment that the shipped VCL reads the purge token from;
/// the same name configures imgrelay's `cdn.purge_token`.
pub(crate) const PURGE_TOKEN_VAR: &str = "IMGRELAY_CDN__PURGE_TOKEN";

/// `imgrelay.vcl` as shipped, its backend port set to `backend`'s.
fn shipped_vcl(backend: SocketAddr) -> String {
    let vcl = VCL.replace(
        ".port = \"8080\";",
        &format!(".port = \"{}\";", backend.port()),
    );
    assert_ne!(
        vcl, VCL,
        "the shipped VCL names its backend port as \"8080\""
    );
    vcl
}

/// A temporary directory holding `vcl` as `main.vcl` beside the shipped common rules it
/// includes, and the path of `main.vcl`. varnishd drops privileges for its worker and
/// compiler: they must read the files.
pub(crate) fn vcl_dir(vcl: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    set_mode(dir.path(), 0o755);
    let vcl_path = dir.path().join("main.vcl");
    for (path, text) in [
        (vcl_path.clone(), vcl),
        (dir.path().join("imgrelay-common.vcl"), COMMON_VCL),
    ] {
        std::fs::write(&path, text).unwrap();
        set_mode(&path, 0o644);
    }
    (dir, vcl_path)
}

impl Drop for Varnish {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many image answers imgrelay has given, by its own counter.
pub(crate) async fn image_answers(relay: SocketAddr) -> f64 {
    request(relay, "GET", "/metrics", &[])
        .await
        .text()
        .lines()
        .filter(|l| l.starts_with("imgrelay_requests_total{") && l.contains("route=\"image\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A static web server for pages: each path of `pages` answers with its HTML, anything else
/// is a 404. Every answer sets a cookie for 127.0.0.1, so the reader's browser holds one when
/// it asks Varnish for the page's images.
pub(crate) async fn static_site(pages: HashMap<String, Vec<u8>>) -> Origin {
    Origin::start(move |seen| match pages.get(&seen.target) {
        Some(html) => Reply::ok("text/html; charset=utf-8", html)
            .with_header("Set-Cookie", "reader=1; Path=/; SameSite=Lax"),
        None => Reply::status(404),
    })
    .await
}
