//! HTTPS origins (SPEC §4): a CA and certificates made at test time, an origin speaking TLS on
//! 127.0.0.1, and `upstream.resolve` pinning the certificate's name to it. Trust comes from
//! `upstream.ca_file`; an untrusted certificate or a wrong name is a 502 whose TLS cause is in
//! the log; an https → http redirect is followed and re-checked; a pin is judged like any
//! address. Every connection stays on loopback.

use crate::{ca::Ca, spawn::Spawned, support::*};
use imgrelay::config::Config;
use std::net::{IpAddr, Ipv4Addr};
use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};
use tokio_rustls::rustls;

/// Where the test origins listen: exempted by `allow_networks` where a test needs 127.0.0.1
/// (a canary) to stay denied.
const ORIGIN_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// An HTTPS origin for `name`: `/a.png` is an image, `/to?{url}` redirects there.
async fn https_origin(tls: Arc<rustls::ServerConfig>, image: Vec<u8>) -> Origin {
    Origin::start_tls(ORIGIN_IP, tls, move |req| {
        match req.target.strip_prefix("/to?") {
            Some(location) => Reply::redirect(location),
            None if req.target == "/a.png" => Reply::ok("image/png", &image),
            None => Reply::status(404),
        }
    })
    .await
}

fn pins(entries: &[(&str, SocketAddr)]) -> BTreeMap<String, SocketAddr> {
    entries.iter().map(|(k, a)| (k.to_string(), *a)).collect()
}

fn trusting(
    ca_file: std::path::PathBuf,
    pinned: BTreeMap<String, SocketAddr>,
) -> impl FnOnce(&mut Config) {
    move |c| {
        c.upstream.ca_file = ca_file;
        c.upstream.resolve = pinned;
    }
}

#[tokio::test]
async fn https_origin_behind_the_configured_ca_is_fetched_and_transformed() {
    let ca = Ca::new("imgrelay test CA");
    let dir = tempfile::tempdir().unwrap();
    let image = png(40, 20);
    let origin = https_origin(ca.server(&["img.test"]), image.clone()).await;
    let relay = Relay::start(trusting(
        ca.pem_file(dir.path()),
        pins(&[("img.test:443", origin.addr)]),
    ))
    .await;
    let a = relay.pass("https://img.test/a.png").await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.body, image);
    let a = relay
        .get("/?url=https://img.test/a.png&w=20&output=webp")
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(decoded_size(&a.body), (20, 10));
    assert_eq!(
        origin.seen().len(),
        2,
        "both fetched over TLS from the pinned origin"
    );
}

#[tokio::test]
async fn without_the_ca_the_same_origin_is_not_trusted() {
    // Only the webpki roots: a private CA's certificate is refused.
    let ca = Ca::new("imgrelay test CA");
    let origin = https_origin(ca.server(&["img.test"]), png(4, 4)).await;
    let relay = Relay::start(|c| c.upstream.resolve = pins(&[("img.test:443", origin.addr)])).await;
    let a = relay.pass("https://img.test/a.png").await;
    assert_eq!(a.status, 502, "{}", a.text());
    assert_eq!(a.header("x-imgrelay-error"), Some("upstream_unreachable"));
    assert!(
        origin.seen().is_empty(),
        "no request crosses a refused handshake"
    );
}

/// The configuration of a spawned imgrelay trusting `ca_file` and pinning `img.test:443`.
fn spawned_config(ca_file: &std::path::Path, origin: SocketAddr) -> String {
    format!(
        "[security]\nallow_networks = [\"127.0.0.0/8\"]\nallowed_ports = []\n\
         [upstream]\nca_file = {:?}\nresolve = {{ \"img.test:443\" = \"{origin}\" }}\n",
        ca_file.to_str().unwrap()
    )
}

