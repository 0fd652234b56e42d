use std::io;
use std::path::PathBuf;

/// What went wrong while binding, configuring or dialling a transport.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The unix socket path does not fit in `sockaddr_un.sun_path`.
    #[error(
        "unix socket path {path:?} is {len} bytes, over the {max}-byte limit of this platform; \
         set PLUGIN_UNIX_SOCKET_DIR or TMPDIR to a shorter directory"
    )]
    SocketPathTooLong {
        /// The path that was too long.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The longest path the platform accepts.
        max: usize,
    },
    /// Creating the private socket directory failed.
    #[error("cannot create a socket directory in {dir:?}: {source}")]
    SocketDir {
        /// The parent directory.
        dir: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Binding the unix socket failed.
    #[error("cannot bind unix socket in {dir:?}: {source}")]
    BindUnix {
        /// The directory the socket was to be created in.
        dir: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No port in the configured range could be bound on 127.0.0.1.
    #[error("couldn't bind a TCP listener on 127.0.0.1 in ports {min}..={max}: {source}")]
    BindTcp {
        /// Lowest port tried.
        min: u16,
        /// Highest port tried.
        max: u16,
        /// The error of the last attempt.
        source: io::Error,
    },
    /// `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT` do not form a usable range.
    #[error("invalid port range: {0}")]
    PortRange(String),
    /// The socket group named in `PLUGIN_UNIX_SOCKET_GROUP` does not exist.
    #[error(
        "unknown group {0:?} in PLUGIN_UNIX_SOCKET_GROUP: use an existing group name or a numeric gid"
    )]
    UnknownGroup(String),
    /// Changing the owner or mode of the socket or its directory failed.
    #[error("cannot set permissions on {path:?}: {source}")]
    Permissions {
        /// The file whose mode or owner was being set.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The address is not valid for its network.
    #[error("invalid {network} address {address:?}: {reason}")]
    InvalidAddress {
        /// `unix` or `tcp`.
        network: &'static str,
        /// The address text.
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// Connecting to the peer failed.
    #[error("cannot connect to {addr}: {source}")]
    Dial {
        /// Where we tried to connect.
        addr: String,
        /// The underlying error.
        source: io::Error,
    },
    /// This platform cannot use the requested transport.
    #[error("{0} is not supported on this platform")]
    Unsupported(&'static str),
}
