//! The `rpcplugin` command.
//!
//! - `rpcplugin probe PATH`: launches any go-plugin plugin (Go, Python, Rust,
//!   Terraform providers with `--preset terraform`) and reports what it
//!   negotiated: handshake, transport, TLS version, cipher, key types,
//!   health, round-trip time, and its stderr; on failure, a diagnosis. With
//!   `--preset terraform` it also reads the provider's schema (protocol 6
//!   or 5) and lists its resources, data sources and functions.
//! - `rpcplugin validate-connection --client go --server python`: actually
//!   connects one host library to one plugin library with go-plugin's KV
//!   example service and, on failure, names the known cause and the setups
//!   that work for that pair.
//! - `rpcplugin serve-kv`: a reference Rust plugin serving go-plugin's KV
//!   example (cookie BASIC_PLUGIN=hello, version 1), for testing hosts.

mod probe;
mod schema;
mod serve_kv;
mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rpcplugin",
    version,
    about = "Probe go-plugin plugins and validate cross-language connections"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Launch a plugin and report its handshake, TLS and health.
    Probe(probe::Args),
    /// Connect a host library to a plugin library for real and report.
    ValidateConnection(validate::Args),
    /// Serve go-plugin's KV example as a plugin (launched by a host).
    ServeKv,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::ServeKv = cli.command {
        // A plugin owns its stdio and logs hclog JSON: no fmt subscriber.
        return serve_kv::run().await;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Probe(args) => probe::run(args).await,
        Command::ValidateConnection(args) => validate::run(args).await,
        Command::ServeKv => Ok(false),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("rpcplugin: {err:#}");
            ExitCode::from(2)
        }
    }
}
