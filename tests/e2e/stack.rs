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
        let vcl = VCL.replace(
            ".port = \"8080\";",
            &format!(".port = \"{}\";", backend.port()),
        );
        assert_ne!(
            vcl, VCL,
            "the shipped VCL names its backend port as \"8080\""
        );
        Varnish::run(&vcl, addr).await
    }

    /// `varnishd` with `vcl` as its main file, next to the shipped common rules it includes,
    /// listening on `addr`; returns once it accepts connections.
    pub(crate) async fn run(vcl: &str, addr: SocketAddr) -> Varnish {
        let (dir, vcl_path) = vcl_dir(vcl);
        let child = Command::new("varnishd")
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
        let why = format!("is vmod xkey/accept missing? {VARNISH_PACKAGES}");
        await_listening(&mut v.child, addr, "varnishd", &why).await;
        v
    }

    pub(crate) async fn get(&self, target: &str, headers: &[(&str, &str)]) -> Answer {
        request(self.addr, "GET", target, headers).await
    }

    /// Varnish's own count of requests it sent to imgrelay (`MAIN.backend_req`, read with
    /// `varnishstat`); health probes are not among them.
    pub(crate) fn backend_requests(&self) -> u64 {
        let out = Command::new("varnishstat")
            .arg("-1")
            .arg("-n")
            .arg(self.dir.path().join("n"))
            .args(["-f", "MAIN.backend_req"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run varnishstat ({e}): {VARNISH_PACKAGES}"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "varnishstat: {text}");
        // `MAIN.backend_req   12   0.50 Backend requests made`
        text.lines()
            .find_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some("MAIN.backend_req")).then(|| f.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no MAIN.backend_req in varnishstat's output: {text}"))
    }
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
