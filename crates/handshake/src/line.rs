//! The handshake line: its parts, its parser and its formatter.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use crate::MAX_LINE_LEN;
use crate::error::{ParseError, snippet, snippet_lossy};
use crate::parse::{ParseOptions, parse_text};

/// The kind of socket a plugin listens on (handshake field 2).
///
/// `Display` and `FromStr` use go-plugin's names, `unix` and `tcp`. The
/// default is what go-plugin listens on: unix sockets wherever the platform
/// has them, TCP on 127.0.0.1 elsewhere (Windows).
///
/// ```
/// use rpcplugin_handshake::Network;
///
/// assert_eq!("unix".parse::<Network>()?, Network::Unix);
/// assert_eq!(Network::Tcp.to_string(), "tcp");
/// assert!("udp".parse::<Network>().is_err());
/// # #[cfg(unix)]
/// assert_eq!(Network::default(), Network::Unix);
/// # Ok::<(), rpcplugin_handshake::ParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(unix, derive(Default))]
pub enum Network {
    /// A unix domain socket; the address is its path.
    #[cfg_attr(unix, default)]
    Unix,
    /// A TCP socket; the address is `host:port`, normally `127.0.0.1:<port>`.
    Tcp,
}

#[cfg(not(unix))]
impl Default for Network {
    fn default() -> Self {
        Network::Tcp
    }
}

impl Network {
    /// The go-plugin name: `"unix"` or `"tcp"`.
    ///
    /// ```
    /// assert_eq!(rpcplugin_handshake::Network::Unix.as_str(), "unix");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Unix => "unix",
            Network::Tcp => "tcp",
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Network {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unix" => Ok(Network::Unix),
            "tcp" => Ok(Network::Tcp),
            other => Err(ParseError::UnknownNetwork {
                value: snippet(other),
            }),
        }
    }
}

/// The RPC protocol a plugin serves (handshake field 4).
///
/// `Display` and `FromStr` use go-plugin's names, `grpc` and `netrpc`.
///
/// ```
/// use rpcplugin_handshake::Protocol;
///
/// assert_eq!("grpc".parse::<Protocol>()?, Protocol::Grpc);
/// assert_eq!(Protocol::NetRpc.to_string(), "netrpc");
/// assert!("GRPC".parse::<Protocol>().is_err());
/// # Ok::<(), rpcplugin_handshake::ParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// gRPC over HTTP/2.
    Grpc,
    /// Go's legacy `net/rpc` over yamux.
    NetRpc,
}

impl Protocol {
    /// The go-plugin name: `"grpc"` or `"netrpc"`.
    ///
    /// ```
    /// assert_eq!(rpcplugin_handshake::Protocol::Grpc.as_str(), "grpc");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::NetRpc => "netrpc",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "grpc" => Ok(Protocol::Grpc),
            "netrpc" => Ok(Protocol::NetRpc),
            other => Err(ParseError::UnknownProtocol {
                value: snippet(other),
            }),
        }
    }
}

/// Parses a boolean the way Go's `strconv.ParseBool` does.
///
/// `1`, `t`, `T`, `TRUE`, `true` and `True` are true; `0`, `f`, `F`,
/// `FALSE`, `false` and `False` are false; anything else is `None`. go-plugin
/// uses this for handshake field 6 and for `PLUGIN_MULTIPLEX_GRPC`.
///
/// ```
/// use rpcplugin_handshake::parse_go_bool;
///
/// assert_eq!(parse_go_bool("True"), Some(true));
/// assert_eq!(parse_go_bool("0"), Some(false));
/// assert_eq!(parse_go_bool("yes"), None);
/// assert_eq!(parse_go_bool("tRuE"), None);
/// ```
pub fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// One parsed go-plugin handshake line.
///
/// ```text
/// CORE|APPVER|NETWORK|ADDRESS|PROTOCOL[|SERVERCERT[|MUX]]
/// ```
///
/// [`parse`](Self::parse) (or `FromStr`) reads a line a plugin printed;
/// [`to_line`](Self::to_line) (or `Display`) writes one.
///
/// ```
/// use rpcplugin_handshake::{HandshakeLine, Network, Protocol};
///
/// let line = HandshakeLine {
///     core_version: 1,
///     app_version: 6,
///     network: Network::Unix,
///     address: "/tmp/plugin1893471020".into(),
///     protocol: Protocol::Grpc,
///     server_cert: None,
///     multiplex: None,
/// };
/// assert_eq!(line.to_line(), "1|6|unix|/tmp/plugin1893471020|grpc|\n");
/// assert_eq!(line.to_string().parse::<HandshakeLine>()?, line);
/// # Ok::<(), rpcplugin_handshake::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeLine {
    /// Field 0: the core protocol version; a host refuses any other value
    /// than [`CORE_PROTOCOL_VERSION`](crate::CORE_PROTOCOL_VERSION).
    pub core_version: u32,
    /// Field 1: the application protocol version the plugin chose.
    pub app_version: u32,
    /// Field 2: the kind of socket to dial.
    pub network: Network,
    /// Field 3: the socket path (unix) or `host:port` (tcp). To format a valid
    /// line it must be non-empty and hold no `|`, line break or surrounding
    /// whitespace.
    pub address: String,
    /// Field 4: the RPC protocol. A line with only 4 fields means
    /// [`Protocol::NetRpc`], as in go-plugin.
    pub protocol: Protocol,
    /// Field 5: the plugin's AutoMTLS certificate (DER), or `None` without
    /// TLS. `Some` of an empty vector formats like `None`. A certificate
    /// whose base64 is 50 characters or shorter (under 38 bytes of DER,
    /// smaller than any real certificate) is not read back by
    /// [`parse`](Self::parse) or by a go-plugin host.
    pub server_cert: Option<Vec<u8>>,
    /// Field 6: whether the plugin supports gRPC broker multiplexing; `None`
    /// when the field is absent, or is not a boolean and multiplexing was
    /// not requested (see [`ParseOptions`]).
    pub multiplex: Option<bool>,
}

