//! The matrix's real-provider row: a Terraform provider built on go-plugin
//! (hashicorp/terraform-provider-time, the newest release), installed with
//! `go install` and probed with `rpcplugin probe --preset terraform`. The row
//! fails when the probe fails or its host side prints any warning or error.

use super::{bounded, host_log, ms};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The Go module of the provider.
pub(crate) const MODULE: &str = "github.com/hashicorp/terraform-provider-time";

/// The row's id in the report and the document.
pub(crate) const ROW_ID: &str = "rpcplugin probe --preset terraform terraform-provider-time";

/// The executable `go install` writes.
const EXECUTABLE: &str = "terraform-provider-time";

/// What the probe row produced.
#[derive(Clone, Debug)]
pub(crate) struct ProbeOutcome {
    pub(crate) ok: bool,
    pub(crate) error: Option<String>,
    /// The module version `go install` resolved `@latest` to.
    pub(crate) version: String,
    pub(crate) report: Value,
    pub(crate) host_problems: Vec<String>,
    pub(crate) wall_ms: f64,
}

/// Installs the newest release of the provider into `gobin` and returns the
/// executable's path.
pub(crate) fn install(gobin: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(gobin)?;
    let status = Command::new("go")
        .args(["install", &format!("{MODULE}@latest")])
        .env("GOBIN", gobin)
        .status()
        .context("running go install")?;
    if !status.success() {
        bail!("go install {MODULE}@latest failed: {status}");
    }
    let path = gobin.join(EXECUTABLE);
    if !path.is_file() {
        bail!("go install succeeded but {} is missing", path.display());
    }
    Ok(path)
}

/// The module version built into `executable` (`go version -m`).
fn module_version(executable: &Path) -> String {
    let out = Command::new("go")
        .args(["version", "-m"])
        .arg(executable)
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .find_map(|line| {
            let mut cols = line.split_whitespace();
            (cols.next() == Some("mod") && cols.next() == Some(MODULE))
                .then(|| cols.next().map(str::to_owned))
                .flatten()
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Runs `rpcplugin probe --preset terraform --json` on the provider.
pub(crate) fn probe(cli: &Path, provider: &Path, timeout_ms: u64, log_dir: &Path) -> ProbeOutcome {
    let started = Instant::now();
    let version = module_version(provider);
    let mut cmd = Command::new(cli);
    cmd.args(["probe", "--preset", "terraform", "--json"])
        .args(["--timeout-ms", &timeout_ms.to_string()])
        .arg(provider);
    let deadline = started + Duration::from_millis(timeout_ms) + Duration::from_secs(5);
    let failed = |error: String| ProbeOutcome {
        ok: false,
        error: Some(error),
        version: version.clone(),
        report: Value::Null,
        host_problems: Vec::new(),
        wall_ms: ms(started.elapsed()),
    };
    let finished = match bounded::run(
        cmd,
        deadline,
        &log_dir.join("probe-terraform-provider-time.log"),
    ) {
        Ok(finished) => finished,
        Err(bounded::Failed::Deadline) => {
            return failed(format!(
                "matrix: the probe did not finish within {timeout_ms} ms + 5 s; killed"
            ));
        }
        Err(bounded::Failed::Io(err)) => return failed(format!("matrix: {err}")),
    };
    let host_problems = host_log::host_lines(&finished.stderr).problems;
    let line = finished
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let report: Value = serde_json::from_str(line).unwrap_or(Value::Null);
    let probed = report.get("ok").and_then(Value::as_bool) == Some(true);
    let error = if !finished.status.success() || !probed {
        Some(report.get("error").and_then(Value::as_str).map_or_else(
            || format!("the probe exited with {}: {line}", finished.status),
            str::to_owned,
        ))
    } else {
        host_problems.first().map(|first| {
            format!(
                "the probe passed but printed {} warning/error line(s), first: {}",
                host_problems.len(),
                host_log::without_timestamp(first)
            )
        })
    };
    ProbeOutcome {
        ok: error.is_none(),
        error,
        version,
        report,
        host_problems,
        wall_ms: ms(started.elapsed()),
    }
}
