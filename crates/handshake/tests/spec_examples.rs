//! Every example handshake line in the go-plugin protocol notes (§2.1 and the
//! pyvider notes) parses. Where a note elides the certificate (`MIIC…`), the
//! committed P-521 certificate stands in.

use rpcplugin_handshake::{HandshakeLine, Network, Protocol};

use crate::support::{GO_P521_B64, PYVIDER_P384_B64};

#[test]
fn protocol_notes_examples_parse() {
    let go_automtls = format!("1|6|unix|/tmp/plugin1893471020|grpc|{GO_P521_B64}");
    let pyvider_unix = format!("1|1|unix|/tmp/pyvider-1234.sock|grpc|{PYVIDER_P384_B64}");
    let pyvider_tcp = format!("1|1|tcp|127.0.0.1:50051|grpc|{PYVIDER_P384_B64}");
    let examples: [(&str, Network, Protocol, bool, Option<bool>); 8] = [
        (&go_automtls, Network::Unix, Protocol::Grpc, true, None),
        (
            "1|5|unix|/tmp/plugin445290|grpc|",
            Network::Unix,
            Protocol::Grpc,
            false,
            None,
        ),
        (
            "1|1|tcp|127.0.0.1:10000|grpc|",
            Network::Tcp,
            Protocol::Grpc,
            false,
            None,
        ),
        (
            "1|1|unix|/tmp/plugin77|grpc||true",
            Network::Unix,
            Protocol::Grpc,
            false,
            Some(true),
        ),
        (
            "1|1|tcp|127.0.0.1:1234|grpc",
            Network::Tcp,
            Protocol::Grpc,
            false,
            None,
        ),
        (&pyvider_unix, Network::Unix, Protocol::Grpc, true, None),
        (&pyvider_tcp, Network::Tcp, Protocol::Grpc, true, None),
        // The format line's shape with a legacy 4-field line (protocol omitted).
        (
            "1|1|unix|/tmp/plugin2185334867",
            Network::Unix,
            Protocol::NetRpc,
            false,
            None,
        ),
    ];
    for (text, network, protocol, has_cert, multiplex) in examples {
        let line = HandshakeLine::parse(format!("{text}\n").as_bytes())
            .unwrap_or_else(|err| panic!("{text}: {err}"));
        assert_eq!(line.core_version, 1, "{text}");
        assert_eq!(line.network, network, "{text}");
        assert_eq!(line.protocol, protocol, "{text}");
        assert_eq!(line.server_cert.is_some(), has_cert, "{text}");
        assert_eq!(line.multiplex, multiplex, "{text}");
    }
}

#[test]
fn reformatting_reproduces_six_and_seven_field_examples() {
    for text in [
        "1|5|unix|/tmp/plugin445290|grpc|",
        "1|1|tcp|127.0.0.1:10000|grpc|",
        "1|1|unix|/tmp/plugin77|grpc||true",
    ] {
        let line: HandshakeLine = text.parse().unwrap();
        assert_eq!(line.to_string(), text);
    }
    let go_automtls = format!("1|6|unix|/tmp/plugin1893471020|grpc|{GO_P521_B64}");
    let line: HandshakeLine = go_automtls.parse().unwrap();
    assert_eq!(line.to_string(), go_automtls);
}
