//! Project automation for the rpcplugin workspace.
//!
//! Run `cargo xtask --help` for the list of jobs. xtask parses the command
//! line and dispatches: code generation lives here, the measurement jobs
//! (bench, reliability, flake, tofu) in the `rpcplugin-measure` crate.
//! Generators take a `check` flag that fails on drift instead of rewriting
//! files.

mod codegen;
mod compat_doc;
mod matrix;
mod pki;

use clap::{Parser, Subcommand};
use rpcplugin_measure::{bench, flake, reliability, tofu};
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
    Matrix {
        /// Run only the cells whose id contains one of these strings
        /// (ids look like `rust->go unix auto-host-p256`).
        #[arg(long)]
        filter: Vec<String>,
        /// Cells run at the same time.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Per-cell deadline handed to each host, in milliseconds.
        #[arg(long, default_value_t = 15000)]
        timeout_ms: u64,
        /// Rewrite peers/expectations.tsv from this run (keeps known reasons).
        #[arg(long)]
        write_expectations: bool,
        /// Fail when docs/compatibility.md changes in anything but error texts (CI).
        #[arg(long)]
        check: bool,
    },
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
        Command::Matrix {
            filter,
            jobs,
            timeout_ms,
            write_expectations,
            check,
        } => matrix::run_matrix(
            &project_root(),
            &matrix::Options {
                filter,
                jobs,
                timeout_ms,
                write_expectations,
                check,
            },
        ),
    }
}

/// The workspace root (the parent of this crate's manifest directory).
pub(crate) fn project_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}
