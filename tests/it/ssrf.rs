//! The SSRF battery (SPEC §4, §2.6). Every connection a test could cause goes to loopback only:
//! a canary on 127.0.0.1 (and [::1]) that must never be reached, and the one allowed origin on
//! 127.0.0.3, exempted through `allow_networks = ["127.0.0.3/32"]`. Non-loopback ranges are
//! covered by the pure classifier tests in `src/fetch/policy.rs`.

use crate::support::*;
use imgrelay::fetch::connector::StaticResolver;
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
    time::Duration,
};

const ORIGIN_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

struct Battery {
    canary: Canary,
    origin: Origin,
    relay: Relay,
    /// The answer for a host that does not resolve: every denial must equal it.
    unresolvable: Answer,
}

fn resolver() -> StaticResolver {
    StaticResolver::default()
        .with("origin.test", &[ORIGIN_IP])
        .with("loopback.test", &[IpAddr::V4(Ipv4Addr::LOCALHOST)])
        .with("v6-loopback.test", &[IpAddr::V6(Ipv6Addr::LOCALHOST)])
        .with("mixed.test", &[ORIGIN_IP, IpAddr::V4(Ipv4Addr::LOCALHOST)])
}

async fn battery(configure: impl FnOnce(&mut imgrelay::config::Config)) -> Battery {
    let canary = Canary::start().await;
    let image = jpeg(16, 16);
    let port = canary.port;
    let origin = Origin::start_on(ORIGIN_IP, move |req| {
        // /to?<location>: redirect there; /chain/N: N more hops; /loop: to itself.
        if let Some(location) = req.target.strip_prefix("/to?") {
            return Reply::redirect(location);
        }
        if let Some(n) = req.target.strip_prefix("/chain/") {
            let n: u32 = n.parse().unwrap();
            return if n == 0 {
                Reply::ok("image/jpeg", &image)
            } else {
                Reply::redirect(&format!("/chain/{}", n - 1))
            };
        }
        match req.target.as_str() {
            "/loop" => Reply::redirect("/loop"),
            "/pingpong-a" => Reply::redirect("/pingpong-b"),
            "/pingpong-b" => Reply::redirect("/pingpong-a"),
            "/no-location" => Reply::status(302),
            "/image.jpg" => Reply::ok("image/jpeg", &image),
            _ => Reply::status(404),
        }
    })
    .await;
    let _ = port;
    let relay = Relay::start_with(Arc::new(resolver()), |c| {
        c.security.allow_networks = vec!["127.0.0.3/32".parse().unwrap()];
        c.security.allowed_ports = Vec::new();
        configure(c);
    })
    .await;
    let unresolvable = relay
        .pass(&format!("http://nowhere.test:{}/a.jpg", canary.port))
        .await
        .without_date();
    assert_eq!(unresolvable.status, 502);
    assert_eq!(
        unresolvable.header("x-imgrelay-error"),
        Some("upstream_unreachable")
    );
    Battery {
        canary,
        origin,
        relay,
        unresolvable,
    }
}

/// Every way of spelling "this machine" that could reach the canary.
fn loopback_spellings(port: u16, with_v6: bool) -> Vec<String> {
    let mut hosts = vec![
        "127.0.0.1",
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "017700000001",
        "0177.0.0.1",
        "127.1",
        "127.0.1",
        "localhost",
        "localhost.",
        "LocalHost",
        "img.localhost",
        "loopback.test",
        "loopback.test.",
        "mixed.test",
        "0.0.0.0",
        "0",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
    ];
    if with_v6 {
        hosts.extend(["[::1]", "[0:0:0:0:0:0:0:1]", "[::]", "v6-loopback.test"]);
    }
    hosts
        .into_iter()
        .map(|h| format!("http://{h}:{port}/a.jpg"))
        .collect()
}

#[tokio::test]
async fn every_loopback_spelling_is_denied_like_an_unresolvable_host() {
    let b = battery(|_| {}).await;
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    for url in loopback_spellings(b.canary.port, b.canary.has_v6) {
        let raw = b.relay.pass(&url).await.without_date();
        assert_eq!(raw, b.unresolvable, "pass-through {url}");
        let param = b
            .relay
            .get(&format!("/?url={}", encode(&url)))
            .await
            .without_date();
        assert_eq!(param, b.unresolvable, "url= {url}");
    }
    assert_eq!(b.canary.hits(), 0, "something reached the canary");
}

