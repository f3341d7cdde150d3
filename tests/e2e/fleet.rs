//! A fleet behind the shipped `deploy/varnish/fleet.vcl`: two imgrelay processes sharing one
//! bucket (`s3s-fs`) behind a real `varnishd` whose shard director is keyed on the source.
//! Every variant of a source is rendered by one replica (its access lines say which) from one
//! origin fetch; a stopped replica's share moves to the other, which answers from the bucket;
//! a purge sent to one replica leaves no copy on the other, in the bucket or in Varnish.
//!
//! Both shipped VCLs also compile exactly as shipped (`varnishd -C`). The fleet test writes
//! the replica list itself: it replaces the text between fleet.vcl's
//! `# BEGIN replicas` and `# END replicas` lines with one backend per replica on its loopback
//! port, and shortens the probe interval so a stopped replica is noticed quickly.

use crate::{
    bucket::S3Server,
    spawn::Spawned,
    stack::{free_port, vcl_dir, Varnish, VARNISH_PACKAGES as PACKAGES, VCL},
    support::*,
    varnish::varnish_hit,
};
use std::{net::SocketAddr, time::Duration};

const FLEET_VCL: &str = include_str!("../../deploy/varnish/fleet.vcl");
const TOKEN: &str = "fleet-e2e-token";
const VARIANTS: [&str; 3] = ["w=40", "w=64&output=webp", "w=24&h=24&fit=cover&output=png"];

/// fleet.vcl with its replica list replaced by `replicas` and probes every 200 ms.
fn fleet_vcl(replicas: &[SocketAddr]) -> String {
    let (begin, end) = ("# BEGIN replicas", "# END replicas");
    let start = FLEET_VCL
        .find(begin)
        .expect("fleet.vcl marks its replica list");
    let stop = FLEET_VCL
        .find(end)
        .expect("fleet.vcl ends its replica list");
    let mut list = String::new();
    for (i, r) in replicas.iter().enumerate() {
        list.push_str(&format!(
            "backend replica_{i} {{ .host = \"{}\"; .port = \"{}\"; .probe = imgrelay_ready; }}\n",
            r.ip(),
            r.port()
        ));
    }
    list.push_str("sub fleet_replicas {\n");
    for i in 0..replicas.len() {
        list.push_str(&format!("    fleet.add_backend(replica_{i});\n"));
    }
    list.push_str("}\n");
    let vcl = format!("{}{list}{}", &FLEET_VCL[..start], &FLEET_VCL[stop..]);
    let fast = vcl.replace(".interval = 1s;", ".interval = 200ms;");
    assert_ne!(fast, vcl, "fleet.vcl's probe runs every 1s");
    fast
}

/// One replica as a process (its own memory tier, JSON access lines), sharing `s3`'s bucket.
async fn replica(s3: &S3Server, peers: &[SocketAddr], cdn: SocketAddr) -> Spawned {
    let peers: Vec<String> = peers.iter().map(|p| format!("\"http://{p}\"")).collect();
    Spawned::start(&format!(
        "[server]\nadmin_token = \"{TOKEN}\"\npeers = [{}]\n\
         [security]\nallow_networks = [\"127.0.0.0/8\"]\nallowed_ports = []\n\
         [cdn]\npurge_urls = [\"http://{cdn}/\"]\npurge_token = \"{PURGE_TOKEN}\"\n{}",
        peers.join(", "),
        s3.toml()
    ))
    .await
}

fn encode(source: &str) -> String {
    form_urlencoded::byte_serialize(source.as_bytes()).collect()
}

fn variant(source: &str, params: &str) -> String {
    format!("/?url={}&{params}", encode(source))
}

/// The same variant spelt with its parameters first: another Varnish object, the same shard
/// key (the raw `url` value) and the same imgrelay cache key.
fn respelled(source: &str, params: &str) -> String {
    format!("/?{params}&url={}", encode(source))
}

/// Which replica wrote the access line of request `id` with `X-Cache: cache`; exactly one may.
async fn served_by(replicas: &[&Spawned], id: &str, cache: &str) -> usize {
    let needles = [
        format!("\"request_id\":\"{id}\""),
        format!("\"cache\":\"{cache}\""),
    ];
    let needles = [needles[0].as_str(), needles[1].as_str()];
    for _ in 0..500 {
        let found: Vec<usize> = (0..replicas.len())
            .filter(|&i| !replicas[i].lines_with(&needles).is_empty())
            .collect();
        match found[..] {
            [] => tokio::time::sleep(Duration::from_millis(20)).await,
            [one] => return one,
            _ => panic!("{id} was answered by more than one replica"),
        }
    }
    panic!("no replica logged {id} as {cache} within 10 s");
}

