//! Project automation for the rpcplugin workspace.
//!
//! Run `cargo xtask --help` for the list of jobs. xtask parses the command
//! line and dispatches: code generation lives here, the measurement jobs
//! (matrix, bench, reliability, flake, tofu) in the `rpcplugin-measure` crate.
//! Generators take a `check` flag that fails on drift instead of rewriting
//! files.

mod codegen;

use clap::{Parser, Subcommand};
use rpcplugin_measure::{bench, flake, matrix, reliability, tofu};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "xtask", about = "rpcplugin project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate Rust code from the protos under proto/ (no protoc needed).
    Codegen {
        /// Fail if the committed code differs from what would be generated.
        #[arg(long)]
        check: bool,
    },
    /// Run the cross-language compatibility matrix against the real go-plugin
    /// and pyvider-rpcplugin, and regenerate docs/compatibility.md.
    Matrix(matrix::Options),
    /// Benchmark every host × plugin pair (cold start, latency, throughput,
    /// memory) and regenerate docs/performance.md.
    Bench(bench::Args),
    /// Faults, rogue peers, fuzzing, load and leak checks; regenerates
    /// docs/reliability.md.
    Reliability(reliability::Args),
    /// Run every test binary N times and the doctests a few times; list
    /// every failed test with its count (target/flake/report.json).
    Flake(flake::Args),
    /// Real OpenTofu against the Rust example provider and its Go twin;
    /// regenerates the marked OpenTofu sections of docs/.
    Tofu(tofu::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::run(&project_root(), &args),
        Command::Reliability(args) => reliability::run(&project_root(), &args),
        Command::Flake(args) => flake::run(&project_root(), &args),
        Command::Tofu(args) => tofu::run(&project_root(), &args),
        Command::Codegen { check } => codegen::run(&project_root(), check),
        Command::Matrix(opts) => matrix::run_matrix(&project_root(), &opts),
    }
}

/// The workspace root (the parent of this crate's manifest directory).
pub(crate) fn project_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}