#[tokio::test]
async fn redirects_to_denied_destinations_are_denied_like_an_unresolvable_host() {
    let b = battery(|_| {}).await;
    let mut targets = loopback_spellings(b.canary.port, b.canary.has_v6);
    targets.extend([
        "file:///etc/passwd".to_string(),
        "gopher://127.0.0.1:70/".to_string(),
        "ftp://origin.test/a.jpg".to_string(),
        format!("http://evil@127.0.0.1:{}/", b.canary.port),
        "data:image/png;base64,iVBORw0KGgo=".to_string(),
    ]);
    for target in targets {
        let via = b.origin.url(&format!("/to?{target}"));
        // The origin is named by IP here, so the hop is judged on its own merits.
        let a = b.relay.pass(&via).await.without_date();
        assert_eq!(a, b.unresolvable, "redirect to {target}");
    }
    assert_eq!(b.canary.hits(), 0);
}

#[tokio::test]
async fn a_redirect_to_a_disallowed_port_is_denied_like_an_unresolvable_host() {
    // A second listener on the allowed origin's own address, on a port not in allowed_ports.
    let hidden = Origin::start_on(ORIGIN_IP, |_| Reply::ok("image/jpeg", &jpeg(4, 4))).await;
    let canary = Canary::start().await;
    let origin = Origin::start_on(ORIGIN_IP, move |req| {
        let location = req.target.trim_start_matches("/to?").to_string();
        Reply::redirect(&location)
    })
    .await;
    let allowed_port = origin.addr.port();
    let relay = Relay::start_with(Arc::new(resolver()), move |c| {
        c.security.allow_networks = vec!["127.0.0.3/32".parse().unwrap()];
        c.security.allowed_ports = vec![allowed_port];
    })
    .await;
    let unresolvable = relay
        .pass(&format!("http://nowhere.test:{allowed_port}/a.jpg"))
        .await
        .without_date();
    let a = relay
        .pass(&origin.url(&format!("/to?{}", hidden.url("/a.jpg"))))
        .await
        .without_date();
    assert_eq!(a, unresolvable);
    // And directly:
    let a = relay.pass(&hidden.url("/a.jpg")).await.without_date();
    assert_eq!(a, unresolvable);
    assert!(hidden.seen().is_empty(), "the hidden port was reached");
    assert_eq!(canary.hits(), 0);
}

