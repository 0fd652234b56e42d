//! go-plugin compatible plugins and hosts in Rust.
//!
//! A plugin is a program a host launches as a subprocess and talks to over
//! gRPC, secured by automatic mutual TLS. This crate speaks the protocol of
//! HashiCorp's [go-plugin](https://github.com/hashicorp/go-plugin) (used by
//! Terraform, OpenTofu, Packer, Vault and Nomad), so a Rust plugin can serve
//! a Go host and a Rust host can drive Go and Python plugins.
//!
//! Start with the guide, which goes from an empty directory to a plugin and
//! a host serving your own `.proto`:
//! [docs/guide.md](https://github.com/rpcplugin/rpcplugin/blob/main/docs/guide.md).
//! The `rpcplugin-example-greeter` crate in the repository is that guide's
//! code.
//!
//! ## A plugin
//! A plugin checks the magic cookie its host set, serves your tonic services
//! beside go-plugin's own, and prints its handshake line:
//! ```no_run
//! use rpcplugin::{PluginServer, Routes};
//!
//! fn main() -> std::process::ExitCode {
//!     PluginServer::new("GREETER_PLUGIN", "hello")
//!         // Your services, e.g. Routes::new(GreeterServer::new(MyGreeter)).
//!         .version(1, |_ctx| Routes::default())
//!         .run()
//! }
//! ```
//!
//! ## A host
//! A host launches the plugin, reads its handshake, connects over mutual
//! TLS and hands you a tonic [`Channel`](tonic::transport::Channel) for your
//! generated clients:
//! ```no_run
//! use rpcplugin::Client;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), rpcplugin::Error> {
//!     let mut plugin = Client::builder("./greeter-plugin")
//!         .cookie("GREETER_PLUGIN", "hello")
//!         .versions([1])
//!         .start()
//!         .await?;
//!     plugin.ping().await?;
//!     let _channel = plugin.channel(); // e.g. GreeterClient::new(_channel)
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
//! ## Your own protos
//! [`rpcplugin-build`](https://docs.rs/rpcplugin-build) compiles them in
//! `build.rs` without `protoc`, and [`include_proto!`] brings the generated
//! code in. The generated code uses the [`tonic`] and [`prost`] re-exported
//! here, so your crate needs no `tonic` or `prost` dependency of its own and
//! never has to match their versions. If you write tonic code by hand, use
//! `rpcplugin::tonic` too (for example `#[rpcplugin::tonic::async_trait]`).
//!
//! ## What this crate exports
//! Every item is listed in one place, the `pub use` block of this crate's
//! `lib.rs`: the plugin side, the host side, the errors a user matches on
//! and the types that appear in their signatures. The focused
//! crates behind it can also be used alone for lower-level work:
//! `rpcplugin-handshake` (sans-IO handshake line, cookie and version
//! negotiation), `rpcplugin-certs` (AutoMTLS certificates and pinned rustls
//! configurations), `rpcplugin-transport` (unix sockets and loopback TCP) and
//! `rpcplugin-runtime` (the tonic server and client).
//!
//! ## Fast start
//! Build plugins and hosts with `AWS_LC_SYS_NO_JITTER_ENTROPY=1`, set in your
//! project's `.cargo/config.toml`:
//! ```toml
//! [env]
//! AWS_LC_SYS_NO_JITTER_ENTROPY = "1"
//! ```
//! Otherwise aws-lc (the TLS crypto library) seeds its random generator from
//! CPU jitter, which costs 30 to 90 ms at the start of every plugin and host
//! process; with it, aws-lc seeds from the operating system. A library cannot
//! set this for you: it is read when aws-lc-sys is built. A host built
//! without it logs one `info` line naming this fix when its first random
//! draw was slow.

#![warn(unreachable_pub)]

// The whole public API. Generated go-plugin protos, fuzz hooks and test
// helpers stay in the `internal` modules of the focused crates.
pub use rpcplugin_runtime::{
    // Plugin side: serve your tonic services behind go-plugin's handshake.
    BROKER_TIMEOUT,
    Broker,
    BrokerConnection,
    BrokerListener,
    // Host side: launch or reattach to a plugin and call it.
    ChannelError,
    Client,
    ClientBuilder,
    ClientSet,
    ClientTls,
    DebugServer,
    DebugStop,
    DialOptions,
    // Both sides.
    Error,
    HclogLayer,
    HealthReporter,
    MAX_MESSAGE_SIZE,
    PLUGIN_HEALTH_SERVICE,
    PluginChannel,
    PluginContext,
    PluginExit,
    PluginServer,
    ReattachAddr,
    ReattachConfig,
    ResponseBody,
    ResponseFuture,
    Routes,
    Runner,
    SHUTDOWN_GRACE,
    StopHandle,
    TlsInfo,
    init_plugin_logging,
};
// Certificates: AutoMTLS key types, manual TLS identities and trust.
pub use rpcplugin_certs::{
    CertError, Identity, KeyType, PeerTrust, parse_cert_pem, parse_certs_pem,
};
// What a handshake line carries, and the errors it can raise.
pub use rpcplugin_handshake::{CookieError, HandshakeLine, Network, ParseError, Protocol};
// Where a plugin listens.
pub use rpcplugin_transport::{Addr, TransportError};

/// The tonic version this crate is built on, for your services and clients.
pub use tonic;

/// The prost version this crate is built on, for your messages.
pub use prost;

/// The codec that code generated by `rpcplugin-build` names; not for direct
/// use.
#[doc(hidden)]
pub use tonic_prost;

/// Includes the code `rpcplugin-build` generated for one proto package.
///
/// `package` is the proto's `package` name (the file written to `OUT_DIR` is
/// `<package>.rs`). Put it inside a module of your choosing:
///
/// ```ignore
/// pub mod greeter {
///     rpcplugin::include_proto!("greeter");
/// }
/// use greeter::greeter_server::{Greeter, GreeterServer};
/// ```
#[macro_export]
macro_rules! include_proto {
    ($package:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
