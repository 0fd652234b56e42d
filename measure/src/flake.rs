//! `cargo xtask flake`: the flake gate. Builds the workspace's test binaries
//! once, runs each of them `--runs` times and the doctests `--doc-runs`
//! times, and lists every test that failed at least once, with how often and
//! the output of its first failure.
//!
//! Writes `target/flake/report.json`; exits non-zero on any failure.

mod libtest;

use crate::process::{self, Captured, Stderr};
use crate::report::{self, FlakeBinary, FlakeFailure, FlakeReport};
use crate::units;
use anyhow::{Context, Result, bail};
use libtest::{Failure, parse_failures};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Name under which the doctests appear in the report and in `--filter`.
const DOCTESTS: &str = "doctests";

/// Bytes of a failure's output kept in the report.
const OUTPUT_LIMIT: usize = 16 * 1024;

/// Command-line options of `cargo xtask flake`.
#[derive(clap::Args)]
pub struct Args {
    /// Runs of every test binary.
    #[arg(long, default_value_t = 10)]
    runs: u32,
    /// Runs of the workspace's doctests (`cargo test --workspace --doc`);
    /// 0 skips them.
    #[arg(long, default_value_t = 5)]
    doc_runs: u32,
    /// Run only the binaries whose name contains one of these strings (names
    /// look like `rpcplugin-tests/e2e` or `rpcplugin-runtime/lib`;
    /// `doctests` selects the doctests).
    #[arg(long)]
    filter: Vec<String>,
    /// Test binaries run at the same time. Each binary already runs its tests
    /// on one thread per core, so 1 is what a 2-core machine carries without
    /// load-induced failures.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Bound on one run of one binary, in seconds; a run past it is killed
    /// and counts as a failure.
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
}

/// One test binary built by `cargo test --no-run`.
#[derive(Clone, Debug)]
struct Binary {
    /// `package/target`, or `package/lib`, `package/bin:name`.
    name: String,
    path: PathBuf,
    package: String,
    manifest_dir: PathBuf,
}

/// Every failure of one test across the runs.
#[derive(Debug)]
struct Tally {
    count: u32,
    first_run: u32,
    first_output: String,
}

/// Failures by (binary, test), and per-binary run counts.
#[derive(Default)]
struct Results {
    failures: BTreeMap<(String, String), Tally>,
    failed_runs: BTreeMap<String, u32>,
    runs: BTreeMap<String, u32>,
}

impl Results {
    fn record(&mut self, binary: &str, run: u32, failures: Vec<Failure>) {
        *self.runs.entry(binary.to_owned()).or_default() += 1;
        if failures.is_empty() {
            return;
        }
        *self.failed_runs.entry(binary.to_owned()).or_default() += 1;
        for failure in failures {
            let tally = self
                .failures
                .entry((binary.to_owned(), failure.test))
                .or_insert_with(|| Tally {
                    count: 0,
                    first_run: run,
                    first_output: truncate(&failure.output, OUTPUT_LIMIT),
                });
            tally.count += 1;
        }
    }

    fn total_failures(&self) -> u32 {
        self.failures.values().map(|t| t.count).sum()
    }
}

/// Runs `cargo xtask flake`: every test binary `--runs` times, the doctests
/// `--doc-runs` times; writes target/flake/report.json.
pub fn run(root: &Path, args: &Args) -> Result<()> {
    let started = Instant::now();
    if args.runs == 0 && args.doc_runs == 0 {
        bail!("nothing to do: --runs and --doc-runs are both 0");
    }
    let selected = |name: &str| {
        args.filter.is_empty() || args.filter.iter().any(|f| name.contains(f.as_str()))
    };
    let binaries: Vec<Binary> = build_test_binaries(root)?
        .into_iter()
        .filter(|b| selected(&b.name))
        .collect();
    let doc_runs = if selected(DOCTESTS) { args.doc_runs } else { 0 };
    if binaries.is_empty() && doc_runs == 0 {
        bail!("no test binary matches the filter {:?}", args.filter);
    }
    eprintln!(
        "flake: {} runs of {} binaries ({} at a time), {doc_runs} runs of the doctests",
        args.runs,
        binaries.len(),
        args.jobs.max(1)
    );

    let results = Mutex::new(Results::default());
    let timeout = Duration::from_secs(args.timeout_s);
    run_binaries(&binaries, args, timeout, &results);
    for run in 1..=doc_runs {
        let (failures, wall) = run_doctests(root, timeout);
        log_run(DOCTESTS, run, doc_runs, &failures, wall);
        lock(&results).record(DOCTESTS, run, failures);
    }

    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a runner thread panicked"))?;
    let elapsed = started.elapsed();
    write_report(root, args, doc_runs, &binaries, &results, elapsed)?;
    print_summary(args, doc_runs, &binaries, &results, elapsed);
    let total = results.total_failures();
    if total > 0 {
        bail!("{total} test failures (see target/flake/report.json)");
    }
    Ok(())
}

