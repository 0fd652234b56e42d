//! One snapshot per `ParseError` variant: the message a person reads, then
//! the value.

use expect_test::{Expect, expect};
use rpcplugin_handshake::{
    HandshakeLine, MAX_LINE_LEN, Network, ParseError, ParseOptions, Protocol,
};

use crate::support::{GO_P521_B64, render, render_with};

fn check(input: &[u8], expected: Expect) {
    expected.assert_eq(&render(input));
}

/// Parses as a host that set `PLUGIN_MULTIPLEX_GRPC`.
fn check_mux(input: &[u8], expected: Expect) {
    let options = ParseOptions::new().multiplex_requested(true);
    expected.assert_eq(&render_with(input, options));
}

#[test]
fn too_long() {
    let mut line = b"1|1|unix|/tmp/".to_vec();
    line.resize(MAX_LINE_LEN + 1, b'a');
    check(
        &line,
        expect![[r#"
        error: handshake line is 65537 bytes long, over the limit of 65536 bytes (it starts with "1|1|unix|/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…")
        TooLong { len: 65537, start: "1|1|unix|/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…" }
    "#]],
    );
}

#[test]
fn too_long_is_checked_before_utf8() {
    let line = vec![0xff; MAX_LINE_LEN * 4];
    check(
        &line,
        expect![[r#"
        error: handshake line is 262144 bytes long, over the limit of 65536 bytes (it starts with "������������������������������������������������������������…")
        TooLong { len: 262144, start: "������������������������������������������������������������…" }
    "#]],
    );
}

#[test]
fn not_utf8() {
    check(
        b"1|1|unix|/tmp/plugin\xff\xfe|grpc|\n",
        expect![[r#"
        error: handshake line is not valid UTF-8 (first invalid byte at offset 20): "1|1|unix|/tmp/plugin��|grpc|\n"
        NotUtf8 { valid_up_to: 20, text: "1|1|unix|/tmp/plugin��|grpc|\n" }
    "#]],
    );
}

#[test]
fn empty() {
    check(
        b" \r\n",
        expect![[r#"
        error: handshake line is empty: the plugin printed a blank line where its handshake was expected
        Empty
    "#]],
    );
}

#[test]
fn multiple_lines() {
    check(
        b"1|1|unix|/tmp/plugin1|grpc|\n1|1|unix|/tmp/plugin2|grpc|\n",
        expect![[r#"
            error: handshake line contains a line break at byte 27; pass one line at a time: "1|1|unix|/tmp/plugin1|grpc|\n1|1|unix|/tmp/plugin2|grpc|"
            MultipleLines { offset: 27, line: "1|1|unix|/tmp/plugin1|grpc|\n1|1|unix|/tmp/plugin2|grpc|" }
        "#]],
    );
}

#[test]
fn field_count_stray_output() {
    check(
        b"Starting my plugin v0.3.1...\n",
        expect![[r#"
            error: unrecognized handshake line (expected at least 4 `|`-separated fields, found 1): "Starting my plugin v0.3.1..."; the plugin may have printed something to stdout before its handshake line
            FieldCount { count: 1, line: "Starting my plugin v0.3.1..." }
        "#]],
    );
}

#[test]
fn field_count_too_few() {
    check(
        b"1|1|unix\n",
        expect![[r#"
            error: unrecognized handshake line (expected at least 4 `|`-separated fields, found 3): "1|1|unix"; the plugin may have printed something to stdout before its handshake line
            FieldCount { count: 3, line: "1|1|unix" }
        "#]],
    );
}

#[test]
fn invalid_number_sign_without_digits() {
    check(
        b"1|+|unix|/tmp/plugin77|grpc|\n",
        expect![[r#"
            error: field 1 (app protocol version) is not a decimal number from 0 to 4294967295: "+"
            InvalidNumber { field: AppVersion, value: "+" }
        "#]],
    );
}

#[test]
fn invalid_number_core() {
    check(
        b"v1|1|unix|/tmp/plugin77|grpc|\n",
        expect![[r#"
        error: field 0 (core protocol version) is not a decimal number from 0 to 4294967295: "v1"
        InvalidNumber { field: CoreVersion, value: "v1" }
    "#]],
    );
}

#[test]
fn invalid_number_app_overflow() {
    check(
        b"1|4294967296|unix|/tmp/plugin77|grpc|\n",
        expect![[r#"
        error: field 1 (app protocol version) is not a decimal number from 0 to 4294967295: "4294967296"
        InvalidNumber { field: AppVersion, value: "4294967296" }
    "#]],
    );
}

#[test]
fn unknown_network() {
    check(
        b"1|1|udp|127.0.0.1:1234|grpc|\n",
        expect![[r#"
        error: field 2 (network) must be "unix" or "tcp", found "udp"
        UnknownNetwork { value: "udp" }
    "#]],
    );
}

#[test]
fn empty_address() {
    check(
        b"1|1|unix||grpc|\n",
        expect![[r#"
        error: field 3 (address) is empty: the plugin gave no address to connect to
        EmptyAddress
    "#]],
    );
}

#[test]
fn unknown_protocol() {
    check(
        b"1|1|unix|/tmp/plugin77|GRPC|\n",
        expect![[r#"
        error: field 4 (protocol) must be "grpc" or "netrpc", found "GRPC"
        UnknownProtocol { value: "GRPC" }
    "#]],
    );
}

#[test]
fn invalid_certificate() {
    // Over 50 characters, so a certificate to a Go host too.
    check(
        b"1|1|unix|/tmp/plugin77|grpc|MIICdTCCAdegAwIBAgIU*GoLLgS8uDzv69JCL3UABi1SbpQkwCgYIK\n",
        expect![[r#"
            error: field 5 (server certificate) is not valid base64 (unexpected character '*' at offset 20): "MIICdTCCAdegAwIBAgIU*GoLLgS8uDzv69JCL3UABi1SbpQkwCgYIK"
            InvalidCertificate { value: "MIICdTCCAdegAwIBAgIU*GoLLgS8uDzv69JCL3UABi1SbpQkwCgYIK", reason: "unexpected character '*' at offset 20" }
        "#]],
    );
}

#[test]
fn invalid_certificate_long_text_is_cut() {
    // URL-safe base64 of a real certificate: a plausible mistake.
    let url_safe = GO_P521_B64.replace('+', "-").replace('/', "_");
    let line = format!("1|1|unix|/tmp/plugin77|grpc|{url_safe}\n");
    check(
        line.as_bytes(),
        expect![[r#"
        error: field 5 (server certificate) is not valid base64 (unexpected character '-' at offset 298; expected the standard alphabet with `+` and `/`, not URL-safe base64 or PEM): "MIICdTCCAdegAwIBAgIUGoLLgS8uDzv69JCL3UABi1SbpQkwCgYIKoZIzj0E…"
        InvalidCertificate { value: "MIICdTCCAdegAwIBAgIUGoLLgS8uDzv69JCL3UABi1SbpQkwCgYIKoZIzj0E…", reason: "unexpected character '-' at offset 298; expected the standard alphabet with `+` and `/`, not URL-safe base64 or PEM" }
    "#]],
    );
}

#[test]
fn invalid_certificate_reasons() {
    // Each after 52 valid characters (a multiple of 4), so that the field is
    // long enough to be read as a certificate.
    let valid = "A".repeat(52);
    let shown: Vec<String> = ["A", "MIIC=A", "MI=IC", "-----BEGIN CERTIFICATE-----"]
        .iter()
        .map(|cert| {
            let line = format!("1|1|unix|/tmp/plugin77|grpc|{valid}{cert}");
            HandshakeLine::parse(line.as_bytes())
                .unwrap_err()
                .to_string()
        })
        .collect();
    expect![[r#"
        [
            "field 5 (server certificate) is not valid base64 (invalid length 53: base64 cannot end with a lone character): \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"",
            "field 5 (server certificate) is not valid base64 (unexpected character '=' at offset 56; `=` padding may only come at the end): \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAMIIC=A\"",
            "field 5 (server certificate) is not valid base64 (unexpected character '=' at offset 54; `=` padding may only come at the end): \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAMI=IC\"",
            "field 5 (server certificate) is not valid base64 (unexpected character '-' at offset 52; expected the standard alphabet with `+` and `/`, not URL-safe base64 or PEM): \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-----BEG…\"",
        ]
    "#]].assert_debug_eq(&shown);
}

#[test]
fn invalid_multiplex_when_requested() {
    check_mux(
        b"1|1|unix|/tmp/plugin77|grpc||yes\n",
        expect![[r#"
        error: field 6 (multiplexing flag) must be a boolean such as "true" or "false", found "yes"
        InvalidMultiplex { value: "yes" }
    "#]],
    );
}

#[test]
fn multiplex_requested_but_field_absent() {
    check_mux(
        b"1|1|unix|/tmp/plugin77|grpc|\n",
        expect![[r#"
            error: the host requested gRPC broker multiplexing and the plugin does not support it: its handshake line has no field 6 (multiplexing flag); a Go plugin needs github.com/hashicorp/go-plugin 1.6.0 or later and a rebuild
            MultiplexNotSupported { announced: false }
        "#]],
    );
}

#[test]
fn multiplex_requested_but_refused() {
    check_mux(
        b"1|1|unix|/tmp/plugin77|grpc||false\n",
        expect![[r#"
            error: the host requested gRPC broker multiplexing and the plugin does not support it: its handshake line says false in field 6 (multiplexing flag)
            MultiplexNotSupported { announced: true }
        "#]],
    );
}

#[test]
fn from_str_of_the_parts() {
    let shown = [
        "udp".parse::<Network>().unwrap_err(),
        "http2".parse::<Protocol>().unwrap_err(),
    ]
    .map(|err: ParseError| err.to_string());
    expect![[r#"
        [
            "field 2 (network) must be \"unix\" or \"tcp\", found \"udp\"",
            "field 4 (protocol) must be \"grpc\" or \"netrpc\", found \"http2\"",
        ]
    "#]]
    .assert_debug_eq(&shown);
}
