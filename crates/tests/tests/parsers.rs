//! Property tests for the parsers that take outside input, beside the
//! cargo-fuzz targets in `fuzz/`: `PLUGIN_CLIENT_CERT` PEM, reattach JSON,
//! plugin stderr lines and the `:authority` filter. None may panic, and
//! each round trip that exists holds. (The handshake line and
//! `PLUGIN_PROTOCOL_VERSIONS` have theirs in `crates/handshake`.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use base64::Engine as _;
use proptest::prelude::*;
use rpcplugin::{Addr, Identity, KeyType};
use rpcplugin::{HclogLayer, ReattachConfig};
use rpcplugin::{parse_cert_pem, parse_certs_pem};
use rpcplugin_certs::cert_key_type;
use rpcplugin_runtime::internal::{fuzz_authority_filter, parse_stderr_line};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use tracing::Level;

// ----- PLUGIN_CLIENT_CERT -----

/// A few real certificates (generation is slow, so once).
fn identities() -> &'static [Identity] {
    static IDS: OnceLock<Vec<Identity>> = OnceLock::new();
    IDS.get_or_init(|| {
        [KeyType::EcP256, KeyType::EcP384, KeyType::EcP521]
            .into_iter()
            .map(|k| Identity::generate(k).unwrap())
            .collect()
    })
}

/// PEM armour around `der`, 64 columns.
fn armour(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// Text around a PEM block that parsers must skip: no `-----` lines.
fn chatter() -> impl Strategy<Value = String> {
    "([a-zA-Z0-9 :.=/+]{0,40}\n){0,3}"
}

proptest! {
    #[test]
    fn cert_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(der) = parse_cert_pem(&bytes) {
            let _ = cert_key_type(&der);
        }
        let _ = parse_certs_pem(&bytes);
        let _ = cert_key_type(&bytes);
    }

    #[test]
    fn any_der_in_pem_armour_never_panics(
        der in proptest::collection::vec(any::<u8>(), 0..1200),
        label in prop_oneof![Just("CERTIFICATE"), Just("PRIVATE KEY"), Just("X509 CRL")],
    ) {
        let pem = armour(label, &der);
        if let Ok(parsed) = parse_cert_pem(pem.as_bytes()) {
            // Whatever is accepted is exactly what was armoured.
            prop_assert_eq!(parsed.as_ref(), &der[..]);
            let _ = cert_key_type(&parsed);
        }
    }

    #[test]
    fn a_real_certificate_is_found_among_other_text(
        which in 0usize..3,
        before in chatter(),
        after in chatter(),
        with_key in any::<bool>(),
    ) {
        let id = &identities()[which];
        let key = if with_key { id.key_pem() } else { String::new() };
        let text = format!("{before}{key}{}{after}", id.cert_pem());
        let der = parse_cert_pem(text.as_bytes()).unwrap();
        prop_assert_eq!(&der, id.cert_der());
        prop_assert_eq!(cert_key_type(&der).unwrap(), id.key_type());
    }

    #[test]
    fn a_damaged_real_certificate_never_panics(
        which in 0usize..3,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut der = identities()[which].cert_der().to_vec();
        for (at, byte) in flips {
            let i = at.index(der.len());
            der[i] ^= byte | 1;
        }
        let _ = cert_key_type(&der);
        let _ = parse_cert_pem(armour("CERTIFICATE", &der).as_bytes());
        der.truncate(cut.index(der.len()));
        let _ = cert_key_type(&der);
    }
}

// ----- reattach JSON -----

fn addr() -> impl Strategy<Value = Addr> {
    prop_oneof![
        "/[a-zA-Z0-9_./-]{1,90}".prop_map(|p| Addr::Unix(p.into())),
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| Addr::Tcp(std::net::SocketAddr::from((ip, port)))),
        (any::<[u16; 8]>(), any::<u16>())
            .prop_map(|(ip, port)| Addr::Tcp(std::net::SocketAddr::from((ip, port)))),
    ]
}

