//! Names of the environment variables a go-plugin host sets for its plugin.
//!
//! The magic cookie variable is not listed: its name is chosen by each
//! application (see [`MagicCookie`](crate::MagicCookie)). This module holds
//! names only; reading the variables is up to the caller.
//!
//! ```
//! use rpcplugin_handshake::env;
//!
//! // A host building its child's environment.
//! let vars = [
//!     (env::PLUGIN_MIN_PORT, "10000".to_owned()),
//!     (env::PLUGIN_MAX_PORT, "25000".to_owned()),
//!     (env::PLUGIN_PROTOCOL_VERSIONS, rpcplugin_handshake::format_protocol_versions(&[5, 6])),
//! ];
//! assert_eq!(vars[2], ("PLUGIN_PROTOCOL_VERSIONS", "5,6".to_owned()));
//! assert!(env::ALL.contains(&env::PLUGIN_CLIENT_CERT));
//! ```

/// Lowest TCP port a plugin may listen on (decimal). Only TCP listeners,
/// i.e. Windows plugins, use it; Go hosts send `10000` by default.
///
/// ```
/// assert_eq!(rpcplugin_handshake::env::PLUGIN_MIN_PORT, "PLUGIN_MIN_PORT");
/// ```
pub const PLUGIN_MIN_PORT: &str = "PLUGIN_MIN_PORT";

/// Highest TCP port a plugin may listen on (decimal). Go hosts send `25000`
/// by default.
///
/// ```
/// assert_eq!(rpcplugin_handshake::env::PLUGIN_MAX_PORT, "PLUGIN_MAX_PORT");
/// ```
pub const PLUGIN_MAX_PORT: &str = "PLUGIN_MAX_PORT";

/// The application protocol versions the host supports, comma-separated in
/// any order (see [`parse_protocol_versions`](crate::parse_protocol_versions)).
///
/// ```
/// assert_eq!(rpcplugin_handshake::env::PLUGIN_PROTOCOL_VERSIONS, "PLUGIN_PROTOCOL_VERSIONS");
/// ```
pub const PLUGIN_PROTOCOL_VERSIONS: &str = "PLUGIN_PROTOCOL_VERSIONS";

/// Set (to `true`) when the host wants gRPC broker multiplexing. Multiplexing
/// is on when the value is true for [`parse_go_bool`](crate::parse_go_bool);
/// the plugin appends the 7th handshake field whenever the value is
/// non-empty.
///
/// ```
/// assert_eq!(rpcplugin_handshake::env::PLUGIN_MULTIPLEX_GRPC, "PLUGIN_MULTIPLEX_GRPC");
/// ```
pub const PLUGIN_MULTIPLEX_GRPC: &str = "PLUGIN_MULTIPLEX_GRPC";

/// The host's AutoMTLS certificate as PEM text. A plugin that receives it must
/// serve TLS and require this certificate from its client.
///
/// ```
/// assert_eq!(rpcplugin_handshake::env::PLUGIN_CLIENT_CERT, "PLUGIN_CLIENT_CERT");
/// ```
pub const PLUGIN_CLIENT_CERT: &str = "PLUGIN_CLIENT_CERT";

/// Directory in which the plugin creates its unix sockets.
///
/// ```
/// assert_eq!(rpcplugin_handshake::env::PLUGIN_UNIX_SOCKET_DIR, "PLUGIN_UNIX_SOCKET_DIR");
/// ```
pub const PLUGIN_UNIX_SOCKET_DIR: &str = "PLUGIN_UNIX_SOCKET_DIR";

/// Group name or numeric gid that should own the plugin's unix sockets
/// (which are then made mode 0660).
///
/// ```
/// assert_eq!(rpcplugin_handshake::env::PLUGIN_UNIX_SOCKET_GROUP, "PLUGIN_UNIX_SOCKET_GROUP");
/// ```
pub const PLUGIN_UNIX_SOCKET_GROUP: &str = "PLUGIN_UNIX_SOCKET_GROUP";

/// Every variable name in this module.
///
/// ```
/// use rpcplugin_handshake::env;
///
/// assert_eq!(env::ALL.len(), 7);
/// assert!(env::ALL.iter().all(|name| name.starts_with("PLUGIN_")));
/// ```
pub const ALL: &[&str] = &[
    PLUGIN_MIN_PORT,
    PLUGIN_MAX_PORT,
    PLUGIN_PROTOCOL_VERSIONS,
    PLUGIN_MULTIPLEX_GRPC,
    PLUGIN_CLIENT_CERT,
    PLUGIN_UNIX_SOCKET_DIR,
    PLUGIN_UNIX_SOCKET_GROUP,
];
