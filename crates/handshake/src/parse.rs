//! The handshake line parser, lenient where a go-plugin host is.
//!
//! Each leniency below is what go-plugin's host (`Client.Start`, v1.8.0)
//! does with a line, so a plugin that works under a Go host works here too:
//!
//! - only fewer than 4 fields is an error; fields after the 7th are ignored;
//! - versions are read like Go's `strconv.Atoi` (`+5` is 5);
//! - a 6th field of 50 characters or fewer is not a certificate (plugins from
//!   before go-plugin 1.0 put a short configuration string there);
//! - the 7th field is only read when the host requested multiplexing.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

use crate::error::{Field, ParseError, snippet};
use crate::line::{HandshakeLine, Network, Protocol, parse_go_bool};
use crate::number::parse_go_int;

/// Decodes the certificate field: standard alphabet, `=` padding optional
/// (go-plugin writes none, some other implementations keep it), and, like
/// Go's decoder, non-zero trailing bits tolerated.
const CERT_DECODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// A 6th field this long or shorter is not a certificate: a go-plugin host
/// ignores it. The smallest real certificate is several hundred characters.
pub const MAX_IGNORED_CERT_FIELD_LEN: usize = 50;

/// What a host asked its plugin for, which decides how strictly a handshake
/// line is read (see [`HandshakeLine::parse_with`]).
///
/// The default is what [`HandshakeLine::parse`] uses: multiplexing not
/// requested.
///
/// ```
/// use rpcplugin_handshake::ParseOptions;
///
/// let options = ParseOptions::new().multiplex_requested(true);
/// assert!(options.requests_multiplex());
/// assert_eq!(ParseOptions::new(), ParseOptions::default());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ParseOptions {
    multiplex_requested: bool,
}

impl ParseOptions {
    /// Options for a host that requested nothing beyond the base protocol.
    pub const fn new() -> ParseOptions {
        ParseOptions {
            multiplex_requested: false,
        }
    }

    /// Says whether the host set `PLUGIN_MULTIPLEX_GRPC` for the plugin,
    /// requesting gRPC broker multiplexing.
    ///
    /// When it did, a gRPC plugin's line must end with a 7th field that
    /// reads as true; otherwise the 7th field is ignored unless it is a
    /// valid boolean, as a go-plugin host ignores it.
    pub const fn multiplex_requested(mut self, requested: bool) -> ParseOptions {
        self.multiplex_requested = requested;
        self
    }

    /// Whether these options request multiplexing.
    pub const fn requests_multiplex(self) -> bool {
        self.multiplex_requested
    }
}

/// Parses a line already checked to be UTF-8 and within the length limit.
pub(crate) fn parse_text(text: &str, options: ParseOptions) -> Result<HandshakeLine, ParseError> {
    let line = text.trim();
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    if let Some(offset) = line.find('\n') {
        return Err(ParseError::MultipleLines {
            offset,
            line: snippet(line),
        });
    }
    let mut fields = line.split('|');
    let (Some(core), Some(app), Some(network), Some(address)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(ParseError::FieldCount {
            count: line.split('|').count(),
            line: snippet(line),
        });
    };
    let core_version = parse_version(Field::CoreVersion, core)?;
    let app_version = parse_version(Field::AppVersion, app)?;
    let network = network.parse::<Network>()?;
    if address.is_empty() {
        return Err(ParseError::EmptyAddress);
    }
    let protocol = match fields.next() {
        Some(protocol) => protocol.parse::<Protocol>()?,
        None => Protocol::NetRpc,
    };
    let server_cert = match fields.next() {
        Some(cert) if cert.len() > MAX_IGNORED_CERT_FIELD_LEN => Some(decode_cert(cert)?),
        _ => None,
    };
    // Anything after the 7th field is ignored, as a Go host ignores it.
    let multiplex = read_multiplex(fields.next(), protocol, options)?;
    Ok(HandshakeLine {
        core_version,
        app_version,
        network,
        address: address.to_owned(),
        protocol,
        server_cert,
        multiplex,
    })
}

/// The 7th field: checked only when the host requested multiplexing of a
/// gRPC plugin; otherwise kept when it reads as a boolean and ignored when
/// it does not.
fn read_multiplex(
    field: Option<&str>,
    protocol: Protocol,
    options: ParseOptions,
) -> Result<Option<bool>, ParseError> {
    let value = field.and_then(parse_go_bool);
    if !options.multiplex_requested || protocol != Protocol::Grpc {
        return Ok(value);
    }
    match (field, value) {
        (None, _) => Err(ParseError::MultiplexNotSupported { announced: false }),
        (Some(text), None) => Err(ParseError::InvalidMultiplex {
            value: snippet(text),
        }),
        (Some(_), Some(false)) => Err(ParseError::MultiplexNotSupported { announced: true }),
        (Some(_), Some(true)) => Ok(Some(true)),
    }
}

