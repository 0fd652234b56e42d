//! End to end: a Rust host (`rpcplugin::Client`) driving the Rust test
//! plugin (`rpcplugin-test-plugin`) as a real subprocess over real sockets.
//!
//! Every test launches its own plugin with its own scratch directory and,
//! when done, checks that the plugin process is gone (exited and reaped)
//! and that its socket directory was removed, so the checks hold while
//! tests run in parallel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "e2e/support.rs"]
mod support;

#[path = "e2e/matrix.rs"]
mod matrix;

#[path = "e2e/stdio.rs"]
mod stdio;

#[path = "e2e/logs.rs"]
mod logs;

#[path = "e2e/broker.rs"]
mod broker;

#[path = "e2e/lifecycle.rs"]
mod lifecycle;

#[path = "e2e/reattach.rs"]
mod reattach;

#[path = "e2e/failures.rs"]
mod failures;

#[path = "e2e/errors.rs"]
mod errors;

#[path = "e2e/in_process.rs"]
mod in_process;

#[path = "e2e/server_options.rs"]
mod server_options;

#[path = "e2e/client_options.rs"]
mod client_options;

#[path = "e2e/broker_options.rs"]
mod broker_options;

#[path = "e2e/mux.rs"]
mod mux;

#[path = "e2e/runner.rs"]
mod runner;

#[path = "e2e/debug_mode.rs"]
mod debug_mode;