fn lock(results: &Mutex<Results>) -> std::sync::MutexGuard<'_, Results> {
    results
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs every binary `args.runs` times, run by run (all binaries once, then
/// all again), on `args.jobs` threads.
fn run_binaries(binaries: &[Binary], args: &Args, timeout: Duration, results: &Mutex<Results>) {
    let queue: Mutex<Vec<(u32, &Binary)>> = Mutex::new(
        (1..=args.runs)
            .flat_map(|run| binaries.iter().map(move |b| (run, b)))
            .rev()
            .collect(),
    );
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let next = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .pop();
                    let Some((run, binary)) = next else {
                        return;
                    };
                    let (failures, wall) = run_binary(binary, timeout);
                    log_run(&binary.name, run, args.runs, &failures, wall);
                    lock(results).record(&binary.name, run, failures);
                }
            });
        }
    });
}

fn log_run(name: &str, run: u32, runs: u32, failures: &[Failure], wall: Duration) {
    let verdict = if failures.is_empty() {
        "ok".to_owned()
    } else {
        let names: Vec<&str> = failures.iter().map(|f| f.test.as_str()).collect();
        format!("FAILED: {}", names.join(", "))
    };
    eprintln!(
        "[run {run:>3}/{runs}] {name:<40} {:>7.1} s  {verdict}",
        wall.as_secs_f64()
    );
}

/// Builds the test binaries with `cargo test --workspace --no-run` and
/// returns them, named after their package and target.
fn build_test_binaries(root: &Path) -> Result<Vec<Binary>> {
    eprintln!("flake: building the test binaries (cargo test --workspace --no-run)");
    let packages = package_names(root)?;
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "test",
            "--workspace",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo test --no-run")?;
    if !out.status.success() {
        bail!("cargo test --workspace --no-run failed: {}", out.status);
    }
    let mut binaries = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(binary) = test_binary(&msg, &packages) {
            binaries.push(binary);
        }
    }
    if binaries.is_empty() {
        bail!("cargo test --no-run reported no test binary");
    }
    binaries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(binaries)
}

/// The test binary a `compiler-artifact` message describes, if any.
fn test_binary(msg: &Value, packages: &BTreeMap<PathBuf, String>) -> Option<Binary> {
    if msg.get("reason")?.as_str()? != "compiler-artifact"
        || msg.pointer("/profile/test")?.as_bool() != Some(true)
    {
        return None;
    }
    let path = PathBuf::from(msg.get("executable")?.as_str()?);
    let manifest = PathBuf::from(msg.get("manifest_path")?.as_str()?);
    let package = packages.get(&manifest)?.clone();
    let target = msg.pointer("/target/name")?.as_str()?;
    let kind = msg.pointer("/target/kind/0")?.as_str()?;
    let name = match kind {
        "lib" | "rlib" | "proc-macro" => format!("{package}/lib"),
        "bin" => format!("{package}/bin:{target}"),
        _ => format!("{package}/{target}"),
    };
    Some(Binary {
        name,
        path,
        package,
        manifest_dir: manifest.parent()?.to_path_buf(),
    })
}

/// Package names by manifest path, from `cargo metadata`.
fn package_names(root: &Path) -> Result<BTreeMap<PathBuf, String>> {
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    let mut names = BTreeMap::new();
    for pkg in meta
        .get("packages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(manifest), Some(name)) = (
            pkg.get("manifest_path").and_then(Value::as_str),
            pkg.get("name").and_then(Value::as_str),
        ) {
            names.insert(PathBuf::from(manifest), name.to_owned());
        }
    }
    Ok(names)
}

