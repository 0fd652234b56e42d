//! The example of docs/guide.md: a plugin and a host for their own
//! `greeter.proto`, compiled in `build.rs` by `rpcplugin-build`.
//!
//! The binaries are `greeter-plugin` and `greeter-host`; the host launches
//! the plugin, says hello and stops it.

/// The handshake's magic cookie. A host and its plugins agree on it, so a
/// plugin started by hand explains itself instead of waiting for a host.
pub const COOKIE: (&str, &str) = ("GREETER_PLUGIN", "hello");

/// The application protocol version both sides speak.
pub const VERSION: u32 = 1;

/// The code generated from `proto/greeter.proto`.
#[allow(missing_docs)]
pub mod proto {
    rpcplugin::include_proto!("greeter");
}
