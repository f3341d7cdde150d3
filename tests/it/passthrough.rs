//! The CORS-worker-compatible pass-through: `/?{url}` and `/?url=` serve the source's bytes
//! unchanged with imgrelay's own headers.

use crate::support::*;

const SEED_PATH: &str = "/qupost/img/2021/10/14/6a3f1d3b8c2e4f5a9b7c0d1e2f3a4b5c.jpeg";

/// Like static.1sapp.com: any foreign `Referer` gets a 403.
async fn hotlink_protected_origin(image: Vec<u8>) -> Origin {
    Origin::start(move |req| {
        if req.header("referer").is_some() {
            return Reply::status(403);
        }
        match req.target.as_str() {
            SEED_PATH => Reply::ok("image/jpeg", &image),
            _ => Reply::status(404),
        }
    })
    .await
}

#[tokio::test]
async fn seed_shaped_request_gets_the_image_and_leaks_nothing_upstream() {
    let image = jpeg(320, 240);
    let origin = hotlink_protected_origin(image.clone()).await;
    let relay = Relay::start(|_| {}).await;

    let a = request(
        relay.addr,
        "GET",
        &format!("/?{}", origin.url(SEED_PATH)),
        &[
            ("Referer", "https://blog.example/post/1"),
            ("Cookie", "session=secret"),
            ("Authorization", "Bearer hunter2"),
            ("X-Forwarded-For", "203.0.113.9"),
            ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"),
        ],
    )
    .await;

    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.body, image, "the bytes are the source's, unchanged");
    assert_eq!(decoded_size(&a.body), (320, 240));
    assert_eq!(a.header("content-type"), Some("image/jpeg"));
    assert_eq!(
        a.header("content-length"),
        Some(image.len().to_string().as_str())
    );
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        a.header("cross-origin-resource-policy"),
        Some("cross-origin")
    );
    assert_eq!(a.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        a.header("content-security-policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'; sandbox")
    );
    assert_eq!(a.header("x-cache"), Some("MISS"));
    assert!(a
        .header("server-timing")
        .is_some_and(|v| v.starts_with("fetch;dur=")));
    let etag = a.header("etag").unwrap();
    assert!(
        etag.starts_with('"') && etag.len() == 34,
        "strong ETag: {etag}"
    );

    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    let up = &seen[0];
    assert_eq!(up.method, "GET");
    for leaked in [
        "referer",
        "cookie",
        "authorization",
        "x-forwarded-for",
        "x-forwarded-host",
    ] {
        assert_eq!(up.header(leaked), None, "{leaked} reached the origin");
    }
    assert!(up
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("imgrelay/")));
    assert_eq!(up.header("accept"), Some("image/*"));
}

#[tokio::test]
async fn raw_form_keeps_the_source_query_and_url_form_gives_the_same_answer() {
    let image = jpeg(64, 48);
    let img = image.clone();
    let origin = Origin::start(move |req| {
        if req.target == "/p.jpg?a=1&b=2" {
            Reply::ok("image/jpeg", &img)
        } else {
            Reply::status(404)
        }
    })
    .await;
    let relay = Relay::start(|_| {}).await;

    let raw = relay.pass(&origin.url("/p.jpg?a=1&b=2")).await;
    assert_eq!(raw.status, 200, "{}", raw.text());
    assert_eq!(origin.seen()[0].target, "/p.jpg?a=1&b=2");

    let encoded: String =
        form_urlencoded::byte_serialize(origin.url("/p.jpg?a=1&b=2").as_bytes()).collect();
    let param = relay.get(&format!("/?url={encoded}")).await;
    assert_eq!(param.status, 200, "{}", param.text());
    assert_eq!(param.body, raw.body);
    assert_eq!(param.body, image);
    assert_eq!(param.header("etag"), raw.header("etag"));

    // wsrv's shorthand without a scheme means http://
    let short = relay
        .get(&format!("/?url={}/p.jpg%3Fa%3D1%26b%3D2", origin.addr))
        .await;
    assert_eq!(short.status, 200, "{}", short.text());
    assert_eq!(short.header("etag"), raw.header("etag"));
}

