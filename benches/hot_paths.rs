//! Criterion benches for the per-request hot paths that exist today: sniffing a source's type,
//! parsing the request query, parsing and checking a source URL, and classifying addresses.
//! Inputs are built here, so the benches need no files. `cargo bench` runs them.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use imgrelay::{
    fetch::{policy::AddressPolicy, source},
    image::format::ImageFormat,
    request::ImageRequest,
};
use std::net::IpAddr;

fn sniffing(c: &mut Criterion) {
    let mut g = c.benchmark_group("sniff");
    let heads: [(&str, &[u8]); 4] = [
        (
            "jpeg",
            b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0",
        ),
        ("webp", b"RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0"),
        ("avif", b"\0\0\0\x20ftypmif1\0\0\0\0mif1avifmiafMA1B"),
        ("html", b"<!DOCTYPE html><html><head><title>403</title>"),
    ];
    for (name, head) in heads {
        g.throughput(Throughput::Bytes(head.len() as u64));
        g.bench_function(name, |b| b.iter(|| ImageFormat::sniff(black_box(head))));
    }
    g.finish();
}

fn request_parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("request");
    let raw = "http://static.1sapp.com/qupost/img/2021/10/14/6a3f1d3b8c2e4f5a9b7c0d1e2f3a4b5c.jpeg";
    let params = "url=https%3A%2F%2Fimg.ithome.com%2Fnewsuploadfiles%2F2021%2F10%2Fa.jpg%3Fx%3D1&w=640&h=480&fit=cover&a=top&q=80&output=webp";
    for (name, q) in [("pass_through", raw), ("params", params)] {
        g.throughput(Throughput::Bytes(q.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let r = ImageRequest::parse(Some(black_box(q))).ok()?;
                source::parse(r.source()).ok()
            })
        });
    }
    g.finish();
}

fn classify(c: &mut Criterion) {
    let policy = AddressPolicy {
        allow_private: false,
        allow_networks: vec!["10.1.0.0/16".parse().expect("cidr")],
    };
    let ips: Vec<IpAddr> = [
        "93.184.216.34",
        "10.1.2.3",
        "::ffff:127.0.0.1",
        "2606:4700::1111",
        "2001:0:808:808::80ff:fffe",
    ]
    .iter()
    .map(|s| s.parse().expect("ip"))
    .collect();
    c.bench_function("classify/5_addresses", |b| {
        b.iter(|| ips.iter().filter(|ip| policy.check(**ip).is_ok()).count())
    });
}

criterion_group!(benches, sniffing, request_parsing, classify);
criterion_main!(benches);
