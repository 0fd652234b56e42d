//! Snapshots of handshake lines as real peers print them.

use expect_test::{Expect, expect};
use rpcplugin_handshake::{HandshakeLine, Network, Protocol};

use crate::support::{GO_P521_B64, GO_P521_DER, PYVIDER_P384_DER, data_file, render};

fn check(input: &[u8], expected: Expect) {
    expected.assert_eq(&render(input));
}

fn check_file(name: &str, expected: Expect) {
    // A missing file fails the snapshot with a message instead of panicking.
    let rendered = match data_file(name) {
        Ok(line) => render(&line),
        Err(err) => format!("cannot read tests/data/{name}: {err}"),
    };
    expected.assert_eq(&rendered);
}

#[test]
fn go_automtls_p521() {
    check_file(
        "go-automtls.line",
        expect![[r#"
        core_version: 1
        app_version: 6
        network: unix
        address: "/tmp/plugin1893471020"
        protocol: grpc
        server_cert: 633 bytes of DER (go-automtls-p521.der, starts 30 82 02 75)
        multiplex: None
        to_line: identical to the input
    "#]],
    );
}

#[test]
fn go_automtls_p521_with_mux() {
    check_file(
        "go-automtls-mux.line",
        expect![[r#"
        core_version: 1
        app_version: 1
        network: unix
        address: "/tmp/plugin2185334867"
        protocol: grpc
        server_cert: 633 bytes of DER (go-automtls-p521.der, starts 30 82 02 75)
        multiplex: Some(true)
        to_line: identical to the input
    "#]],
    );
}

#[test]
fn pyvider_p384_unpadded() {
    check_file(
        "pyvider.line",
        expect![[r#"
        core_version: 1
        app_version: 1
        network: unix
        address: "/tmp/pyvider-1234.sock"
        protocol: grpc
        server_cert: 548 bytes of DER (pyvider-p384.der, starts 30 82 02 20)
        multiplex: None
        to_line: identical to the input
    "#]],
    );
}

#[test]
fn padded_base64_is_accepted() {
    check_file(
        "padded-base64.line",
        expect![[r#"
        core_version: 1
        app_version: 1
        network: tcp
        address: "127.0.0.1:10000"
        protocol: grpc
        server_cert: 548 bytes of DER (pyvider-p384.der, starts 30 82 02 20)
        multiplex: None
        to_line: "1|1|tcp|127.0.0.1:10000|grpc|MIICIDCCAaagAwIBAgIUZ" … "JxcL0Uoedcs\n" (761 bytes)
    "#]],
    );
}

#[test]
fn crlf_terminator() {
    check_file(
        "crlf.line",
        expect![[r#"
        core_version: 1
        app_version: 6
        network: unix
        address: "/tmp/plugin1893471020"
        protocol: grpc
        server_cert: 633 bytes of DER (go-automtls-p521.der, starts 30 82 02 75)
        multiplex: None
        to_line: "1|6|unix|/tmp/plugin1893471020|grpc|MIICdTCCAdegAw" … "Z0O6aBDqHd3\n" (881 bytes)
    "#]],
    );
}

#[test]
fn no_tls() {
    check_file(
        "no-tls.line",
        expect![[r#"
        core_version: 1
        app_version: 5
        network: unix
        address: "/tmp/plugin445290"
        protocol: grpc
        server_cert: None
        multiplex: None
        to_line: identical to the input
    "#]],
    );
}

#[test]
fn mux_without_tls() {
    check_file(
        "mux.line",
        expect![[r#"
        core_version: 1
        app_version: 1
        network: unix
        address: "/tmp/plugin77"
        protocol: grpc
        server_cert: None
        multiplex: Some(true)
        to_line: identical to the input
    "#]],
    );
}

#[test]
fn windows_tcp() {
    check_file(
        "windows-tcp.line",
        expect![[r#"
        core_version: 1
        app_version: 1
        network: tcp
        address: "127.0.0.1:10000"
        protocol: grpc
        server_cert: None
        multiplex: None
        to_line: identical to the input
    "#]],
    );
}

#[test]
fn minimal_five_fields() {
    check_file(
        "minimal.line",
        expect![[r#"
        core_version: 1
        app_version: 1
        network: tcp
        address: "127.0.0.1:1234"
        protocol: grpc
        server_cert: None
        multiplex: None
        to_line: "1|1|tcp|127.0.0.1:1234|grpc|\n"
    "#]],
    );
}

#[test]
fn four_fields_default_to_netrpc() {
    check(
        b"1|1|tcp|127.0.0.1:1234",
        expect![[r#"
        core_version: 1
        app_version: 1
        network: tcp
        address: "127.0.0.1:1234"
        protocol: netrpc
        server_cert: None
        multiplex: None
        to_line: "1|1|tcp|127.0.0.1:1234|netrpc|\n"
    "#]],
    );
}

#[test]
fn surrounding_whitespace_is_ignored() {
    check(
        b" \t1|1|unix|/tmp/plugin77|grpc|\r\n\r\n",
        expect![[r#"
        core_version: 1
        app_version: 1
        network: unix
        address: "/tmp/plugin77"
        protocol: grpc
        server_cert: None
        multiplex: None
        to_line: "1|1|unix|/tmp/plugin77|grpc|\n"
    "#]],
    );
}

#[test]
fn mux_false_and_go_bool_spellings() {
    check(
        b"1|1|unix|/tmp/plugin77|grpc||F",
        expect![[r#"
        core_version: 1
        app_version: 1
        network: unix
        address: "/tmp/plugin77"
        protocol: grpc
        server_cert: None
        multiplex: Some(false)
        to_line: "1|1|unix|/tmp/plugin77|grpc||false\n"
    "#]],
    );
}

#[test]
fn other_core_version_parses() {
    check(
        b"2|1|unix|/tmp/plugin77|grpc|",
        expect![[r#"
        core_version: 2
        app_version: 1
        network: unix
        address: "/tmp/plugin77"
        protocol: grpc
        server_cert: None
        multiplex: None
        to_line: "2|1|unix|/tmp/plugin77|grpc|\n"
    "#]],
    );
}

#[test]
fn go_line_builds_the_expected_value() {
    let parsed = HandshakeLine::parse(&data_file("go-automtls.line").unwrap()).unwrap();
    assert_eq!(
        parsed,
        HandshakeLine {
            core_version: 1,
            app_version: 6,
            network: Network::Unix,
            address: "/tmp/plugin1893471020".into(),
            protocol: Protocol::Grpc,
            server_cert: Some(GO_P521_DER.to_vec()),
            multiplex: None,
        }
    );
    // Formatting writes exactly what a Go plugin writes.
    assert_eq!(
        parsed.to_line(),
        format!("1|6|unix|/tmp/plugin1893471020|grpc|{GO_P521_B64}\n")
    );
}

#[test]
fn padded_and_unpadded_give_the_same_der() {
    let padded = HandshakeLine::parse(&data_file("padded-base64.line").unwrap()).unwrap();
    let unpadded = HandshakeLine::parse(&data_file("pyvider.line").unwrap()).unwrap();
    assert_eq!(padded.server_cert.as_deref(), Some(PYVIDER_P384_DER));
    assert_eq!(padded.server_cert, unpadded.server_cert);
    // Formatting never pads: Go hosts reject `=`.
    assert!(!padded.to_line().contains('='));
}
