//! The error type of handshake line parsing, and the field names it uses.

use std::fmt;

use crate::MAX_LINE_LEN;

/// How many characters of offending text an error message keeps.
const SNIPPET_CHARS: usize = 60;

/// One field of a handshake line, numbered from 0 as in go-plugin's
/// documentation.
///
/// Its `Display` form is used in error messages, e.g. `field 2 (network)`.
///
/// ```
/// use rpcplugin_handshake::Field;
///
/// assert_eq!(Field::Network.index(), 2);
/// assert_eq!(Field::Network.to_string(), "field 2 (network)");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Field 0: the core protocol version, always `1`.
    CoreVersion,
    /// Field 1: the negotiated application protocol version.
    AppVersion,
    /// Field 2: the network, `unix` or `tcp`.
    Network,
    /// Field 3: the address to dial.
    Address,
    /// Field 4: the RPC protocol, `grpc` or `netrpc`.
    Protocol,
    /// Field 5: the plugin's AutoMTLS certificate, base64 of its DER.
    ServerCert,
    /// Field 6: whether the plugin supports gRPC broker multiplexing.
    Multiplex,
}

impl Field {
    /// The field's position in the line, counting from 0.
    ///
    /// ```
    /// use rpcplugin_handshake::Field;
    ///
    /// assert_eq!(Field::CoreVersion.index(), 0);
    /// assert_eq!(Field::Multiplex.index(), 6);
    /// ```
    pub fn index(self) -> usize {
        match self {
            Field::CoreVersion => 0,
            Field::AppVersion => 1,
            Field::Network => 2,
            Field::Address => 3,
            Field::Protocol => 4,
            Field::ServerCert => 5,
            Field::Multiplex => 6,
        }
    }

    /// A short human name for the field.
    ///
    /// ```
    /// use rpcplugin_handshake::Field;
    ///
    /// assert_eq!(Field::ServerCert.name(), "server certificate");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Field::CoreVersion => "core protocol version",
            Field::AppVersion => "app protocol version",
            Field::Network => "network",
            Field::Address => "address",
            Field::Protocol => "protocol",
            Field::ServerCert => "server certificate",
            Field::Multiplex => "multiplexing flag",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field {} ({})", self.index(), self.name())
    }
}

/// Why a handshake line (or one of its parts) was rejected.
///
/// Every variant that carries offending text keeps at most about 60
/// characters of it (a cut is marked with `…`), so an error message stays
/// readable whatever the peer sent.
///
/// ```
/// use rpcplugin_handshake::{HandshakeLine, ParseError};
///
/// let err = HandshakeLine::parse(b"1|1|udp|127.0.0.1:1234|grpc|").unwrap_err();
/// assert_eq!(err, ParseError::UnknownNetwork { value: "udp".into() });
/// assert_eq!(err.to_string(), r#"field 2 (network) must be "unix" or "tcp", found "udp""#);
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The line is longer than [`MAX_LINE_LEN`] bytes.
    #[error(
        "handshake line is {len} bytes long, over the limit of {max} bytes (it starts with {start:?})",
        max = MAX_LINE_LEN
    )]
    TooLong {
        /// Length of the line in bytes, without its line terminator.
        len: usize,
        /// The start of the line, invalid UTF-8 replaced by `�`.
        start: String,
    },

    /// The line is not valid UTF-8.
    #[error(
        "handshake line is not valid UTF-8 (first invalid byte at offset {valid_up_to}): {text:?}"
    )]
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        valid_up_to: usize,
        /// The start of the line, invalid UTF-8 replaced by `�`.
        text: String,
    },

    /// The line holds nothing but whitespace.
    #[error(
        "handshake line is empty: the plugin printed a blank line where its handshake was expected"
    )]
    Empty,

    /// The input holds a line break before its end: more than one line was
    /// handed in.
    #[error(
        "handshake line contains a line break at byte {offset}; pass one line at a time: {line:?}"
    )]
    MultipleLines {
        /// Byte offset of the first `\n`, in the trimmed line.
        offset: usize,
        /// The start of the trimmed input.
        line: String,
    },

    /// The line has fewer than 4 `|`-separated fields.
    #[error(
        "unrecognized handshake line (expected at least 4 `|`-separated fields, found {count}): {line:?}; \
         the plugin may have printed something to stdout before its handshake line"
    )]
    FieldCount {
        /// The number of fields found.
        count: usize,
        /// The start of the trimmed line.
        line: String,
    },

    /// A version field is not a decimal `u32`.
    #[error("{field} is not a decimal number from 0 to {max}: {value:?}", max = u32::MAX)]
    InvalidNumber {
        /// [`Field::CoreVersion`] or [`Field::AppVersion`].
        field: Field,
        /// The field's text.
        value: String,
    },

    /// The network field is neither `unix` nor `tcp`.
    #[error("{} must be \"unix\" or \"tcp\", found {value:?}", Field::Network)]
    UnknownNetwork {
        /// The field's text.
        value: String,
    },

    /// The address field is empty.
    #[error(
        "{} is empty: the plugin gave no address to connect to",
        Field::Address
    )]
    EmptyAddress,

    /// The protocol field is neither `grpc` nor `netrpc`.
    #[error("{} must be \"grpc\" or \"netrpc\", found {value:?}", Field::Protocol)]
    UnknownProtocol {
        /// The field's text.
        value: String,
    },

    /// The certificate field is not valid standard-alphabet base64.
    #[error("{} is not valid base64 ({reason}): {value:?}", Field::ServerCert)]
    InvalidCertificate {
        /// The field's text.
        value: String,
        /// What the base64 decoder objected to.
        reason: String,
    },

    /// The host requested multiplexing and the multiplexing field is not a
    /// boolean (see [`ParseOptions`](crate::ParseOptions)).
    #[error(
        "{} must be a boolean such as \"true\" or \"false\", found {value:?}",
        Field::Multiplex
    )]
    InvalidMultiplex {
        /// The field's text.
        value: String,
    },

    /// The host requested gRPC broker multiplexing (`PLUGIN_MULTIPLEX_GRPC`)
    /// and the plugin does not support it: its line has no field 6, or
    /// field 6 is false (see [`ParseOptions`](crate::ParseOptions)).
    #[error(
        "the host requested gRPC broker multiplexing and the plugin does not support it: {}",
        if *announced {
            "its handshake line says false in field 6 (multiplexing flag)"
        } else {
            "its handshake line has no field 6 (multiplexing flag); \
             a Go plugin needs github.com/hashicorp/go-plugin 1.6.0 or later and a rebuild"
        }
    )]
    MultiplexNotSupported {
        /// Whether the plugin said so (field 6 false) rather than leaving
        /// field 6 out.
        announced: bool,
    },
}

