//! Integration tests of `rpcplugin-handshake`, one binary.
//!
//! - `support`: loading test data and rendering parse results for snapshots.
//! - `real_lines`: snapshots of lines as real peers print them (Go AutoMTLS
//!   with a P-521 certificate, pyvider with a P-384 one, no TLS, mux, Windows).
//! - `errors`: one snapshot per `ParseError` variant, showing its message.
//! - `go_leniency`: lines a go-plugin host accepts although they are odd.
//! - `spec_examples`: every example line of the go-plugin protocol notes.
//! - `properties`: proptest round trips, no-panic checks and negotiation laws.

mod errors;
mod go_leniency;
mod properties;
mod real_lines;
mod spec_examples;
mod support;
