//! The Terraform/OpenTofu provider protocol for rpcplugin.
//!
//! - [`tfplugin6`]: protocol 6 messages, `Provider` client and server,
//!   generated from `proto/tfplugin6/` by `cargo xtask codegen`; serve it
//!   with [`rpcplugin::PluginServer`](https://docs.rs/rpcplugin) and
//!   [`MAGIC_COOKIE_KEY`]/[`MAGIC_COOKIE_VALUE`].
//! - [`tfplugin5`]: the protocol 5 subset a host needs to read a provider's
//!   schema.
//! - [`Value`]: `DynamicValue`'s msgpack and JSON codec, unknowns included.
//! - [`diag`]: diagnostics helpers; [`types`]: type constraint JSON.
//!
//! The example `terraform-provider-localfs` (in `examples/`) is a complete
//! provider that OpenTofu plans and applies: a file resource, a data source
//! and a function.
//!
//! ```
//! use rpcplugin_tfplugin::{Value, diag, tfplugin6::DynamicValue};
//! let config = Value::object([("path", Value::string("relative.txt"))]);
//! let dv: DynamicValue = config.encode().unwrap();
//! let seen = Value::decode(&dv).unwrap();
//! let path = seen.get("path").and_then(Value::as_str).unwrap_or_default();
//! let mut diagnostics = Vec::new();
//! if !path.starts_with('/') {
//!     diagnostics.push(diag::attribute_error("path", "Relative path", "path must be absolute"));
//! }
//! assert!(diag::has_errors(&diagnostics));
//! ```

#![warn(unreachable_pub)]

pub mod diag;
pub mod types;
mod value;

pub use value::{CodecError, MAX_DEPTH, REFINED_UNKNOWN_EXT, UNKNOWN_EXT, Value};

/// Protocol 6: generated messages, `provider_client` and `provider_server`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod tfplugin6 {
    include!("generated/tfplugin6.rs");
}

/// Protocol 5, schema subset: `GetMetadata` and `GetSchema`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod tfplugin5 {
    include!("generated/tfplugin5.rs");
}

/// The magic cookie key every Terraform and OpenTofu provider checks.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The magic cookie value Terraform and OpenTofu set.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