/// Runs one binary once, as `cargo test` would (from its package directory,
/// with its manifest variables), and returns its failed tests.
fn run_binary(binary: &Binary, timeout: Duration) -> (Vec<Failure>, Duration) {
    let mut cmd = Command::new(&binary.path);
    cmd.current_dir(&binary.manifest_dir)
        .env("CARGO", env!("CARGO"))
        .env("CARGO_MANIFEST_DIR", &binary.manifest_dir)
        .env("CARGO_PKG_NAME", &binary.package);
    let started = Instant::now();
    let failures = match process::run(cmd, timeout, Stderr::Capture) {
        Ok(captured) => failures_of(&captured),
        Err(err) => vec![Failure {
            test: "<binary did not run>".into(),
            output: format!("{:#}", anyhow::Error::from(err)),
        }],
    };
    (failures, started.elapsed())
}

/// Runs the workspace's doctests once (stdout and stderr on one pipe, so
/// each `Doc-tests <crate>` header precedes its tests' lines).
fn run_doctests(root: &Path, timeout: Duration) -> (Vec<Failure>, Duration) {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root)
        .args(["test", "--workspace", "--doc"])
        .env("CARGO_TERM_COLOR", "never");
    let started = Instant::now();
    let failures = match process::run(cmd, timeout, Stderr::Merge) {
        Ok(captured) => {
            let mut failures = Vec::new();
            for (krate, section) in libtest::doctest_sections(&captured.stdout) {
                failures.extend(parse_failures(section).into_iter().map(|f| Failure {
                    test: format!("{krate}: {}", f.test),
                    output: f.output,
                }));
            }
            if failures.is_empty() {
                failures = failures_of(&captured);
            }
            failures
        }
        Err(err) => vec![Failure {
            test: "<cargo test --doc did not run>".into(),
            output: format!("{:#}", anyhow::Error::from(err)),
        }],
    };
    (failures, started.elapsed())
}

/// The failed tests of a captured run; a run that failed without naming a
/// test (crash, abort, timeout, build error) counts as one failure of a
/// pseudo-test named after how it ended.
fn failures_of(captured: &Captured) -> Vec<Failure> {
    let failures = parse_failures(&captured.stdout);
    if !failures.is_empty() {
        return failures;
    }
    let ended = if captured.timed_out {
        Some("<timed out; killed>".to_owned())
    } else if !captured.status.success() {
        Some(format!("<exited: {}>", captured.status))
    } else if captured.pipes_held {
        Some("<output still held open after exit by a process it started>".to_owned())
    } else {
        None
    };
    ended
        .map(|test| {
            vec![Failure {
                test,
                output: tail(
                    &format!("{}\n{}", captured.stdout, captured.stderr),
                    OUTPUT_LIMIT,
                ),
            }]
        })
        .unwrap_or_default()
}

fn write_report(
    root: &Path,
    args: &Args,
    doc_runs: u32,
    binaries: &[Binary],
    results: &Results,
    elapsed: Duration,
) -> Result<()> {
    let runs_of = |name: &str| results.runs.get(name).copied().unwrap_or(0);
    let failed_runs_of = |name: &str| results.failed_runs.get(name).copied().unwrap_or(0);
    let mut bins: Vec<FlakeBinary> = binaries
        .iter()
        .map(|b| FlakeBinary {
            command: None,
            name: b.name.clone(),
            path: Some(b.path.clone()),
            runs: runs_of(&b.name),
            failed_runs: failed_runs_of(&b.name),
        })
        .collect();
    if doc_runs > 0 {
        bins.push(FlakeBinary {
            command: Some("cargo test --workspace --doc".into()),
            name: DOCTESTS.into(),
            path: None,
            runs: runs_of(DOCTESTS),
            failed_runs: failed_runs_of(DOCTESTS),
        });
    }
    let failures: Vec<FlakeFailure> = results
        .failures
        .iter()
        .map(|((binary, test), tally)| FlakeFailure {
            binary: binary.clone(),
            test: test.clone(),
            count: tally.count,
            runs: runs_of(binary),
            first_run: tally.first_run,
            first_output: tally.first_output.clone(),
        })
        .collect();
    let report = FlakeReport {
        runs: args.runs,
        doc_runs,
        jobs: args.jobs.max(1),
        filter: args.filter.clone(),
        elapsed_s: units::seconds_tenths(elapsed),
        total_failures: results.total_failures(),
        binaries: bins,
        failures,
    };
    let path = root.join("target/flake/report.json");
    report::write(&path, &report)?;
    eprintln!("flake: wrote {}", path.display());
    Ok(())
}