/// At most [`SNIPPET_CHARS`] characters of `text`, with `…` marking a cut.
pub(crate) fn snippet(text: &str) -> String {
    match text.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => {
            let mut out = String::with_capacity(cut + '…'.len_utf8());
            out.push_str(text.get(..cut).unwrap_or_default());
            out.push('…');
            out
        }
        None => text.to_owned(),
    }
}

/// Like [`snippet`], for bytes that may not be UTF-8.
pub(crate) fn snippet_lossy(bytes: &[u8]) -> String {
    // Four bytes per character is enough to fill the snippet.
    let head = bytes.get(..SNIPPET_CHARS * 4).unwrap_or(bytes);
    let text = String::from_utf8_lossy(head);
    let mut out = snippet(&text);
    if head.len() < bytes.len() && !out.ends_with('…') {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_keeps_short_text() {
        assert_eq!(snippet("abc"), "abc");
        assert_eq!(snippet(""), "");
        let sixty = "x".repeat(SNIPPET_CHARS);
        assert_eq!(snippet(&sixty), sixty);
    }

    #[test]
    fn snippet_cuts_on_char_boundaries() {
        let long = "é".repeat(100);
        let cut = snippet(&long);
        assert_eq!(cut.chars().count(), SNIPPET_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn snippet_lossy_marks_cut_bytes() {
        assert_eq!(snippet_lossy(b"ab\xffc"), "ab\u{fffd}c");
        let long = vec![b'a'; 1000];
        assert_eq!(
            snippet_lossy(&long),
            format!("{}…", "a".repeat(SNIPPET_CHARS))
        );
        // A cut in the middle of a multi-byte character still reads as a cut.
        let mut bytes = vec![b'a'; SNIPPET_CHARS * 4 - 1];
        bytes.extend_from_slice("é".as_bytes());
        assert!(snippet_lossy(&bytes).ends_with('…'));
    }

    #[test]
    fn field_display_names_index_and_name() {
        let all = [
            Field::CoreVersion,
            Field::AppVersion,
            Field::Network,
            Field::Address,
            Field::Protocol,
            Field::ServerCert,
            Field::Multiplex,
        ];
        let shown: Vec<String> = all.iter().map(ToString::to_string).collect();
        expect_test::expect![[r#"
            [
                "field 0 (core protocol version)",
                "field 1 (app protocol version)",
                "field 2 (network)",
                "field 3 (address)",
                "field 4 (protocol)",
                "field 5 (server certificate)",
                "field 6 (multiplexing flag)",
            ]
        "#]]
        .assert_debug_eq(&shown);
    }
}