/// JSON values shaped like reattach configurations, with any types.
fn reattach_soup() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u32>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        prop_oneof![
            Just("grpc".to_owned()),
            Just("unix".to_owned()),
            Just("tcp".to_owned()),
            Just("127.0.0.1:1234".to_owned()),
            Just("/tmp/plugin1".to_owned()),
            ".{0,20}",
        ]
        .prop_map(serde_json::Value::from),
    ];
    let key = prop_oneof![
        Just("Protocol"),
        Just("ProtocolVersion"),
        Just("Pid"),
        Just("Test"),
        Just("Addr"),
        Just("Network"),
        Just("String"),
        Just("protocol"),
        Just("Extra"),
    ]
    .prop_map(str::to_owned);
    leaf.prop_recursive(3, 32, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(key.clone(), inner, 0..7)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn reattach_json_never_panics(text in ".{0,300}") {
        if let Ok(config) = serde_json::from_str::<ReattachConfig>(&text) {
            let _ = config.addr();
        }
        let _ = serde_json::from_str::<BTreeMap<String, ReattachConfig>>(&text);
    }

    #[test]
    fn reattach_shaped_json_never_panics(value in reattach_soup()) {
        let text = value.to_string();
        if let Ok(config) = serde_json::from_str::<ReattachConfig>(&text) {
            let _ = config.addr();
            let _ = config.tf_reattach_providers("hashicorp/foo");
        }
    }

    #[test]
    fn reattach_config_round_trips(
        version in any::<u32>(),
        pid in any::<u32>(),
        test in any::<bool>(),
        addr in addr(),
    ) {
        let config = ReattachConfig::new(version, &addr, pid, test);
        let json = serde_json::to_string(&config).unwrap();
        let back: ReattachConfig = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &config);
        prop_assert_eq!(back.addr().unwrap(), addr);
        let providers = config.tf_reattach_providers("registry.terraform.io/hashicorp/foo");
        let map: BTreeMap<String, ReattachConfig> = serde_json::from_str(&providers).unwrap();
        prop_assert_eq!(map.get("registry.terraform.io/hashicorp/foo"), Some(&config));
    }
}

// ----- plugin stderr lines -----

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![
        Just(Level::TRACE),
        Just(Level::DEBUG),
        Just(Level::INFO),
        Just(Level::WARN),
        Just(Level::ERROR),
    ]
}

proptest! {
    #[test]
    fn stderr_lines_never_panic(line in ".{0,400}", in_panic in any::<bool>()) {
        let parsed = parse_stderr_line(&line, in_panic);
        if parsed.starts_panic {
            prop_assert_eq!(parsed.level, Level::ERROR);
        }
    }

    #[test]
    fn json_shaped_stderr_lines_never_panic(value in reattach_soup(), in_panic in any::<bool>()) {
        let _ = parse_stderr_line(&value.to_string().replace("Protocol", "@level"), in_panic);
        let _ = parse_stderr_line(&value.to_string().replace("Pid", "@timestamp"), in_panic);
    }

    #[test]
    fn hclog_lines_round_trip(
        level in level(),
        message in ".{0,200}",
        fields in proptest::collection::btree_map("[a-z][a-z_]{0,12}", ".{0,40}", 0..6),
        in_panic in any::<bool>(),
    ) {
        let fields: Vec<(&str, serde_json::Value)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), serde_json::Value::from(v.as_str())))
            .collect();
        let line = HclogLayer::new("m").format(level, &message, &fields);
        prop_assert_eq!(line.matches('\n').count(), 1);
        let parsed = parse_stderr_line(&line, in_panic);
        prop_assert_eq!(parsed.level, level);
        prop_assert_eq!(parsed.message, message);
        let mut expected: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        expected.push(("@module".to_owned(), "m".to_owned()));
        expected.sort();
        prop_assert_eq!(parsed.fields, expected);
    }

    #[test]
    fn tagged_text_lines_keep_their_level(
        (tag, level) in prop_oneof![
            Just(("[TRACE]", Level::TRACE)),
            Just(("[DEBUG]", Level::DEBUG)),
            Just(("[INFO]", Level::INFO)),
            Just(("[WARN]", Level::WARN)),
            Just(("[ERROR]", Level::ERROR)),
        ],
        rest in "[^\r\n]{0,80}",
        in_panic in any::<bool>(),
    ) {
        let line = format!("{tag}{rest}\n");
        let parsed = parse_stderr_line(&line, in_panic);
        prop_assert_eq!(parsed.level, level);
        prop_assert_eq!(parsed.message, line.trim_end_matches('\n'));
    }
}

