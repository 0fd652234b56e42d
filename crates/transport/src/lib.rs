//! Listeners and dialers for go-plugin connections: unix sockets in a
//! private directory, and TCP on 127.0.0.1 only.
//!
//! A plugin binds a [`Listener`] from a [`ListenConfig`] (usually built with
//! [`ListenConfig::from_env`] from the variables its host set), prints the
//! listener's [`Addr`] in its handshake line, and accepts [`Stream`]s. A host
//! reads the address back and calls [`dial`].
//!
//! Security properties this crate keeps:
//! - unix sockets live in a directory only the current user can enter
//!   (mode 0700), and the socket itself is mode 0600; with a socket group
//!   (`PLUGIN_UNIX_SOCKET_GROUP`) the socket becomes 0660 and the directory
//!   0710, both owned by that group;
//! - TCP listeners bind 127.0.0.1 and nothing else;
//! - every accepted or dialled TCP connection has `TCP_NODELAY` set (a unary
//!   gRPC call over TLS otherwise waits ~40 ms on Nagle's algorithm);
//! - the socket file, and the directory when this crate created it, are
//!   removed when the [`Listener`] is dropped.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rpcplugin_transport::{ListenConfig, Listener, dial};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let listener = Listener::bind(&ListenConfig::default())?;
//! let addr = listener.local_addr().clone();
//! let server = tokio::spawn(async move {
//!     let mut conn = listener.accept().await?;
//!     conn.write_all(b"hi").await?;
//!     Ok::<_, std::io::Error>(())
//! });
//! let mut conn = dial(&addr).await?;
//! let mut buf = [0u8; 2];
//! conn.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"hi");
//! server.await??;
//! # Ok(()) }
//! ```

#![warn(unreachable_pub)]

mod addr;
mod error;
mod listener;
mod stream;
#[cfg(unix)]
mod unix;

pub use addr::Addr;
pub use error::TransportError;
pub use listener::{ListenConfig, Listener};
pub use stream::{Stream, dial};
#[cfg(unix)]
pub use unix::{private_dir, private_dir_in};

pub use rpcplugin_handshake::Network;
