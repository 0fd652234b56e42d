//! go-plugin compatible plugins and hosts in Rust.
//!
//! A plugin is a program a host launches as a subprocess and talks to over
//! gRPC, secured by automatic mutual TLS. This crate speaks the protocol of
//! HashiCorp's [go-plugin](https://github.com/hashicorp/go-plugin) (used by
//! Terraform, OpenTofu, Packer, Vault and Nomad), so a Rust plugin can serve
//! a Go host and a Rust host can drive Go and Python plugins.
//!
//! ## A plugin
//! ```no_run
//! use rpcplugin::{PluginServer, Routes};
//! use rpcplugin_kv::MemoryKv;
//!
//! fn main() -> std::process::ExitCode {
//!     PluginServer::new("BASIC_PLUGIN", "hello")
//!         .version(1, |_ctx| Routes::new(MemoryKv::default().into_service()))
//!         .run()
//! }
//! ```
//!
//! ## A host
//! ```no_run
//! use rpcplugin::Client;
//! use rpcplugin_kv::proto::{kv_client::KvClient, PutRequest};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut plugin = Client::builder("./kv-plugin")
//!         .cookie("BASIC_PLUGIN", "hello")
//!         .versions([1])
//!         .start()
//!         .await?;
//!     let mut kv = KvClient::new(plugin.channel());
//!     kv.put(PutRequest { key: "hello".into(), value: b"world".to_vec().into() }).await?;
//!     plugin.kill().await?;
//!     Ok(())
//! }
//! ```
//!
//! `plugin.channel()` is a [`PluginChannel`]: any tonic-generated client
//! takes it, clones are cheap and share the plugin's one HTTP/2 connection,
//! and once that connection is gone every call fails at once with status
//! `Unavailable` (source [`ChannelError::Closed`]); there is no reconnect.
//!
//! ## Crates
//! This facade re-exports the workspace's focused crates, which can also be
//! used alone: [`handshake`] (sans-IO handshake line, cookie and version
//! negotiation), [`certs`] (AutoMTLS certificates and pinned rustls
//! configurations), [`transport`] (unix sockets and loopback TCP) and
//! [`runtime`] (the tonic server and client).
//!
//! ## Build note
//! Build with `AWS_LC_SYS_NO_JITTER_ENTROPY=1` (in `.cargo/config.toml`
//! `[env]`): otherwise aws-lc's jitter entropy adds up to ~90 ms to the start
//! of every plugin and host process.

pub use rpcplugin_certs as certs;
pub use rpcplugin_handshake as handshake;
pub use rpcplugin_runtime as runtime;
pub use rpcplugin_transport as transport;

pub use rpcplugin_certs::{Identity, KeyType, PeerTrust};
pub use rpcplugin_runtime::{
    Broker, ChannelError, Client, ClientBuilder, ClientSet, ClientTls, Error, HealthReporter,
    MAX_MESSAGE_SIZE, PluginChannel, PluginContext, PluginExit, PluginServer, ReattachConfig,
    Routes, StopHandle, TlsInfo,
};
pub use rpcplugin_transport::{Addr, Transport};
