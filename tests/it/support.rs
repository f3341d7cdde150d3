//! Test helpers: scripted origins and an in-process imgrelay, both on loopback ports chosen by
//! the kernel, and a raw HTTP/1.1 client so tests see exactly what goes over the wire.

#![allow(dead_code)]

use imgrelay::{
    config::Config,
    fetch::connector::{Resolve, StaticResolver},
    AppState,
};
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

pub const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// One request as an origin received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a scripted origin sends back.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete response with `Content-Length`.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `Content-Length` for the whole body, then one byte per `every`.
    Drip { body: Vec<u8>, every: Duration },
    /// A chunked body that never ends.
    Endless,
    /// Headers that declare `length` bytes, then silence.
    Declares { length: u64 },
    /// Wait, then reply.
    Delayed(Duration, Box<Reply>),
    /// Wait until the test opens the gate (sends `true`), then reply.
    Gated(tokio::sync::watch::Receiver<bool>, Box<Reply>),
}

impl Reply {
    pub fn ok(content_type: &str, body: &[u8]) -> Reply {
        Reply::Full {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.to_vec(),
        }
    }
    pub fn status(status: u16) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: format!("status {status}\n").into_bytes(),
        }
    }
    pub fn redirect(location: &str) -> Reply {
        Reply::Full {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A scripted HTTP/1.1 origin; one request per connection.
pub struct Origin {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    inflight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

/// A file of `tests/fixtures`.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("tests/fixtures/{name}: {e}"))
}

impl Origin {
    /// An origin serving `files` (request target, e.g. `/f/a.png`, and body) as
    /// `application/octet-stream`; any other target is a 404.
    pub async fn files(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> Origin {
        let files: HashMap<String, Vec<u8>> = files.into_iter().collect();
        Origin::start(move |req| match files.get(&req.target) {
            Some(b) => Reply::ok("application/octet-stream", b),
            None => Reply::status(404),
        })
        .await
    }

    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Origin {
        Origin::start_on(LOCALHOST, handler).await
    }

    pub async fn start_on(
        ip: IpAddr,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Origin {
        Origin::start_serving(ip, None, handler).await
    }

    /// An origin speaking HTTPS with `tls` (its certificate and key) on `ip`.
    pub async fn start_tls(
        ip: IpAddr,
        tls: Arc<tokio_rustls::rustls::ServerConfig>,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Origin {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        Origin::start_serving(ip, Some(acceptor), handler).await
    }

    async fn start_serving(
        ip: IpAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Origin {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind origin");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let inflight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, i, p) = (seen.clone(), inflight.clone(), peak.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, seen, inflight, peak) =
                    (handler.clone(), s.clone(), i.clone(), p.clone());
                let tls = tls.clone();
                tokio::spawn(async move {
                    let n = inflight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    match tls {
                        None => serve_one(stream, &*handler, &seen).await,
                        // A handshake the client aborts (an untrusted certificate) ends here.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                serve_one(stream, &*handler, &seen).await;
                            }
                        }
                    }
                    inflight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Origin {
            addr,
            seen,
            inflight,
            peak,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 || buf.len() > 64 << 10 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    Some(buf)
}

async fn serve_one(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    handler: &Handler,
    seen: &Mutex<Vec<Seen>>,
) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let req = Seen {
        method,
        target,
        headers,
    };
    seen.lock().unwrap().push(req.clone());
    let mut reply = handler(&req);
    let reply = loop {
        reply = match reply {
            Reply::Delayed(d, inner) => {
                tokio::time::sleep(d).await;
                *inner
            }
            Reply::Gated(mut gate, inner) => {
                let _ = gate.wait_for(|open| *open).await;
                *inner
            }
            other => break other,
        };
    };
    let _ = write_reply(&mut stream, reply).await;
}

async fn write_reply(stream: &mut (impl AsyncWrite + Unpin), reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body).await?;
        }
        Reply::Drip { body, every } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            for b in body {
                stream.write_all(&[b]).await?;
                stream.flush().await?;
                tokio::time::sleep(every).await;
            }
        }
        Reply::Endless => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let chunk = vec![0xFFu8; 64 << 10];
            loop {
                stream
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                stream.write_all(&chunk).await?;
                stream.write_all(b"\r\n").await?;
            }
        }
        Reply::Declares { length } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {length}\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Reply::Delayed(..) | Reply::Gated(..) => unreachable!("unwrapped by serve_one"),
    }
    stream.shutdown().await
}

/// A listener that only counts connections: nothing may ever reach it.
pub struct Canary {
    pub port: u16,
    count: Arc<AtomicUsize>,
    pub has_v6: bool,
}

impl Canary {
    /// Listens on 127.0.0.1 and, when the host has IPv6, on [::1] with the same port.
    pub async fn start() -> Canary {
        let count = Arc::new(AtomicUsize::new(0));
        let v4 = TcpListener::bind((LOCALHOST, 0))
            .await
            .expect("bind canary");
        let port = v4.local_addr().unwrap().port();
        let v6 = TcpListener::bind(("::1", port)).await.ok();
        let has_v6 = v6.is_some();
        for l in std::iter::once(v4).chain(v6) {
            let count = count.clone();
            tokio::spawn(async move {
                while let Ok((_s, _)) = l.accept().await {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        Canary {
            port,
            count,
            has_v6,
        }
    }

    pub fn hits(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// The `cdn.purge_token` of tests whose imgrelay purges a CDN, and the one their Varnish is
/// started with (`IMGRELAY_CDN__PURGE_TOKEN`).
pub const PURGE_TOKEN: &str = "test-purge-token-0123456789abcdef";

/// A config for tests: loopback origins reachable, any port, caches off.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.security.allow_networks = vec!["127.0.0.0/8".parse().unwrap()];
    c.security.allowed_ports = Vec::new();
    c.cache.memory_bytes = imgrelay::config::Bytes(0);
    c.cache.disk_bytes = imgrelay::config::Bytes(0);
    c
}

/// imgrelay served in-process on 127.0.0.1:0; stopped on drop.
pub struct Relay {
    pub addr: SocketAddr,
    /// The admin listener, when the test set `server.admin_listen` (to `127.0.0.1:0`).
    pub admin: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Relay {
    pub async fn start(configure: impl FnOnce(&mut Config)) -> Relay {
        Relay::start_with(Arc::new(StaticResolver::default()), configure).await
    }

    pub async fn start_with(
        resolver: Arc<dyn Resolve>,
        configure: impl FnOnce(&mut Config),
    ) -> Relay {
        Relay::try_start_with(resolver, configure)
            .await
            .expect("state")
    }

    /// Like `start_with`, but returns the start-up error (a locked cache directory, say).
    pub async fn try_start_with(
        resolver: Arc<dyn Resolve>,
        configure: impl FnOnce(&mut Config),
    ) -> std::io::Result<Relay> {
        let mut config = test_config();
        configure(&mut config);
        config.validate().expect("test config is valid");
        let state = AppState::with_resolver(config, resolver)?;
        let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin = match state.config.server.admin_listen.as_str() {
            "" => None,
            a => Some(TcpListener::bind(a).await.unwrap()),
        };
        let admin_addr = admin.as_ref().map(|a| a.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(imgrelay::server::serve(
            listener,
            admin,
            state,
            async move {
                let _ = rx.await;
            },
        ));
        Ok(Relay {
            addr,
            admin: admin_addr,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// Shuts down and waits until the server (and its state, with the cache lock) is gone.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub async fn get(&self, target: &str) -> Answer {
        request(self.addr, "GET", target, &[]).await
    }

    /// `GET /?{url}`: the pass-through form.
    pub async fn pass(&self, url: &str) -> Answer {
        self.get(&format!("/?{url}")).await
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A response as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Everything but `Date`, which changes by the second, and `X-Request-Id`, which is new
    /// for every answer: what "byte for byte the same answer" compares.
    pub fn without_date(&self) -> Answer {
        let mut a = self.clone();
        a.headers.retain(|(k, _)| {
            !k.eq_ignore_ascii_case("date") && !k.eq_ignore_ascii_case("x-request-id")
        });
        a
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Answer {
    request_with_body(addr, method, target, headers, None).await
}

/// [`request`] with a body (sent with its `Content-Length`).
pub async fn request_with_body(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Answer {
    request_within(addr, method, target, headers, body, Duration::from_secs(60)).await
}

/// [`request_with_body`], waiting up to `limit` for the answer (slow transforms of a debug
/// build).
pub async fn request_within(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    limit: Duration,
) -> Answer {
    let mut s = TcpStream::connect(addr).await.expect("connect to relay");
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = body {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    if let Some(body) = body {
        // The server may answer (413) and close before reading all of it.
        let _ = s.write_all(body).await;
    }
    let mut raw = Vec::new();
    tokio::time::timeout(limit, s.read_to_end(&mut raw))
        .await
        .expect("relay answered in time")
        .expect("read answer");
    parse_answer(&raw)
}

pub fn parse_answer(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 4 + size..];
    }
}

/// A real JPEG of `w`×`h` with a gradient, so decoders have something to chew on.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([x as u8, y as u8, 200, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Decodes what came back, as a user's browser would, and returns its size.
pub fn decoded_size(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("answer decodes as an image");
    (img.width(), img.height())
}

/// Width and height of an AVIF from its `ispe` property, without decoding it.
pub fn avif_size(b: &[u8]) -> (u32, u32) {
    let i = b.windows(4).position(|w| w == b"ispe").expect("ispe box");
    let be = |o: usize| u32::from_be_bytes(b[o..o + 4].try_into().unwrap());
    (be(i + 8), be(i + 12))
}
