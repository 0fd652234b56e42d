//! Test data and a readable rendering of parse results.

use rpcplugin_handshake::{HandshakeLine, ParseOptions};

/// DER of a certificate shaped like go-plugin's AutoMTLS ones: ECDSA P-521,
/// ecdsa-with-SHA512, `O=HashiCorp, CN=localhost`, SAN `DNS:localhost`,
/// critical `CA:TRUE`, about 30 years of validity.
pub const GO_P521_DER: &[u8] = include_bytes!("data/go-automtls-p521.der");
/// The same certificate as unpadded standard base64.
pub const GO_P521_B64: &str = include_str!("data/go-automtls-p521.b64");
/// DER of a certificate shaped like pyvider's: ECDSA P-384, CA:FALSE.
pub const PYVIDER_P384_DER: &[u8] = include_bytes!("data/pyvider-p384.der");
/// The same certificate as unpadded standard base64.
pub const PYVIDER_P384_B64: &str = include_str!("data/pyvider-p384.b64");

/// Parses `input` and renders the outcome for a snapshot.
///
/// A successful parse is also formatted again; the rendering says whether
/// that reproduces the input and checks that the result parses back to the
/// same value.
pub fn render(input: &[u8]) -> String {
    render_with(input, ParseOptions::new())
}

/// Like [`render`], parsing with `options`.
pub fn render_with(input: &[u8], options: ParseOptions) -> String {
    match HandshakeLine::parse_with(input, options) {
        Ok(line) => render_line(input, &line),
        Err(err) => format!("error: {err}\n{err:?}\n"),
    }
}

fn render_line(input: &[u8], line: &HandshakeLine) -> String {
    let HandshakeLine {
        core_version,
        app_version,
        network,
        address,
        protocol,
        server_cert,
        multiplex,
    } = line;
    let mut out = vec![
        format!("core_version: {core_version}"),
        format!("app_version: {app_version}"),
        format!("network: {network}"),
        format!("address: {address:?}"),
        format!("protocol: {protocol}"),
        match server_cert {
            None => "server_cert: None".to_owned(),
            Some(der) => format!("server_cert: {}", describe_cert(der)),
        },
        format!("multiplex: {multiplex:?}"),
    ];

    let formatted = line.to_line();
    assert_eq!(formatted, format!("{line}\n"));
    assert_eq!(
        HandshakeLine::parse(formatted.as_bytes()).as_ref(),
        Ok(line)
    );
    if formatted.as_bytes() == input {
        out.push("to_line: identical to the input".to_owned());
    } else {
        out.push(format!("to_line: {}", shorten(&formatted)));
    }
    out.push(String::new());
    out.join("\n")
}

/// Names the committed certificates; others by size and first bytes.
fn describe_cert(der: &[u8]) -> String {
    let name = if der == GO_P521_DER {
        "go-automtls-p521.der"
    } else if der == PYVIDER_P384_DER {
        "pyvider-p384.der"
    } else {
        "unknown"
    };
    let head: Vec<String> = der.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!(
        "{} bytes of DER ({name}, starts {})",
        der.len(),
        head.join(" ")
    )
}

/// A line with a long certificate field cut in the middle, keeping both ends.
fn shorten(line: &str) -> String {
    if line.len() <= 80 {
        return format!("{line:?}");
    }
    let head: String = line.chars().take(50).collect();
    let tail: String = {
        let rev: Vec<char> = line.chars().rev().take(12).collect();
        rev.into_iter().rev().collect()
    };
    format!("{head:?} … {tail:?} ({} bytes)", line.len())
}

/// A file under `tests/data/`.
pub fn data_file(name: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR")))
}

#[test]
fn committed_base64_matches_the_der() {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
    assert_eq!(engine.decode(GO_P521_B64).unwrap(), GO_P521_DER);
    assert_eq!(engine.decode(PYVIDER_P384_B64).unwrap(), PYVIDER_P384_DER);
    assert!(!GO_P521_B64.contains('=') && !PYVIDER_P384_B64.contains('='));
}