impl HandshakeLine {
    /// Parses one handshake line as a go-plugin host reads it when it did
    /// not request multiplexing; same as [`parse_with`](Self::parse_with)
    /// and [`ParseOptions::new`].
    ///
    /// Surrounding whitespace, including a `\r\n` or `\n` terminator, is
    /// ignored. The line is split on every `|` into at least 4 fields:
    ///
    /// - fields 0 and 1 are `u32` versions, read as Go's `strconv.Atoi`
    ///   reads them (decimal, an optional sign: `+5` is 5); any core version
    ///   is accepted here (comparing it with
    ///   [`CORE_PROTOCOL_VERSION`](crate::CORE_PROTOCOL_VERSION) is the host's
    ///   job);
    /// - field 2 is `unix` or `tcp`, field 3 a non-empty address;
    /// - field 4 is `grpc` or `netrpc`, and defaults to `netrpc` when absent;
    /// - field 5, when longer than [`MAX_IGNORED_CERT_FIELD_LEN`] characters,
    ///   is the certificate's DER in standard base64, with or without `=`
    ///   padding; a shorter field 5 is ignored, as Go hosts ignore the short
    ///   configuration string plugins older than go-plugin 1.0 put there;
    /// - field 6 is a boolean as read by [`parse_go_bool`]; unless
    ///   multiplexing was requested, a field 6 that is not one is ignored;
    /// - fields after field 6 are ignored, as Go hosts ignore them.
    ///
    /// A line longer than [`MAX_LINE_LEN`] bytes, not UTF-8, holding more
    /// than one line, or with fewer than 4 fields is rejected, and so is a
    /// field that a Go host would also refuse (a version that is not a
    /// number, an unknown network or protocol, an empty address, a
    /// certificate that is not base64).
    ///
    /// [`MAX_IGNORED_CERT_FIELD_LEN`]: crate::MAX_IGNORED_CERT_FIELD_LEN
    ///
    /// ```
    /// use rpcplugin_handshake::{HandshakeLine, Network, ParseError, Protocol};
    ///
    /// let line = HandshakeLine::parse(b"1|1|tcp|127.0.0.1:10000|grpc|\r\n")?;
    /// assert_eq!(line.network, Network::Tcp);
    /// assert_eq!(line.address, "127.0.0.1:10000");
    /// assert_eq!(line.protocol, Protocol::Grpc);
    /// assert_eq!(line.server_cert, None);
    ///
    /// // What a Go host accepts: a signed version, a short legacy 6th
    /// // field, an unreadable 7th field and an 8th field.
    /// let line = HandshakeLine::parse(b"1|+5|unix|/tmp/p|grpc|e30=|maybe|extra\n")?;
    /// assert_eq!(line.app_version, 5);
    /// assert_eq!(line.server_cert, None);
    /// assert_eq!(line.multiplex, None);
    ///
    /// let err = HandshakeLine::parse(b"Hello from the plugin!\n").unwrap_err();
    /// assert!(matches!(err, ParseError::FieldCount { count: 1, .. }));
    /// # Ok::<(), ParseError>(())
    /// ```
    pub fn parse(line: &[u8]) -> Result<HandshakeLine, ParseError> {
        HandshakeLine::parse_with(line, ParseOptions::new())
    }

