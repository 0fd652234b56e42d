//! Integration tests for `rpcplugin-certs`: real rustls handshakes over
//! loopback TCP and unix socket pairs.
//!
//! - `support`: cached identities, handshake drivers with timeouts, test data
//! - `matrix`: every key type against every key type, TLS 1.2 and 1.3
//! - `refusals`: unpinned, missing, expired, misnamed and plaintext peers
//! - `interop`: go-plugin- and pyvider-shaped certificates made by openssl,
//!   SEC1/PKCS#8/PKCS#1 keys, what a Go client needs from our server
//! - `manual`: CA bundle validation and file loading errors
//! - `generated`: the shape of generated certificates
//! - `key_type`: key type names
//! - `robustness`: damaged input gives errors, not panics

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] functions fail loudly by design"
)]

mod generated;
mod interop;
mod key_type;
mod manual;
mod matrix;
mod refusals;
mod robustness;
mod support;