fn print_summary(
    args: &Args,
    doc_runs: u32,
    binaries: &[Binary],
    results: &Results,
    elapsed: Duration,
) {
    for ((binary, test), tally) in &results.failures {
        let runs = results.runs.get(binary).copied().unwrap_or(0);
        eprintln!(
            "FAILED {binary} {test}: {}/{runs} runs (first in run {})\n{}",
            tally.count,
            tally.first_run,
            indent(&tail(&tally.first_output, 2048))
        );
    }
    let doc = if doc_runs > 0 {
        format!(" and {doc_runs} doctest runs")
    } else {
        String::new()
    };
    println!(
        "{} runs of {} binaries{doc}: {} failures ({:.0} s)",
        args.runs,
        binaries.len(),
        results.total_failures(),
        elapsed.as_secs_f64()
    );
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first `limit` bytes of `text` (on a char boundary).
fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[… {} more bytes]", &text[..end], text.len() - end)
}

/// The last `limit` bytes of `text` (on a char boundary).
fn tail(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {start} bytes before]\n{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_test_binaries_after_package_and_target() {
        let packages = BTreeMap::from([(
            PathBuf::from("/w/crates/tests/Cargo.toml"),
            "rpcplugin-tests".to_owned(),
        )]);
        let msg = |kind: &str, name: &str, test: bool, exe: Value| {
            json!({
                "reason": "compiler-artifact",
                "manifest_path": "/w/crates/tests/Cargo.toml",
                "target": {"kind": [kind], "name": name},
                "profile": {"test": test},
                "executable": exe,
            })
        };
        let e2e = test_binary(&msg("test", "e2e", true, json!("/t/e2e-1")), &packages).unwrap();
        assert_eq!(e2e.name, "rpcplugin-tests/e2e");
        assert_eq!(e2e.path, PathBuf::from("/t/e2e-1"));
        assert_eq!(e2e.manifest_dir, PathBuf::from("/w/crates/tests"));
        let lib = test_binary(
            &msg("lib", "rpcplugin_tests", true, json!("/t/l")),
            &packages,
        );
        assert_eq!(lib.unwrap().name, "rpcplugin-tests/lib");
        let bin = test_binary(&msg("bin", "plug", true, json!("/t/p")), &packages);
        assert_eq!(bin.unwrap().name, "rpcplugin-tests/bin:plug");
        // The plugin binary itself (not a test harness) and libraries without
        // an executable are not test binaries.
        assert!(test_binary(&msg("bin", "plug", false, json!("/t/p")), &packages).is_none());
        assert!(test_binary(&msg("lib", "x", true, Value::Null), &packages).is_none());
    }

    #[test]
    fn counts_failures_per_test_and_keeps_the_first_output() {
        let mut results = Results::default();
        let fail = |test: &str, output: &str| Failure {
            test: test.into(),
            output: output.into(),
        };
        results.record("b", 1, vec![]);
        results.record("b", 2, vec![fail("t", "first"), fail("u", "x")]);
        results.record("b", 3, vec![fail("t", "second")]);
        assert_eq!(results.total_failures(), 3);
        assert_eq!(results.runs["b"], 3);
        assert_eq!(results.failed_runs["b"], 2);
        let t = &results.failures[&("b".to_owned(), "t".to_owned())];
        assert_eq!(
            (t.count, t.first_run, t.first_output.as_str()),
            (2, 2, "first")
        );
    }

    #[test]
    fn a_run_that_dies_without_naming_a_test_is_a_failure() {
        use std::os::unix::process::ExitStatusExt as _;
        let died = Captured {
            status: std::process::ExitStatus::from_raw(6 << 8),
            stdout: "running 3 tests\n".into(),
            stderr: "fatal runtime error: stack overflow\n".into(),
            timed_out: false,
            pipes_held: false,
            elapsed: Duration::ZERO,
        };
        let failures = failures_of(&died);
        assert_eq!(failures.len(), 1);
        assert!(failures[0].test.starts_with("<exited"), "{failures:?}");
        assert!(failures[0].output.contains("stack overflow"));
        let passed = Captured {
            status: std::process::ExitStatus::from_raw(0),
            stdout: "test result: ok. 3 passed\n".into(),
            stderr: String::new(),
            timed_out: false,
            pipes_held: false,
            elapsed: Duration::ZERO,
        };
        assert!(failures_of(&passed).is_empty());
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert!(truncate("ééé", 3).starts_with("é\n[…"));
        assert!(tail("ééé", 3).ends_with("\né"));
    }
}
