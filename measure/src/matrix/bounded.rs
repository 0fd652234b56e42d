//! Runs one host process of the matrix through the shared runner: stdout
//! captured, stderr to a log file that is read back, killed at a deadline.

use super::Outcome;
use crate::process::{self, Stderr};
use std::fs;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// What a finished host process printed.
pub(super) struct Finished {
    pub(super) status: ExitStatus,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

/// Why a host process gave no result.
pub(super) enum Failed {
    /// Still running at the deadline; killed.
    Deadline,
    /// Could not be started or waited for.
    Io(String),
}

/// Runs a cell's host `cmd`, started at `started`, with a backstop 5 s past
/// the `timeout_ms` the host enforces itself; a host that gave no result is
/// the cell's failed outcome.
pub(super) fn host(
    cmd: Command,
    started: Instant,
    timeout_ms: u64,
    log_path: &Path,
) -> Result<Finished, Outcome> {
    let deadline = started + Duration::from_millis(timeout_ms) + Duration::from_secs(5);
    run(cmd, deadline, log_path).map_err(|failed| match failed {
        Failed::Deadline => Outcome::failed(
            format!("matrix: host did not finish within {timeout_ms} ms + 5 s; killed"),
            started,
        ),
        Failed::Io(err) => Outcome::failed(format!("matrix: {err}"), started),
    })
}

/// Runs `cmd` until it exits or `deadline` passes (then kills it), with
/// stderr written to `log_path` and returned.
pub(super) fn run(cmd: Command, deadline: Instant, log_path: &Path) -> Result<Finished, Failed> {
    fs::File::create(log_path)
        .map_err(|err| Failed::Io(format!("{}: {err}", log_path.display())))?;
    let timeout = deadline.saturating_duration_since(Instant::now());
    let out = process::run(cmd, timeout, Stderr::AppendTo(log_path.to_path_buf()))
        .map_err(|err| Failed::Io(format!("{:#}", anyhow::Error::from(err))))?;
    if out.timed_out {
        return Err(Failed::Deadline);
    }
    let stderr = fs::read(log_path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Ok(Finished {
        status: out.status,
        stdout: out.stdout,
        stderr,
    })
}
