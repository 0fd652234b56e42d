//! The project's measurement jobs, each behind one `run` function that
//! `cargo xtask <job>` dispatches to.
//!
//! | job | module | report | doc |
//! | --- | --- | --- | --- |
//! | `bench` | [`mod@bench`] | `target/bench/report.json` | `docs/performance.md` |
//! | `reliability` | [`mod@reliability`] | `target/reliability/report.json` | `docs/reliability.md` |
//! | `matrix` | [`mod@matrix`] | `target/matrix/report.json` | `docs/compatibility.md` |
//! | `flake` | [`mod@flake`] | `target/flake/report.json` | — |
//! | `tofu` | [`mod@tofu`] | `target/tofu/report.json` | the marked OpenTofu sections of `docs/` |
//!
//! This crate is a workspace member but not a default member: plain
//! `cargo build`/`cargo test` in the root skip it; `cargo xtask` and
//! anything run with `--workspace` build it.

pub mod bench;
mod compat_doc;
pub mod flake;
pub mod matrix;
mod pki;
pub mod process;
pub mod reliability;
pub mod report;
pub mod tofu;
pub mod units;