#[tokio::test]
async fn allowed_origin_and_redirect_chains_up_to_the_limit_work() {
    let b = battery(|c| c.upstream.max_redirects = 5).await;
    let port = b.origin.addr.port();
    let a = b
        .relay
        .pass(&format!("http://origin.test:{port}/image.jpg"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(decoded_size(&a.body), (16, 16));

    let a = b
        .relay
        .pass(&format!("http://origin.test:{port}/chain/5"))
        .await;
    assert_eq!(a.status, 200, "five hops are allowed: {}", a.text());
    let a = b
        .relay
        .pass(&format!("http://origin.test:{port}/chain/6"))
        .await;
    assert_eq!(a.status, 502, "six hops are one too many");
    assert_eq!(a.header("x-imgrelay-error"), Some("upstream_redirect"));

    for path in ["/loop", "/pingpong-a", "/no-location"] {
        let a = b
            .relay
            .pass(&format!("http://origin.test:{port}{path}"))
            .await;
        assert_eq!(a.status, 502, "{path}");
        assert_eq!(
            a.header("x-imgrelay-error"),
            Some("upstream_redirect"),
            "{path}"
        );
    }
    assert_eq!(b.canary.hits(), 0);
}

#[tokio::test]
async fn other_schemes_and_userinfo_tricks_are_bad_requests() {
    let b = battery(|_| {}).await;
    let p = b.canary.port;
    for url in [
        format!("http://origin.test@127.0.0.1:{p}/"),
        format!("http://127.0.0.1%2F@origin.test:{p}/"),
        format!("https://user:pass@127.0.0.1:{p}/a.jpg"),
    ] {
        let a = b.relay.pass(&url).await;
        assert_eq!(a.status, 400, "{url}");
        assert_eq!(a.header("x-imgrelay-error"), Some("bad_source"), "{url}");
    }
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    for url in [
        "file:///etc/passwd".to_string(),
        format!("gopher://127.0.0.1:{p}/_GET"),
        format!("ftp://127.0.0.1:{p}/a.jpg"),
        "data:image/png;base64,iVBORw0KGgo=".to_string(),
        format!("http://origin.test@127.0.0.1:{p}/"),
    ] {
        let a = b.relay.get(&format!("/?url={}", encode(&url))).await;
        assert_eq!(a.status, 400, "{url}");
    }
    assert_eq!(b.canary.hits(), 0);
}

#[tokio::test]
async fn an_origin_rule_sets_the_referer_for_its_host_only() {
    let image = jpeg(8, 8);
    let origin = Origin::start_on(ORIGIN_IP, move |req| match req.header("referer") {
        Some("https://origin.test/") => Reply::ok("image/jpeg", &image),
        _ => Reply::status(403),
    })
    .await;
    let relay = Relay::start_with(Arc::new(resolver()), |c| {
        c.security.allow_networks = vec!["127.0.0.3/32".parse().unwrap()];
        c.upstream.rules = vec![imgrelay::config::UpstreamRule {
            host: "origin.test".parse().unwrap(),
            referer: Some("https://origin.test/".into()),
            headers: [("X-Origin-Key".to_string(), "k1".to_string())].into(),
        }];
    })
    .await;
    let port = origin.addr.port();
    let a = relay
        .pass(&format!("http://origin.test:{port}/a.jpg"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    // The same server under another name gets no Referer.
    let a = relay.pass(&format!("http://127.0.0.3:{port}/a.jpg")).await;
    assert_eq!(a.status, 502);
    let seen = origin.seen();
    assert_eq!(seen[0].header("x-origin-key"), Some("k1"));
    assert_eq!(seen[1].header("referer"), None);
    assert_eq!(seen[1].header("x-origin-key"), None);
}

#[tokio::test]
async fn per_host_concurrency_holds_under_50_parallel_requests() {
    let image = jpeg(8, 8);
    let origin = Origin::start(move |_| {
        Reply::Delayed(
            Duration::from_millis(50),
            Box::new(Reply::ok("image/jpeg", &image)),
        )
    })
    .await;
    let relay = Arc::new(Relay::start(|c| c.upstream.per_host_concurrency = 3).await);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (relay, url) = (relay.clone(), origin.url(&format!("/{i}.jpg")));
            tokio::spawn(async move { relay.pass(&url).await.status })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(origin.seen().len(), 50);
    let peak = origin.peak_concurrency();
    assert!(
        (1..=3).contains(&peak),
        "peak concurrency at the origin was {peak}"
    );
}

#[tokio::test]
async fn host_lists_referers_and_signing_gate_sources() {
    let image = jpeg(8, 8);
    let origin = Origin::start_on(ORIGIN_IP, move |_| Reply::ok("image/jpeg", &image)).await;
    let port = origin.addr.port();
    let relay = Relay::start_with(Arc::new(resolver()), |c| {
        c.security.allow_networks = vec!["127.0.0.3/32".parse().unwrap()];
        c.security.allowed_hosts = vec!["*.test".parse().unwrap()];
        c.security.denied_hosts = vec!["mixed.test".parse().unwrap()];
        c.security.allowed_referers = vec![
            "blog.example".parse().unwrap(),
            "*.blog.example".parse().unwrap(),
        ];
    })
    .await;
    let ok = format!("/?http://ORIGIN.test.:{port}/a.jpg");
    assert_eq!(relay.get(&ok).await.status, 200);
    let a = relay.pass(&format!("http://127.0.0.3:{port}/a.jpg")).await;
    assert_eq!(
        (a.status, a.header("x-imgrelay-error")),
        (403, Some("host_not_allowed"))
    );
    let a = relay.pass(&format!("http://mixed.test:{port}/a.jpg")).await;
    assert_eq!(a.status, 403);

    for (referer, status) in [
        ("https://blog.example/post", 200),
        ("https://www.blog.example/post", 200),
        ("https://evil.example/", 403),
        ("not a url", 403),
    ] {
        let a = request(relay.addr, "GET", &ok, &[("Referer", referer)]).await;
        assert_eq!(a.status, status, "{referer}");
        if status == 200 {
            // The verdict depends on Referer, so a cache in front must key on it.
            assert_eq!(a.header("vary"), Some("Referer"), "{referer}");
        }
    }

    // With signing keys, the unsigned pass-through serves allowed_hosts only.
    let relay = Relay::start_with(Arc::new(resolver()), |c| {
        c.security.allow_networks = vec!["127.0.0.3/32".parse().unwrap()];
        c.security.signing_keys = vec![imgrelay::config::Secret("k".repeat(32))];
        c.security.allowed_hosts = vec!["origin.test".parse().unwrap()];
    })
    .await;
    let a = relay
        .pass(&format!("http://origin.test:{port}/a.jpg"))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("vary"), None, "no referer rule, no Vary");
    let a = relay.pass(&format!("http://127.0.0.3:{port}/a.jpg")).await;
    assert_eq!(a.status, 403);
}
