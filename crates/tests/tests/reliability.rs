//! Reliability and security: misbehaving plugins (faults), hostile
//! clients (rogue peers) and denial of service, each checked for its typed error, its time bound,
//! the host's other plugins still answering, and nothing left behind
//! (processes, zombies, sockets, temp dirs, file descriptors).
//!
//! The tests run one at a time (see `census::serial`) so that descriptor
//! and child counts of this process are exact. Each test prints one
//! `reliability:` JSON row, and appends it to `$RPCPLUGIN_RELIABILITY_OUT`
//! when that is set (`cargo xtask reliability` builds docs/reliability.md
//! from them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "e2e/support.rs"]
#[allow(dead_code)]
mod support;

#[path = "reliability/census.rs"]
mod census;

#[path = "reliability/faults.rs"]
mod faults;

#[path = "reliability/plugin.rs"]
mod plugin;

#[path = "reliability/rogue.rs"]
mod rogue;

#[path = "reliability/dos.rs"]
mod dos;

#[path = "reliability/sockets.rs"]
mod sockets;
