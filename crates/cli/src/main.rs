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
use std::io::IsTerminal as _;
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
    init_logging();
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

/// Logs go to stderr at warn unless `RUST_LOG` says otherwise, coloured only
/// when stderr is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .init();
}

/// Whether to colour output on a stream: only on a terminal, and not when
/// `NO_COLOR` is set to a non-empty value.
fn colour(is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
        assert!(!colour(false, Some("1".into())));
    }
}
