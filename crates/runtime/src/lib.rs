//! The go-plugin runtime on tonic: [`PluginServer`] for the plugin side and
//! [`Client`] for the host side.
//!
//! Both speak go-plugin's protocol exactly (handshake line, AutoMTLS with
//! pinned certificates, `grpc.health.v1`, `plugin.GRPCController`,
//! `plugin.GRPCStdio`, `plugin.GRPCBroker`, hclog logs), so either side can
//! face a Go (hashicorp/go-plugin), Python (pyvider-rpcplugin) or Rust peer.
//!
//! Most users want the `rpcplugin` facade crate, which re-exports this
//! crate's public items with the certificate and handshake types they use.
//!
//! ## Build note
//! aws-lc's CPU-jitter entropy source costs up to ~90 ms on the first random
//! draw of every process. Build plugins and hosts with
//! `AWS_LC_SYS_NO_JITTER_ENTROPY=1` (for example in `.cargo/config.toml`
//! under `[env]`) to seed from the operating system instead.

#![warn(unreachable_pub)]

mod authority;
mod broker;
mod channel;
mod client;
mod conn;
mod error;
mod incoming;
mod io_util;
mod logging;
mod mux;
mod parent;
mod process;
mod proto;
mod reattach;
mod rlimit;
mod server;
mod services;
mod shutdown;
mod stdio;
mod unimplemented;

pub use broker::{BROKER_TIMEOUT, Broker, BrokerConnection, BrokerListener, DialOptions};
pub use channel::{ChannelError, PluginChannel, ResponseBody, ResponseFuture};
pub use client::{Client, ClientBuilder, ClientSet, ClientTls, PluginExit, Runner, StopHandle};
pub use conn::{MAX_MESSAGE_SIZE, TlsInfo};
pub use error::Error;
pub use logging::{HclogLayer, init_plugin_logging};
pub use reattach::{ReattachAddr, ReattachConfig};
pub use server::{DebugServer, DebugStop, PluginContext, PluginServer, SHUTDOWN_GRACE};
pub use services::{HealthReporter, PLUGIN_HEALTH_SERVICE};

pub use tonic::service::Routes;

/// Hooks for this workspace's fuzz targets, tests and tools, outside the
/// supported API: they may change in any release.
///
/// - [`proto`](internal::proto): the generated code of go-plugin's own
///   services (`plugin.GRPCController`, `GRPCBroker`, `GRPCStdio`) and of
///   `grpc.health.v1`, which the reliability suite calls directly to play a
///   misbehaving host;
/// - [`fuzz_authority_filter`](internal::fuzz_authority_filter) and
///   [`parse_stderr_line`](internal::parse_stderr_line): the parsers the
///   `authority_filter` and `stderr_line` fuzz targets and the property
///   tests of `rpcplugin-tests` drive.
#[doc(hidden)]
pub mod internal {
    pub use crate::authority::fuzz_authority_filter;
    pub use crate::logging::{StderrLine, parse_stderr_line};

    /// Generated code for go-plugin's internal services and gRPC health.
    pub mod proto {
        pub use crate::proto::{health, plugin};
    }
}