fn decode_cert(cert: &str) -> Result<Vec<u8>, ParseError> {
    CERT_DECODER
        .decode(cert)
        .map_err(|err| ParseError::InvalidCertificate {
            value: snippet(cert),
            reason: base64_reason(&err),
        })
}

/// Explains a base64 decoding failure in words, with a hint for the likely
/// mix-ups (URL-safe base64, PEM).
fn base64_reason(err: &base64::DecodeError) -> String {
    match *err {
        base64::DecodeError::InvalidByte(offset, byte) => {
            let hint = match byte {
                b'-' | b'_' => {
                    "; expected the standard alphabet with `+` and `/`, not URL-safe base64 or PEM"
                }
                b'=' => "; `=` padding may only come at the end",
                _ => "",
            };
            format!(
                "unexpected character {:?} at offset {offset}{hint}",
                char::from(byte)
            )
        }
        base64::DecodeError::InvalidLength(len) => {
            format!("invalid length {len}: base64 cannot end with a lone character")
        }
        base64::DecodeError::InvalidLastSymbol(offset, byte) => format!(
            "the final character {:?} at offset {offset} encodes bits beyond the data",
            char::from(byte)
        ),
        base64::DecodeError::InvalidPadding => "misplaced `=` padding".to_owned(),
    }
}

/// A version field, read as Go's `strconv.Atoi` reads it.
fn parse_version(field: Field, text: &str) -> Result<u32, ParseError> {
    parse_go_int(text).ok_or_else(|| ParseError::InvalidNumber {
        field,
        value: snippet(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HandshakeLine, ParseError> {
        parse_text(text, ParseOptions::new())
    }

    fn parse_mux(text: &str) -> Result<HandshakeLine, ParseError> {
        parse_text(text, ParseOptions::new().multiplex_requested(true))
    }

    #[test]
    fn versions_are_read_like_go_atoi() {
        assert_eq!(parse_version(Field::AppVersion, "+5"), Ok(5));
        assert_eq!(parse_version(Field::AppVersion, "007"), Ok(7));
        for bad in ["", "-1", " 1", "1 ", "4294967296", "0x1"] {
            assert_eq!(
                parse_version(Field::AppVersion, bad),
                Err(ParseError::InvalidNumber {
                    field: Field::AppVersion,
                    value: bad.to_owned(),
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn four_fields_mean_netrpc() {
        let line = parse("1|1|tcp|127.0.0.1:1234").unwrap();
        assert_eq!(line.protocol, Protocol::NetRpc);
        assert_eq!(line.server_cert, None);
        assert_eq!(line.multiplex, None);
    }

    #[test]
    fn a_go_host_ignores_a_sixth_field_of_fifty_characters_or_fewer() {
        // Not base64 at all, but short enough that a Go host never decodes it.
        let fifty = "-".repeat(MAX_IGNORED_CERT_FIELD_LEN);
        let line = parse(&format!("1|1|unix|/tmp/p|grpc|{fifty}")).unwrap();
        assert_eq!(line.server_cert, None);
        // One more character and it must be a certificate.
        let err = parse(&format!("1|1|unix|/tmp/p|grpc|{fifty}-")).unwrap_err();
        assert!(
            matches!(err, ParseError::InvalidCertificate { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_go_host_ignores_fields_past_the_seventh() {
        let line = parse("1|1|unix|/tmp/p|grpc||true|extra|more").unwrap();
        assert_eq!(line.multiplex, Some(true));
        assert_eq!(line.to_line(), "1|1|unix|/tmp/p|grpc||true\n");
    }

    #[test]
    fn a_go_host_reads_the_seventh_field_only_when_it_requested_multiplexing() {
        let odd = "1|1|unix|/tmp/p|grpc||yes";
        assert_eq!(parse(odd).unwrap().multiplex, None);
        assert_eq!(
            parse_mux(odd),
            Err(ParseError::InvalidMultiplex {
                value: "yes".into()
            })
        );
        assert_eq!(
            parse_mux("1|1|unix|/tmp/p|grpc|"),
            Err(ParseError::MultiplexNotSupported { announced: false })
        );
        assert_eq!(
            parse_mux("1|1|unix|/tmp/p|grpc||false"),
            Err(ParseError::MultiplexNotSupported { announced: true })
        );
        assert_eq!(
            parse_mux("1|1|unix|/tmp/p|grpc||T").unwrap().multiplex,
            Some(true)
        );
        // A net/rpc plugin's multiplexing is never checked.
        assert_eq!(parse_mux("1|1|unix|/tmp/p|netrpc").unwrap().multiplex, None);
    }
}