// ----- the :authority filter -----

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Frames of any type, flags and payload, after the preface.
fn frame_soup() -> impl Strategy<Value = Vec<u8>> {
    let one = (
        prop_oneof![Just(0u8), Just(1), Just(4), Just(8), Just(9), any::<u8>()],
        any::<u8>(),
        prop_oneof![Just(0u32), Just(1), Just(3), any::<u32>()],
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(kind, flags, stream, payload)| frame(kind, flags, stream, &payload));
    proptest::collection::vec(one, 0..8).prop_map(|frames| {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frames.concat());
        bytes
    })
}

/// Decodes every header block of the filter's output (HEADERS plus
/// CONTINUATION), in order.
fn output_headers(out: &[u8]) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut decoder = loona_hpack::Decoder::new();
    let mut rest = &out[PREFACE.len()..];
    let mut blocks = Vec::new();
    let mut block = Vec::new();
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let (kind, flags) = (rest[3], rest[4]);
        let payload = &rest[9..9 + len];
        if kind == 1 || kind == 9 {
            let mut fragment = payload;
            if kind == 1 && flags & 0x20 != 0 {
                fragment = &fragment[5..];
            }
            block.extend_from_slice(fragment);
            if flags & 0x4 != 0 {
                blocks.push(decoder.decode(&block).unwrap());
                block.clear();
            }
        }
        rest = &rest[9 + len..];
    }
    blocks
}

proptest! {
    #[test]
    fn the_filter_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = fuzz_authority_filter(&bytes);
    }

    #[test]
    fn the_filter_never_panics_on_frames(bytes in frame_soup()) {
        let _ = fuzz_authority_filter(&bytes);
    }

    #[test]
    fn header_blocks_keep_their_meaning(
        authority in prop_oneof![
            Just("localhost".to_owned()),
            Just("tmp%2Frpcplugin-x%2Fplugin1".to_owned()),
            "[ -~]{0,60}",
        ],
        others in proptest::collection::vec(("[a-z][a-z0-9-]{0,15}", "[ -~]{0,40}"), 0..6),
        split in 1usize..40,
        reused in any::<bool>(),
        data in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b":method".to_vec(), b"POST".to_vec()),
            (b":authority".to_vec(), authority.clone().into_bytes()),
            (b":path".to_vec(), b"/proto.KV/Get".to_vec()),
        ];
        headers.extend(others.into_iter().map(|(n, v)| (n.into_bytes(), v.into_bytes())));
        let mut encoder = loona_hpack::Encoder::new();
        let block = encoder.encode(headers.iter().map(|(n, v)| (&n[..], &v[..])));
        if reused {
            // The same list again on a second stream, now as references to
            // the dynamic table the first block filled.
            let again = encoder.encode(headers.iter().map(|(n, v)| (&n[..], &v[..])));
            let mut input = PREFACE.to_vec();
            input.extend(frame(1, 0x4, 1, &block));
            input.extend(frame(1, 0x4, 3, &again));
            let out = fuzz_authority_filter(&input).unwrap();
            let blocks = output_headers(&out);
            prop_assert_eq!(blocks.len(), 2);
            prop_assert_eq!(&blocks[0], &blocks[1]);
            return Ok(());
        }
        let cut = split.min(block.len());
        let mut input = PREFACE.to_vec();
        input.extend(frame(1, 0, 1, &block[..cut]));
        input.extend(frame(9, 0x4, 1, &block[cut..]));
        input.extend(frame(0, 0x1, 1, &data));
        let out = fuzz_authority_filter(&input).unwrap();
        let blocks = output_headers(&out);
        prop_assert_eq!(blocks.len(), 1);
        let valid = tonic::codegen::http::uri::Authority::try_from(authority.as_str()).is_ok();
        let mut expected = headers.clone();
        if !valid {
            expected[1].1 = b"localhost".to_vec();
        }
        prop_assert_eq!(&blocks[0], &expected);
        // DATA passes through byte for byte.
        prop_assert!(out.ends_with(&frame(0, 0x1, 1, &data)));
    }
}
