//! The KV example service (package `proto`, service `KV`) that go-plugin's
//! `examples/grpc` and tofusoup's cross-language tests speak.
//!
//! Regenerate the code with `cargo xtask codegen`.

/// Generated messages, client and server for `proto.KV`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod proto {
    include!("generated/proto.rs");
}
