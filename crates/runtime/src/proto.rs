//! Generated gRPC code for go-plugin's internal services and gRPC health.
//!
//! Regenerate with `cargo xtask codegen`.
#![allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]

/// go-plugin's internal services: `GRPCBroker`, `GRPCController`, `GRPCStdio`.
pub mod plugin {
    include!("generated/plugin.rs");
}

/// The standard gRPC health service (`grpc.health.v1.Health`).
pub mod health {
    include!("generated/grpc.health.v1.rs");
}
