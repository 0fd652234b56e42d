//! `cargo xtask bench`: cold start, latency, throughput and memory of every
//! host × plugin pair among Rust, Go and Python, measured side by side.

use anyhow::Result;
use std::path::Path;

/// Command-line options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// A CI-sized run: fewer launches and calls, same coverage.
    #[arg(long)]
    pub(crate) quick: bool,
}

pub(crate) fn run(_root: &Path, _args: &Args) -> Result<()> {
    anyhow::bail!("cargo xtask bench: not implemented yet")
}
