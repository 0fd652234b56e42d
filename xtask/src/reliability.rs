//! `cargo xtask reliability`: faults, rogue peers, fuzzing, load and leak
//! checks, and the generated docs/reliability.md.

use anyhow::Result;
use std::path::Path;

/// Command-line options of `cargo xtask reliability`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// A CI-sized run: fewer calls, plugins, cycles and fuzzing seconds.
    #[arg(long)]
    pub(crate) quick: bool,
}

pub(crate) fn run(_root: &Path, _args: &Args) -> Result<()> {
    anyhow::bail!("cargo xtask reliability: not implemented yet")
}