/// What an operator installs compiles as it is, placeholders included (`varnishd -C` only
/// compiles: nothing connects to the placeholder addresses).
#[test]
fn the_shipped_vcls_compile_as_shipped() {
    for (name, vcl) in [("imgrelay.vcl", VCL), ("fleet.vcl", FLEET_VCL)] {
        let (dir, path) = vcl_dir(vcl);
        let out = std::process::Command::new("varnishd")
            .arg("-C")
            .arg("-f")
            .arg(&path)
            .arg("-n")
            .arg(dir.path().join("n"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run varnishd ({e}): {PACKAGES}"));
        assert!(
            out.status.success(),
            "{name} does not compile: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| !l.starts_with("/*") && !l.trim().is_empty())
                .take(12)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_fleet_renders_each_source_once_survives_a_replica_and_purges_everywhere() {
    let s3 = S3Server::start().await;
    let origin = Origin::start(|_| {
        Reply::ok("image/jpeg", &jpeg(160, 120)).with_header("Cache-Control", "max-age=86400")
    })
    .await;
    let varnish_addr = free_port();
    // B forwards purges nowhere; A forwards to B. Either sends the CDN its PURGE.
    let b = replica(&s3, &[], varnish_addr).await;
    let a = replica(&s3, &[b.addr], varnish_addr).await;
    let varnish = Varnish::run(&fleet_vcl(&[a.addr, b.addr]), varnish_addr).await;
    let replicas = [&a, &b];

    // Sources until each replica owns at least two (the ring decides; usually within six).
    let mut owned: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let mut n = 0;
    while n < 6 || owned.iter().any(|o| o.len() < 2) {
        assert!(
            n < 24,
            "the shard director sent every source to one replica"
        );
        let src = origin.url(&format!("/s{n}.jpg"));
        let mut renderers = Vec::new();
        for (j, params) in VARIANTS.iter().enumerate() {
            let id = format!("fleet-s{n}-v{j}");
            let answer = varnish
                .get(&variant(&src, params), &[("X-Request-Id", &id)])
                .await;
            assert_eq!(answer.status, 200, "{id}: {}", answer.text());
            assert!(!varnish_hit(&answer), "{id} is new to Varnish");
            assert_eq!(answer.header("x-request-id"), Some(id.as_str()));
            renderers.push(served_by(&replicas, &id, "MISS").await);
        }
        assert!(
            renderers.iter().all(|&r| r == renderers[0]),
            "{src}: variants rendered on replicas {renderers:?}"
        );
        owned[renderers[0]].push(src);
        n += 1;
    }
    assert_eq!(origin.seen().len(), n, "{n} sources, {n} origin fetches");
    for sources in &owned {
        for src in sources {
            s3.wait_for_objects(src, 1 + VARIANTS.len()).await;
        }
    }

    // A purge sent to A for a source B rendered: gone from B, the bucket and Varnish.
    let purged = owned[1][0].clone();
    let auth = format!("Bearer {TOKEN}");
    let answer = request(
        a.addr,
        "POST",
        &format!("/purge?url={}", encode(&purged)),
        &[("Authorization", &auth), ("Content-Length", "0")],
    )
    .await;
    let body = answer.text();
    assert_eq!(answer.status, 200, "{body}");
    assert!(
        body.contains(&format!("peer http://{}: purged (200)", b.addr)),
        "{body}"
    );
    assert!(
        body.contains(&format!("cdn http://{varnish_addr}/: purged (200)")),
        "{body}"
    );
    assert!(s3.objects(&purged).await.is_empty(), "the bucket forgot it");
    let fetched = origin.seen().len();
    for (j, params) in VARIANTS.iter().enumerate() {
        let id = format!("fleet-purged-v{j}");
        let again = varnish
            .get(&variant(&purged, params), &[("X-Request-Id", &id)])
            .await;
        assert_eq!(again.status, 200);
        assert!(!varnish_hit(&again), "Varnish forgot {params}");
        // B rendered it again: its own tiers and the bucket had nothing.
        assert_eq!(again.header("x-cache"), Some("MISS"), "{params}");
        assert_eq!(served_by(&replicas, &id, "MISS").await, 1);
    }
    assert_eq!(origin.seen().len(), fetched + 1, "one new origin fetch");
    s3.wait_for_objects(&purged, 1 + VARIANTS.len()).await;

    // B stops. Varnish sends its sources to A (a retry at once, then the probe's verdict),
    // which answers from the bucket without asking the origin.
    let fetched = origin.seen().len();
    drop(b);
    for (i, src) in owned[1].iter().enumerate() {
        for (j, params) in VARIANTS.iter().enumerate() {
            let id = format!("fleet-failover-s{i}-v{j}");
            let target = respelled(src, params);
            let mut answer = varnish.get(&target, &[("X-Request-Id", &id)]).await;
            for _ in 0..100 {
                if answer.status == 200 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                answer = varnish.get(&target, &[("X-Request-Id", &id)]).await;
            }
            assert_eq!(answer.status, 200, "{id}: {}", answer.text());
            assert!(!varnish_hit(&answer), "{target} is a new Varnish object");
            assert_eq!(answer.header("x-cache"), Some("HIT-SHARED"), "{id}");
            assert!(a
                .log_line(&[
                    &format!("\"request_id\":\"{id}\""),
                    "\"cache\":\"HIT-SHARED\""
                ])
                .await
                .is_some());
        }
    }
    assert_eq!(
        origin.seen().len(),
        fetched,
        "the origin was not asked again"
    );
}
