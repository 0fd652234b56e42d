//! Lines a go-plugin host (v1.8.0, `Client.Start`) accepts although they are
//! not what a current plugin prints. Each is accepted here too, with what a
//! Go host makes of it.

use expect_test::{Expect, expect};
use rpcplugin_handshake::{HandshakeLine, ParseOptions};

use crate::support::{GO_P521_B64, render, render_with};

fn check(input: &[u8], expected: Expect) {
    expected.assert_eq(&render(input));
}

#[test]
fn a_go_host_reads_versions_with_atoi_so_a_plus_sign_is_allowed() {
    check(
        b"+1|+5|unix|/tmp/plugin77|grpc|\n",
        expect![[r#"
            core_version: 1
            app_version: 5
            network: unix
            address: "/tmp/plugin77"
            protocol: grpc
            server_cert: None
            multiplex: None
            to_line: "1|5|unix|/tmp/plugin77|grpc|\n"
        "#]],
    );
}

#[test]
fn a_go_host_ignores_a_sixth_field_of_fifty_characters_or_fewer() {
    // Plugins built before go-plugin 1.0 printed a short base64 "extra"
    // configuration there; it is not a certificate.
    check(
        b"1|1|tcp|127.0.0.1:1234|grpc|eyJ0bHMiOmZhbHNlfQ==\n",
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
    let fifty = "A".repeat(50);
    check(
        format!("1|1|tcp|127.0.0.1:1234|grpc|{fifty}\n").as_bytes(),
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
fn a_go_host_ignores_fields_past_the_seventh() {
    check(
        format!("1|6|unix|/tmp/plugin1893471020|grpc|{GO_P521_B64}|true|extra|more\n").as_bytes(),
        expect![[r#"
            core_version: 1
            app_version: 6
            network: unix
            address: "/tmp/plugin1893471020"
            protocol: grpc
            server_cert: 633 bytes of DER (go-automtls-p521.der, starts 30 82 02 75)
            multiplex: Some(true)
            to_line: "1|6|unix|/tmp/plugin1893471020|grpc|MIICdTCCAdegAw" … "BDqHd3|true\n" (886 bytes)
        "#]],
    );
}

#[test]
fn a_go_host_that_did_not_request_multiplexing_ignores_the_seventh_field() {
    check(
        b"1|1|unix|/tmp/plugin77|grpc||yes\n",
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
fn a_go_host_that_requested_multiplexing_accepts_any_go_true() {
    let options = ParseOptions::new().multiplex_requested(true);
    for spelling in ["1", "t", "T", "TRUE", "true", "True"] {
        let text = format!("1|1|unix|/tmp/plugin77|grpc||{spelling}|extra\n");
        let line = HandshakeLine::parse_with(text.as_bytes(), options);
        assert_eq!(line.map(|l| l.multiplex), Ok(Some(true)), "{spelling}");
    }
    // A net/rpc plugin is not asked about multiplexing.
    expect![[r#"
        core_version: 1
        app_version: 1
        network: unix
        address: "/tmp/plugin77"
        protocol: netrpc
        server_cert: None
        multiplex: None
        to_line: "1|1|unix|/tmp/plugin77|netrpc|\n"
    "#]]
    .assert_eq(&render_with(b"1|1|unix|/tmp/plugin77|netrpc\n", options));
}