#[tokio::test]
async fn sniffed_type_wins_over_the_upstream_label() {
    let image = jpeg(16, 16);
    let png_bytes = png(8, 8);
    let (img, pngb) = (image.clone(), png_bytes.clone());
    let origin = Origin::start(move |req| match req.target.as_str() {
        "/octet" => Reply::ok("application/octet-stream", &img),
        "/mislabelled.jpg" => Reply::ok("image/jpeg", &pngb),
        "/html" => Reply::ok(
            "image/png",
            b"<!DOCTYPE html><html><body>Forbidden</body></html>",
        ),
        "/json" => Reply::ok("image/png", br#"{"error":"no such image"}"#),
        "/svg" => Reply::ok(
            "image/svg+xml",
            br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#,
        ),
        _ => Reply::status(404),
    })
    .await;
    let relay = Relay::start(|_| {}).await;

    let a = relay.pass(&origin.url("/octet")).await;
    assert_eq!(
        (a.status, a.header("content-type")),
        (200, Some("image/jpeg"))
    );
    assert_eq!(a.body, image);
    let a = relay.pass(&origin.url("/mislabelled.jpg")).await;
    assert_eq!(
        (a.status, a.header("content-type")),
        (200, Some("image/png"))
    );
    assert_eq!(decoded_size(&a.body), (8, 8));

    for path in ["/html", "/json", "/svg"] {
        let a = relay.pass(&origin.url(path)).await;
        assert_eq!(a.status, 415, "{path}");
        assert_eq!(a.header("x-imgrelay-error"), Some("not_an_image"), "{path}");
        assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(
            a.header("cache-control"),
            Some("public, max-age=60"),
            "{path}: negative TTL"
        );
        assert!(
            !a.text().contains("Forbidden") && !a.text().contains("script"),
            "no upstream body"
        );
    }
}

#[tokio::test]
async fn upstream_headers_never_reach_the_client() {
    let image = jpeg(8, 8);
    let origin = Origin::start(move |_| {
        Reply::ok("image/jpeg", &image)
            .with_header("Set-Cookie", "tracker=1")
            .with_header("Server", "secret-origin/1.2")
            .with_header("Link", "<https://evil/>; rel=preload")
            .with_header("X-Powered-By", "PHP/5.2")
            .with_header("Access-Control-Allow-Credentials", "true")
    })
    .await;
    let relay = Relay::start(|_| {}).await;
    let a = relay.pass(&origin.url("/a.jpg")).await;
    assert_eq!(a.status, 200);
    for h in [
        "set-cookie",
        "link",
        "x-powered-by",
        "access-control-allow-credentials",
    ] {
        assert_eq!(a.header(h), None, "{h} leaked");
    }
    assert!(a
        .header("server")
        .is_none_or(|s| !s.contains("secret-origin")));
}

#[tokio::test]
async fn upstream_status_maps_to_our_status() {
    let origin = Origin::start(|req| match req.target.as_str() {
        "/gone" => Reply::status(410),
        "/missing" => Reply::status(404),
        "/boom" => Reply::status(500),
        "/teapot" => Reply::status(418),
        "/forbidden" => Reply::status(403),
        _ => Reply::status(404),
    })
    .await;
    let relay = Relay::start(|_| {}).await;
    for (path, status, code, cache) in [
        ("/missing", 404, "upstream_not_found", "public, max-age=60"),
        ("/gone", 404, "upstream_not_found", "public, max-age=60"),
        ("/boom", 502, "upstream_error", "no-store"),
        ("/teapot", 502, "upstream_error", "no-store"),
        ("/forbidden", 502, "upstream_error", "no-store"),
    ] {
        let a = relay.pass(&origin.url(path)).await;
        assert_eq!(a.status, status, "{path}");
        assert_eq!(a.header("x-imgrelay-error"), Some(code), "{path}");
        assert_eq!(a.header("cache-control"), Some(cache), "{path}");
        assert!(
            !a.text().contains("status "),
            "{path}: upstream body leaked"
        );
        assert_eq!(a.text().lines().count(), 1, "one-line reason");
    }
}

#[tokio::test]
async fn cache_control_follows_the_originals_freshness_within_bounds() {
    let image = jpeg(8, 8);
    let origin = Origin::start(move |req| {
        let r = Reply::ok("image/jpeg", &image);
        match req.target.as_str() {
            "/2h" => r.with_header("Cache-Control", "public, max-age=7200"),
            "/forever" => r.with_header("Cache-Control", "max-age=315360000"),
            "/nostore" => r.with_header("Cache-Control", "no-store"),
            _ => r,
        }
    })
    .await;
    let relay = Relay::start(|_| {}).await;
    for (path, max_age) in [
        ("/2h", 7200),
        ("/forever", 2_592_000),
        ("/nostore", 3600),
        ("/none", 3600),
    ] {
        let a = relay.pass(&origin.url(path)).await;
        assert_eq!(
            a.header("cache-control").unwrap(),
            format!(
                "public, max-age={max_age}, stale-while-revalidate=86400, stale-if-error=604800"
            ),
            "{path}"
        );
    }
}

#[tokio::test]
async fn default_redirects_only_to_an_acceptable_source() {
    let origin = Origin::start(|_| Reply::status(404)).await;
    let relay =
        Relay::start(|c| c.security.allowed_hosts = vec!["127.0.0.1".parse().unwrap()]).await;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let fallback = origin.url("/fallback.png");
    let a = relay
        .get(&format!(
            "/?url={}&default={}",
            enc(&origin.url("/x.jpg")),
            enc(&fallback)
        ))
        .await;
    assert_eq!(a.status, 302);
    assert_eq!(a.header("location"), Some(fallback.as_str()));

    // a fallback outside allowed_hosts is refused, so imgrelay is no open redirect
    let a = relay
        .get(&format!(
            "/?url={}&default={}",
            enc(&origin.url("/x.jpg")),
            enc("https://evil.example/")
        ))
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.header("location"), None);
}
