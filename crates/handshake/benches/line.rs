//! Cost of parsing and formatting handshake lines and protocol version lists.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rpcplugin_handshake::{
    CORE_PROTOCOL_VERSION, HandshakeLine, Network, Protocol, format_protocol_versions,
    parse_protocol_versions,
};

fn lines() -> Vec<(&'static str, HandshakeLine)> {
    let unix = HandshakeLine {
        core_version: CORE_PROTOCOL_VERSION,
        app_version: 6,
        network: Network::Unix,
        address: "/tmp/plugin2819388164/plugin.sock".into(),
        protocol: Protocol::Grpc,
        server_cert: None,
        multiplex: None,
    };
    // An AutoMTLS line: a DER certificate of a typical P-256 size.
    let with_cert = HandshakeLine {
        server_cert: Some((0..=255u8).cycle().take(420).collect()),
        multiplex: Some(false),
        ..unix.clone()
    };
    let tcp = HandshakeLine {
        network: Network::Tcp,
        address: "127.0.0.1:10000".into(),
        ..unix.clone()
    };
    vec![("unix", unix), ("unix+cert", with_cert), ("tcp", tcp)]
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, line) in lines() {
        let text = line.to_line();
        group.bench_function(name, |b| {
            b.iter(|| HandshakeLine::parse(black_box(text.as_bytes())));
        });
    }
    group.finish();
}

fn format(c: &mut Criterion) {
    let mut group = c.benchmark_group("format");
    for (name, line) in lines() {
        group.bench_function(name, |b| b.iter(|| black_box(&line).to_line()));
    }
    group.finish();
}

fn versions(c: &mut Criterion) {
    let mut group = c.benchmark_group("protocol_versions");
    group.bench_function("parse", |b| {
        b.iter(|| parse_protocol_versions(black_box("2,3,4,5,6")));
    });
    group.bench_function("format", |b| {
        b.iter(|| format_protocol_versions(black_box(&[2, 3, 4, 5, 6])));
    });
    group.finish();
}

criterion_group!(benches, parse, format, versions);
criterion_main!(benches);
