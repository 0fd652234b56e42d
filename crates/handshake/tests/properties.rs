//! Property tests: round trips, parsing never panics, negotiation laws.

use proptest::prelude::*;
use rpcplugin_handshake::{
    HandshakeLine, MAX_LINE_LEN, Network, ParseError, Protocol, format_protocol_versions,
    negotiate, parse_protocol_versions,
};

fn network() -> impl Strategy<Value = Network> {
    prop_oneof![Just(Network::Unix), Just(Network::Tcp)]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::Grpc), Just(Protocol::NetRpc)]
}

/// Any address a line can carry: no `|`, whitespace or control characters.
fn address() -> impl Strategy<Value = String> {
    "[^|\\s\\p{Cc}]{1,120}"
}

prop_compose! {
    fn handshake_line()(
        core_version in any::<u32>(),
        app_version in any::<u32>(),
        network in network(),
        address in address(),
        protocol in protocol(),
        // Over 37 bytes, so over 50 base64 characters: shorter 6th fields
        // are not certificates (see `short_certs_are_not_read_back`).
        server_cert in proptest::option::of(proptest::collection::vec(any::<u8>(), 38..1500)),
        multiplex in proptest::option::of(any::<bool>()),
    ) -> HandshakeLine {
        HandshakeLine { core_version, app_version, network, address, protocol, server_cert, multiplex }
    }
}

/// Text made of pieces that look like handshake fields, joined by `|`.
fn field_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(String::new()),
        Just("1".to_owned()),
        Just("unix".to_owned()),
        Just("tcp".to_owned()),
        Just("grpc".to_owned()),
        Just("netrpc".to_owned()),
        Just("true".to_owned()),
        Just("MIIC".to_owned()),
        Just("+".to_owned()),
        Just("+1".to_owned()),
        Just("=".to_owned()),
        Just("\r\n".to_owned()),
        "[0-9]{1,12}",
        "[A-Za-z0-9+/=]{0,80}",
        "[A-Za-z0-9+/]{51,120}",
        ".{0,20}",
    ];
    proptest::collection::vec(piece, 0..10).prop_map(|pieces| pieces.join("|"))
}

proptest! {
    #[test]
    fn format_then_parse_is_identity(line in handshake_line()) {
        let text = line.to_line();
        prop_assert!(text.ends_with('\n'));
        prop_assert_eq!(&text[..text.len() - 1], line.to_string());
        prop_assert_eq!(HandshakeLine::parse(text.as_bytes()), Ok(line.clone()));
        prop_assert_eq!(line.to_string().parse::<HandshakeLine>(), Ok(line));
    }

    #[test]
    fn short_certs_are_not_read_back(line in handshake_line(), cert in proptest::collection::vec(any::<u8>(), 1..38)) {
        let line = HandshakeLine { server_cert: Some(cert), ..line };
        let parsed = HandshakeLine::parse(line.to_line().as_bytes());
        prop_assert_eq!(parsed, Ok(HandshakeLine { server_cert: None, ..line }));
    }

    #[test]
    fn parse_then_format_then_parse_is_stable(text in field_soup()) {
        if let Ok(line) = HandshakeLine::parse(text.as_bytes()) {
            prop_assert_eq!(HandshakeLine::parse(line.to_line().as_bytes()), Ok(line));
        }
    }

    #[test]
    fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = HandshakeLine::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_field_soup(text in field_soup()) {
        let _ = HandshakeLine::parse(text.as_bytes());
    }

    #[test]
    fn error_messages_stay_short(text in field_soup(), filler in 0usize..5000) {
        let mut text = text;
        text.push_str(&"x".repeat(filler));
        if let Err(err) = HandshakeLine::parse(text.as_bytes()) {
            prop_assert!(err.to_string().chars().count() < 400, "{}", err);
        }
    }

    #[test]
    fn versions_round_trip(versions in proptest::collection::vec(any::<u32>(), 0..20)) {
        let parsed = parse_protocol_versions(&format_protocol_versions(&versions));
        prop_assert_eq!(parsed.versions, versions);
        prop_assert!(parsed.invalid.is_empty());
    }

    #[test]
    fn versions_account_for_every_entry(value in "[0-9a-z, +-]{0,40}") {
        let parsed = parse_protocol_versions(&value);
        let entries = if value.is_empty() { 0 } else { value.split(',').count() };
        prop_assert_eq!(parsed.versions.len() + parsed.invalid.len(), entries);
    }

    #[test]
    fn negotiation_laws(
        client in proptest::collection::vec(0u32..12, 0..8),
        server in proptest::collection::vec(0u32..12, 0..8),
    ) {
        let chosen = negotiate(&client, &server);
        let common: Vec<u32> = server.iter().copied().filter(|v| client.contains(v)).collect();
        match chosen {
            None => prop_assert!(server.is_empty()),
            Some(version) => {
                prop_assert!(server.contains(&version));
                match common.iter().max() {
                    Some(&highest) => prop_assert_eq!(version, highest),
                    None => prop_assert_eq!(Some(&version), server.iter().min()),
                }
            }
        }
        // Order of either list never matters.
        let mut client_rev = client.clone();
        client_rev.reverse();
        let mut server_rev = server.clone();
        server_rev.reverse();
        prop_assert_eq!(negotiate(&client_rev, &server_rev), chosen);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn parse_never_panics_on_long_bytes(
        len in (MAX_LINE_LEN - 64)..(MAX_LINE_LEN + 4096),
        fill in any::<u8>(),
        prefix in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = prefix;
        bytes.resize(len, fill);
        match HandshakeLine::parse(&bytes) {
            Err(ParseError::TooLong { len, .. }) => prop_assert!(len > MAX_LINE_LEN),
            _ => {
                let trimmed = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
                let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
                prop_assert!(trimmed.len() <= MAX_LINE_LEN);
            }
        }
    }

    #[test]
    fn long_valid_lines_round_trip(len in 1usize..(MAX_LINE_LEN - 40)) {
        let line = HandshakeLine {
            core_version: 1,
            app_version: 1,
            network: Network::Unix,
            address: format!("/{}", "a".repeat(len - 1)),
            protocol: Protocol::Grpc,
            server_cert: None,
            multiplex: Some(false),
        };
        prop_assert_eq!(HandshakeLine::parse(line.to_line().as_bytes()), Ok(line));
    }
}