#[tokio::test]
async fn untrusted_certificate_and_wrong_name_are_502_with_the_tls_cause_logged() {
    let trusted = Ca::new("imgrelay test CA");
    // Another name: a CA of the same name would be found and fail on its signature instead.
    let stranger = Ca::new("a stranger's CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = trusted.pem_file(dir.path());
    for (server, cause) in [
        // Issued by a CA imgrelay does not trust.
        (stranger.server(&["img.test"]), "UnknownIssuer"),
        // Trusted issuer, but the certificate names another host.
        (trusted.server(&["other.test"]), "not valid for name"),
    ] {
        let origin = https_origin(server, png(4, 4)).await;
        let relay = Spawned::start(&spawned_config(&ca_file, origin.addr)).await;
        // (127.0.0.0/8 is exempted for the spawned process, which covers 127.0.0.3.)
        let a = request(relay.addr, "GET", "/?https://img.test/a.png", &[]).await;
        assert_eq!(a.status, 502, "{cause}: {}", a.text());
        assert_eq!(a.header("x-imgrelay-error"), Some("upstream_unreachable"));
        assert_eq!(
            a.text(),
            "upstream unreachable\n",
            "no TLS detail reaches the client"
        );
        let line = relay
            .log_line(&["\"status\":502", "invalid peer certificate"])
            .await
            .unwrap_or_else(|| panic!("{cause}: a 502 log line with the TLS cause"));
        assert!(line.contains(cause), "{cause}: {line}");
    }
}

#[tokio::test]
async fn https_to_http_redirect_is_followed_and_rechecked() {
    // Origins on 127.0.0.3 (exempted); the canary's 127.0.0.1 stays a denied destination.
    let ca = Ca::new("imgrelay test CA");
    let dir = tempfile::tempdir().unwrap();
    let image = png(8, 8);
    let img = image.clone();
    let plain = Origin::start_on(ORIGIN_IP, move |_| Reply::ok("image/png", &img)).await;
    let canary = Canary::start().await;
    let tls = https_origin(ca.server(&["img.test"]), Vec::new()).await;
    let relay = Relay::start(|c| {
        trusting(
            ca.pem_file(dir.path()),
            pins(&[
                ("img.test:443", tls.addr),
                ("plain.test:80", plain.addr),
                (
                    "denied.test:80",
                    SocketAddr::from(([127, 0, 0, 1], canary.port)),
                ),
            ]),
        )(c);
        c.security.allow_networks = vec!["127.0.0.3/32".parse().unwrap()];
    })
    .await;
    let a = relay
        .pass("https://img.test/to?http://plain.test/b.png")
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.body, image);
    assert_eq!(plain.seen().len(), 1);

    let unresolvable = relay.pass("http://unknown.test/b.png").await.without_date();
    assert_eq!(unresolvable.status, 502);
    let a = relay
        .pass("https://img.test/to?http://denied.test/b.png")
        .await;
    assert_eq!(
        a.without_date(),
        unresolvable,
        "the http hop is judged like a source"
    );
    assert_eq!(canary.hits(), 0, "the denied hop was never dialled");
}

#[tokio::test]
async fn a_pinned_address_in_a_denied_range_is_still_denied() {
    // The canary listens on 127.0.0.1; only 127.0.0.3 is exempted.
    let canary = Canary::start().await;
    let at_canary = SocketAddr::from(([127, 0, 0, 1], canary.port));
    let relay = Relay::start(|c| {
        c.security.allow_networks = vec!["127.0.0.3/32".parse().unwrap()];
        c.upstream.resolve = pins(&[
            ("pinned.test:443", at_canary),
            ("pinned.test:80", at_canary),
        ]);
    })
    .await;
    let unresolvable = relay.pass("http://unknown.test/a.png").await.without_date();
    assert_eq!(unresolvable.status, 502);
    for url in ["https://pinned.test/a.png", "http://pinned.test/a.png"] {
        let a = relay.pass(url).await.without_date();
        assert_eq!(
            a, unresolvable,
            "{url}: a denial looks like an unresolvable host"
        );
    }
    assert_eq!(canary.hits(), 0, "the pinned address was never dialled");
}