    /// Parses one handshake line as a go-plugin host that asked for what
    /// `options` say.
    ///
    /// Everything in [`parse`](Self::parse) applies. In addition, when
    /// [`ParseOptions::multiplex_requested`] is set and the protocol is
    /// gRPC, field 6 must be present and true: an absent or false field is
    /// [`ParseError::MultiplexNotSupported`], anything else that is not a
    /// boolean [`ParseError::InvalidMultiplex`]. A go-plugin host makes the
    /// same checks when `GRPCBrokerMultiplex` is set.
    ///
    /// ```
    /// use rpcplugin_handshake::{HandshakeLine, ParseError, ParseOptions};
    ///
    /// let mux = ParseOptions::new().multiplex_requested(true);
    /// let line = HandshakeLine::parse_with(b"1|1|unix|/tmp/p|grpc||true\n", mux)?;
    /// assert_eq!(line.multiplex, Some(true));
    ///
    /// let err = HandshakeLine::parse_with(b"1|1|unix|/tmp/p|grpc|\n", mux).unwrap_err();
    /// assert_eq!(err, ParseError::MultiplexNotSupported { announced: false });
    /// # Ok::<(), ParseError>(())
    /// ```
    pub fn parse_with(line: &[u8], options: ParseOptions) -> Result<HandshakeLine, ParseError> {
        let unterminated = line.strip_suffix(b"\n").unwrap_or(line);
        let unterminated = unterminated.strip_suffix(b"\r").unwrap_or(unterminated);
        if unterminated.len() > MAX_LINE_LEN {
            return Err(ParseError::TooLong {
                len: unterminated.len(),
                start: snippet_lossy(unterminated),
            });
        }
        let text = std::str::from_utf8(line).map_err(|err| ParseError::NotUtf8 {
            valid_up_to: err.valid_up_to(),
            text: snippet_lossy(line),
        })?;
        parse_text(text, options)
    }

    /// Formats the line as a plugin prints it, with a trailing `\n`.
    ///
    /// The certificate is written as standard base64 without `=` padding, as
    /// go-plugin does (Go hosts reject padding); without a certificate the
    /// field is empty, so the line ends with `|`. Field 6 is written only when
    /// [`multiplex`](Self::multiplex) is `Some`.
    ///
    /// ```
    /// use rpcplugin_handshake::{HandshakeLine, Network, Protocol};
    ///
    /// let line = HandshakeLine {
    ///     core_version: 1,
    ///     app_version: 1,
    ///     network: Network::Unix,
    ///     address: "/tmp/plugin77".into(),
    ///     protocol: Protocol::Grpc,
    ///     server_cert: Some(vec![0x30, 0x82, 0x02]),
    ///     multiplex: Some(true),
    /// };
    /// assert_eq!(line.to_line(), "1|1|unix|/tmp/plugin77|grpc|MIIC|true\n");
    /// ```
    pub fn to_line(&self) -> String {
        format!("{self}\n")
    }
}

impl fmt::Display for HandshakeLine {
    /// The line without its trailing `\n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}|{}|{}|{}|{}|",
            self.core_version, self.app_version, self.network, self.address, self.protocol
        )?;
        if let Some(cert) = &self.server_cert {
            f.write_str(&STANDARD_NO_PAD.encode(cert))?;
        }
        if let Some(multiplex) = self.multiplex {
            write!(f, "|{multiplex}")?;
        }
        Ok(())
    }
}

impl FromStr for HandshakeLine {
    type Err = ParseError;

    /// Same as [`HandshakeLine::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HandshakeLine::parse(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_bools() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Some(false), "{f}");
        }
        for bad in ["", "yes", "no", "tRUE", "2", " true"] {
            assert_eq!(parse_go_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_limit_excludes_the_terminator() {
        let mut line = b"1|1|unix|/".to_vec();
        line.resize(MAX_LINE_LEN - "|grpc|".len(), b'a');
        line.extend_from_slice(b"|grpc|");
        assert_eq!(line.len(), MAX_LINE_LEN);
        assert!(HandshakeLine::parse(&line).is_ok());
        line.extend_from_slice(b"\r\n");
        assert!(HandshakeLine::parse(&line).is_ok());
        line.insert(5, b'a');
        assert!(matches!(
            HandshakeLine::parse(&line),
            Err(ParseError::TooLong { len, .. }) if len == MAX_LINE_LEN + 1
        ));
    }

    #[test]
    fn empty_cert_formats_like_none() {
        let mut line = HandshakeLine::parse(b"1|1|unix|/tmp/p|grpc|").unwrap();
        line.server_cert = Some(Vec::new());
        assert_eq!(line.to_line(), "1|1|unix|/tmp/p|grpc|\n");
    }
}
