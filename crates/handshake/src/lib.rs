//! Sans-IO parsing, formatting and negotiation of the go-plugin handshake.
//!
//! A go-plugin plugin announces itself by printing one `|`-separated line on
//! its stdout, for example:
//!
//! ```text
//! 1|6|unix|/tmp/plugin1893471020|grpc|MIICdzCCAdmgAwIBAgIU...
//! ```
//!
//! This crate turns that line into a [`HandshakeLine`] and back, checks the
//! magic cookie a host hands to its plugins ([`MagicCookie`]), and negotiates
//! the application protocol version ([`parse_protocol_versions`],
//! [`negotiate`], [`format_protocol_versions`]). The names of the environment
//! variables involved live in [`env`](mod@env).
//!
//! The parser accepts every line a go-plugin host (v1.8.0) accepts: versions
//! are read like Go's `strconv.Atoi` (`+5` is 5, here and in
//! `PLUGIN_PROTOCOL_VERSIONS`), a 6th field of 50 characters or fewer is
//! ignored rather than read as a certificate, fields after the 7th are
//! ignored, and the 7th field is only checked when the host says it requested
//! multiplexing ([`HandshakeLine::parse_with`], [`ParseOptions`]). Lines a Go
//! host would refuse are refused with an error that names the field and
//! quotes it.
//!
//! ```
//! use rpcplugin_handshake::{HandshakeLine, Network, Protocol};
//!
//! let line = HandshakeLine::parse(b"1|1|unix|/tmp/plugin77|grpc||true\n")?;
//! assert_eq!(line.network, Network::Unix);
//! assert_eq!(line.protocol, Protocol::Grpc);
//! assert_eq!(line.server_cert, None);
//! assert_eq!(line.multiplex, Some(true));
//! assert_eq!(line.to_line(), "1|1|unix|/tmp/plugin77|grpc||true\n");
//! # Ok::<(), rpcplugin_handshake::ParseError>(())
//! ```
//!
//! **Architecture Invariant:** this crate is sans-IO. It reads no files,
//! sockets, pipes or environment variables and starts no processes or
//! runtimes: callers read the line and the variables themselves and hand the
//! values in. It knows nothing about tokio, tonic or rustls; certificates are
//! opaque DER bytes here.
//!
//! **API Boundary:** every error a peer can cause is a value
//! ([`ParseError`], [`CookieError`]); no input makes this crate panic or
//! allocate more than [`MAX_LINE_LEN`] bytes for a line.

#![warn(unreachable_pub)]

mod cookie;
pub mod env;
mod error;
mod line;
mod number;
mod parse;
mod version;

pub use crate::cookie::{CookieError, MagicCookie};
pub use crate::error::{Field, ParseError};
pub use crate::line::{HandshakeLine, Network, Protocol, parse_go_bool};
pub use crate::parse::{MAX_IGNORED_CERT_FIELD_LEN, ParseOptions};
pub use crate::version::{
    ProtocolVersions, format_protocol_versions, negotiate, parse_protocol_versions,
};

/// The go-plugin core protocol version, the first field of every handshake
/// line. Only version 1 has ever existed.
///
/// ```
/// use rpcplugin_handshake::{CORE_PROTOCOL_VERSION, HandshakeLine};
///
/// let line = HandshakeLine::parse(b"1|1|tcp|127.0.0.1:1234|grpc")?;
/// assert_eq!(line.core_version, CORE_PROTOCOL_VERSION);
/// # Ok::<(), rpcplugin_handshake::ParseError>(())
/// ```
pub const CORE_PROTOCOL_VERSION: u32 = 1;

/// The longest handshake line accepted, in bytes, not counting its `\n` or
/// `\r\n` terminator. Go hosts read the line with a 64 KiB scanner buffer.
///
/// A longer line is a [`ParseError::TooLong`]; it is rejected before any
/// allocation.
///
/// ```
/// use rpcplugin_handshake::{HandshakeLine, MAX_LINE_LEN, ParseError};
///
/// let long = vec![b'1'; MAX_LINE_LEN + 1];
/// assert!(matches!(HandshakeLine::parse(&long), Err(ParseError::TooLong { .. })));
/// ```
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
