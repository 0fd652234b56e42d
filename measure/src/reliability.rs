//! `cargo xtask reliability`: faults, rogue peers, fuzzing, load and leak
//! checks, and the generated docs/reliability.md.
//!
//! Steps, each bounded in time:
//! 1. `cargo test -p rpcplugin-tests --test reliability --test parsers`,
//!    with `RPCPLUGIN_RELIABILITY_OUT` set so every fault, rogue-peer and
//!    socket case appends its row;
//! 2. the load and soak runs of `rpcplugin-reliability` (release build):
//!    concurrent RPCs through one plugin, many plugins at once, sequential
//!    start/kill cycles;
//! 3. every cargo-fuzz target for a fixed time, on the stable toolchain
//!    (`-s none`), with a scratch corpus in front of the committed seeds;
//! 4. the report: `target/reliability/report.json` and the Markdown table,
//!    written to docs/reliability.md by a full run and to
//!    `target/reliability/reliability.md` by `--quick`.
//!
//! Fails when any case fails.

use crate::process::{self, Stderr};
use crate::report::{self, FuzzRun, LoadScenarios, Properties, ReliabilityReport};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Command-line options of `cargo xtask reliability`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A CI-sized run: fewer calls, plugins, cycles and fuzzing seconds.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Seconds per fuzz target (default 20 with --quick, else 120).
    #[arg(long)]
    pub(crate) fuzz_seconds: Option<u64>,
    /// Skip fuzzing (the report then says so).
    #[arg(long)]
    pub(crate) no_fuzz: bool,
}

/// Sizes of one run.
struct Plan {
    name: &'static str,
    streams: u64,
    calls: u64,
    plugins: u64,
    cycles: u64,
    fuzz_seconds: u64,
}

impl Plan {
    fn new(args: &Args) -> Plan {
        let mut plan = if args.quick {
            Plan {
                name: "quick",
                streams: 64,
                calls: 5_000,
                plugins: 10,
                cycles: 100,
                fuzz_seconds: 20,
            }
        } else {
            Plan {
                name: "full",
                streams: 64,
                calls: 100_000,
                plugins: 50,
                cycles: 1_000,
                fuzz_seconds: 120,
            }
        };
        if let Some(seconds) = args.fuzz_seconds {
            plan.fuzz_seconds = seconds;
        }
        plan
    }
}

/// Runs `cargo xtask reliability`: the suites, load, leak checks and fuzzing;
/// writes target/reliability/report.json and docs/reliability.md.
pub fn run(root: &Path, args: &Args) -> Result<()> {
    let plan = Plan::new(args);
    let out_dir = root.join("target/reliability");
    fs::create_dir_all(&out_dir)?;
    let started = Instant::now();

    eprintln!("reliability: fault, rogue-peer and property tests");
    let (rows, properties) = run_tests(root, &out_dir)?;

    eprintln!("reliability: load and soak ({} run)", plan.name);
    let load = run_load(root, &plan)?;

    let fuzz = if args.no_fuzz {
        eprintln!("reliability: fuzzing skipped");
        Vec::new()
    } else {
        eprintln!("reliability: fuzzing, {} s per target", plan.fuzz_seconds);
        run_fuzz(root, &out_dir, plan.fuzz_seconds)?
    };

    let report = ReliabilityReport {
        run: plan.name.to_owned(),
        commit: git_head(root),
        machine: machine(),
        rows,
        properties,
        load,
        fuzz,
        seconds: started.elapsed().as_secs_f64(),
    };
    report::write(&out_dir.join("report.json"), &report)?;
    let report = serde_json::to_value(&report)?;
    let doc = render(&report, &plan, args.no_fuzz);
    let target = if args.quick {
        out_dir.join("reliability.md")
    } else {
        root.join("docs/reliability.md")
    };
    fs::write(&target, doc).with_context(|| format!("writing {}", target.display()))?;
    eprintln!("reliability: wrote {}", target.display());

    let failures = failures(&report);
    if !failures.is_empty() {
        bail!(
            "{} reliability case(s) failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

/// Runs `cmd` with its stdout captured and its stderr on ours (or appended
/// to `log`), failing when it is still running after `limit`.
fn run_bounded(cmd: Command, limit: Duration, log: Option<&Path>) -> Result<(ExitStatus, String)> {
    let stderr = log.map_or(Stderr::Inherit, |log| Stderr::AppendTo(log.to_path_buf()));
    let program = format!("{cmd:?}");
    let out = process::run(cmd, limit, stderr)?;
    if out.timed_out {
        bail!("{program} did not finish within {limit:?}");
    }
    Ok((out.status, out.stdout))
}

fn cargo(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root).args(args);
    cmd
}

/// The test rows, and a summary of the property tests.
fn run_tests(root: &Path, out_dir: &Path) -> Result<(Vec<Value>, Properties)> {
    let rows_path = out_dir.join("rows.jsonl");
    let _ = fs::remove_file(&rows_path);
    let mut tests = cargo(
        root,
        &["test", "-p", "rpcplugin-tests", "--test", "reliability"],
    );
    tests.env("RPCPLUGIN_RELIABILITY_OUT", &rows_path);
    let (status, stdout) = run_bounded(tests, Duration::from_secs(1200), None)?;
    let rows: Vec<Value> = fs::read_to_string(&rows_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    if !status.success() && rows.is_empty() {
        bail!("the reliability tests failed before reporting any row:\n{stdout}");
    }
    let started = Instant::now();
    let (status, stdout) = run_bounded(
        cargo(
            root,
            &["test", "-p", "rpcplugin-tests", "--test", "parsers"],
        ),
        Duration::from_secs(1200),
        None,
    )?;
    let properties = Properties {
        summary: stdout
            .lines()
            .find(|l| l.starts_with("test result:"))
            .map(str::to_owned),
        tests_ok: status.success(),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((rows, properties))
}

/// Builds the release binaries and runs the three load and soak scenarios.
fn run_load(root: &Path, plan: &Plan) -> Result<LoadScenarios> {
    let (status, _) = run_bounded(
        cargo(
            root,
            &["build", "--release", "-p", "rpcplugin-tests", "--bins"],
        ),
        Duration::from_secs(1800),
        None,
    )?;
    if !status.success() {
        bail!("building rpcplugin-tests (release) failed");
    }
    let driver = root.join("target/release/rpcplugin-reliability");
    let scenario = |args: &[String], limit: u64| -> Value {
        let mut cmd = Command::new(&driver);
        cmd.args(args).args(["--max-seconds", &limit.to_string()]);
        match run_bounded(cmd, Duration::from_secs(limit + 60), None) {
            Ok((status, stdout)) => match serde_json::from_str::<Value>(stdout.trim()) {
                Ok(value) => value,
                Err(_) => json!({"error": format!("{status}: {stdout}")}),
            },
            Err(err) => json!({"error": err.to_string()}),
        }
    };
    let s = |v: u64| v.to_string();
    eprintln!("  {} calls over {} streams", plan.calls, plan.streams);
    let load = scenario(
        &[
            "load".into(),
            "--streams".into(),
            s(plan.streams),
            "--calls".into(),
            s(plan.calls),
        ],
        600,
    );
    eprintln!("  {} plugins at once", plan.plugins);
    let plugins = scenario(&["plugins".into(), "--count".into(), s(plan.plugins)], 300);
    eprintln!("  {} start/kill cycles", plan.cycles);
    let cycles = scenario(&["cycles".into(), "--count".into(), s(plan.cycles)], 900);
    Ok(LoadScenarios {
        load,
        plugins,
        cycles,
    })
}

/// The fuzz targets listed in fuzz/Cargo.toml.
fn fuzz_targets(root: &Path) -> Result<Vec<String>> {
    let manifest = fs::read_to_string(root.join("fuzz/Cargo.toml"))?;
    let mut targets = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(name) = line.strip_prefix("name = ") {
            targets.push(name.trim_matches('"').to_owned());
        }
    }
    Ok(targets)
}

fn ensure_cargo_fuzz(root: &Path) -> Result<()> {
    let present = cargo(root, &["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        eprintln!("  installing cargo-fuzz");
        let (status, _) = run_bounded(
            cargo(root, &["install", "--locked", "cargo-fuzz"]),
            Duration::from_secs(1800),
            None,
        )?;
        if !status.success() {
            bail!("cargo install --locked cargo-fuzz failed");
        }
    }
    Ok(())
}

/// Runs every target for `seconds` and collects libFuzzer's final stats.
fn run_fuzz(root: &Path, out_dir: &Path, seconds: u64) -> Result<Vec<FuzzRun>> {
    ensure_cargo_fuzz(root)?;
    let (status, _) = run_bounded(
        cargo(root, &["fuzz", "build", "-s", "none"]),
        Duration::from_secs(3600),
        None,
    )?;
    if !status.success() {
        bail!("cargo fuzz build -s none failed");
    }
    let mut results = Vec::new();
    for target in fuzz_targets(root)? {
        eprintln!("  {target}");
        let scratch = out_dir.join("fuzz-corpus").join(&target);
        let _ = fs::remove_dir_all(&scratch);
        fs::create_dir_all(&scratch)?;
        let log = out_dir.join(format!("fuzz-{target}.log"));
        let started = Instant::now();
        let mut fuzz = cargo(root, &["fuzz", "run", "-s", "none", &target]);
        fuzz.arg(&scratch)
            .arg(root.join("fuzz/corpus").join(&target))
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-print_final_stats=1",
            ]);
        fs::File::create(&log)?;
        let outcome = run_bounded(fuzz, Duration::from_secs(seconds + 600), Some(&log));
        let took = started.elapsed().as_secs_f64();
        let text = fs::read_to_string(&log).unwrap_or_default();
        let stat = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                .and_then(|v| v.trim().parse().ok())
        };
        let seeds = fs::read_dir(root.join("fuzz/corpus").join(&target))
            .map(|d| d.count())
            .unwrap_or(0);
        let ok = matches!(&outcome, Ok((status, _)) if status.success());
        let error = (!ok).then(|| {
            text.lines()
                .filter(|l| l.contains("ERROR") || l.contains("panicked"))
                .take(3)
                .collect::<Vec<_>>()
                .join(" / ")
        });
        results.push(FuzzRun {
            target,
            seconds: took,
            executions: stat("number_of_executed_units"),
            new_units: stat("new_units_added"),
            peak_rss_mb: stat("peak_rss_mb"),
            seeds,
            ok,
            error,
        });
    }
    Ok(results)
}

fn git_head(root: &Path) -> String {
    Command::new("git")
        .current_dir(root)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs, Linux {}", kernel.trim())
}

// ----- verdicts -----

fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn f(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn list_empty(v: &Value, key: &str) -> bool {
    v.get(key)
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
}

/// Largest live-heap growth per cycle still called flat (the heap of a
/// leak-free host wobbles by a few allocations).
const HEAP_SLOPE_LIMIT: f64 = 16.0;
/// Largest RSS growth over the cycles after warm-up (slope times cycles)
/// still called flat: allocator caches and page-ins settle slowly.
const RSS_GROWTH_LIMIT_KIB: f64 = 2048.0;

fn load_ok(load: &Value) -> bool {
    load.get("error").is_none()
        && u(load, "errors") == 0
        && u(load, "calls") == u(load, "planned")
        && load.get("kill_ok").and_then(Value::as_bool) == Some(true)
}

fn plugins_ok(p: &Value) -> bool {
    let count = u(p, "count");
    p.get("error").is_none()
        && count > 0
        && u(p, "started") == count
        && u(p, "used") == count
        && u(p, "killed_cleanly") == count
        && list_empty(p, "failures")
        && list_empty(p, "leaks")
}

fn cycles_ok(c: &Value) -> bool {
    c.get("error").is_none()
        && u(c, "cycles") == u(c, "planned")
        && list_empty(c, "errors")
        && list_empty(c, "leaks")
        && u(c, "fds_last") <= u(c, "fds_first")
        && u(c, "fds_after") == u(c, "fds_before")
        && f(c, "heap_slope_bytes_per_cycle_after_warmup") < HEAP_SLOPE_LIMIT
        && rss_growth_kib(c) < RSS_GROWTH_LIMIT_KIB
}

/// RSS growth after warm-up predicted by the fitted line, in KiB.
fn rss_growth_kib(c: &Value) -> f64 {
    let cycles = u(c, "cycles").saturating_sub(u(c, "warmup_cycles"));
    f(c, "rss_slope_kib_per_cycle_after_warmup") * cycles as f64
}

fn failures(report: &Value) -> Vec<String> {
    let mut failed = Vec::new();
    for row in report["rows"].as_array().into_iter().flatten() {
        if row["result"] != "pass" {
            failed.push(format!("{}: {}", row["case"], row["failure"]));
        }
    }
    if report
        .pointer("/properties/tests_ok")
        .unwrap_or(&Value::Null)
        != true
    {
        failed.push(format!(
            "cargo test failed ({})",
            report
                .pointer("/properties/summary")
                .unwrap_or(&Value::Null)
        ));
    }
    let load = &report["load"];
    if !load_ok(&load["load"]) {
        failed.push(format!("load: {}", load["load"]));
    }
    if !plugins_ok(&load["plugins"]) {
        failed.push(format!("plugins: {}", load["plugins"]));
    }
    if !cycles_ok(&load["cycles"]) {
        failed.push(format!("cycles: {}", load["cycles"]));
    }
    for fuzz in report["fuzz"].as_array().into_iter().flatten() {
        if fuzz["ok"] != true {
            failed.push(format!("fuzz {}: {}", fuzz["target"], fuzz["error"]));
        }
    }
    failed
}

// ----- the document -----

/// 1234567 as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok { "pass" } else { "**FAIL**" }
}

/// Escapes a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn group_table(doc: &mut String, rows: &[Value], group: &str) {
    doc.push_str(
        "| Case | Expected behaviour | Measured | Bound | Result |\n|---|---|---|---|---|\n",
    );
    for row in rows.iter().filter(|r| r["group"] == group) {
        let measured = row["measured"].as_str().unwrap_or_default();
        let failure = row["failure"].as_str().unwrap_or_default();
        let measured = if failure.is_empty() {
            measured.to_owned()
        } else {
            format!("{measured} — {failure}")
        };
        let _ = writeln!(
            doc,
            "| {} | {} | {} | {} | {} |",
            cell(row["case"].as_str().unwrap_or_default()),
            cell(row["expected"].as_str().unwrap_or_default()),
            cell(&measured),
            cell(
                row["bound"]
                    .as_str()
                    .filter(|b| !b.is_empty())
                    .unwrap_or("—")
            ),
            verdict(row["result"] == "pass"),
        );
    }
    doc.push('\n');
}

fn render(report: &Value, plan: &Plan, no_fuzz: bool) -> String {
    let mut doc = String::new();
    let rows: Vec<Value> = report["rows"].as_array().cloned().unwrap_or_default();
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| a["case"].as_str().cmp(&b["case"].as_str()));
    let _ = write!(
        doc,
        "# Reliability and security\n\n\
         Generated by `cargo xtask reliability` ({} run) at commit `{}` on {}; \
         do not edit by hand. `cargo xtask reliability --quick` is the CI-sized \
         run and writes `target/reliability/reliability.md` instead. Raw numbers: \
         `target/reliability/report.json`.\n\n\
         Every fault and rogue-peer case is an ordinary test in \
         `crates/tests/tests/reliability/` (`cargo test -p rpcplugin-tests --test reliability`); \
         the load and soak runs are `crates/tests/src/bin/rpcplugin-reliability.rs`; \
         the fuzz targets live in `fuzz/`.\n\n",
        plan.name,
        report["commit"].as_str().unwrap_or("?"),
        report["machine"].as_str().unwrap_or("?"),
    );

    doc.push_str(
        "## Faults\n\n\
         One misbehaving test plugin (`rpcplugin-test-plugin`, `RPCPLUGIN_TEST_MODE`) per case, \
         started by a host that has already started a healthy plugin. Each case passes only if \
         the host returns the expected `rpcplugin::Error` variant within the bound, the healthy \
         plugin still answers a Put and a Get within 2 s afterwards, and the test process is left \
         with the same file descriptors, no child or zombie, no process carrying the suite's \
         marker (grandchildren included) and no new `rpcplugin-*` temp dir.\n\n",
    );
    group_table(&mut doc, &sorted, "fault");

    doc.push_str(
        "## Rogue peers\n\n\
         Against a Rust plugin started by hand with AutoMTLS (magic cookie, `PLUGIN_CLIENT_CERT` \
         from `rpcplugin_certs::Identity`, handshake line read from its stdout). \"Refused\" means \
         the plugin's HTTP/2 server never answered; the real host (the certificate and key the \
         plugin pins) is served before and after every attempt, and the plugin still exits 0 on \
         Shutdown and removes its socket. The plugin's own log line names the refusal.\n\n",
    );
    group_table(&mut doc, &sorted, "rogue peer");

    doc.push_str(
        "## Denial of service\n\n\
         What a local peer can send a plugin before any authentication: over a plaintext \
         plugin's socket, or on connections that never finish TLS. Each case reports the bound \
         the plugin holds and its memory: resident set size before the attack and its peak \
         after (`VmRSS`, `VmHWM` of `/proc/<pid>/status`; a case fails at +32 MiB). The real \
         host is served afterwards, and the plugin still exits 0 on Shutdown.\n\n",
    );
    group_table(&mut doc, &sorted, "dos");

    doc.push_str("## Sockets and the magic cookie\n\n");
    group_table(&mut doc, &sorted, "socket");

    let load = &report["load"];
    let l = &load["load"];
    let p = &load["plugins"];
    let c = &load["cycles"];
    doc.push_str(
        "## Load and soak\n\n\
         Release build, loopback, AutoMTLS (P-256) over unix sockets, one host process. \
         Every run is bounded in count and in time.\n\n\
         | Case | Expected behaviour | Measured | Result |\n|---|---|---|---|\n",
    );
    let _ = writeln!(
        doc,
        "| {} concurrent RPC streams, {} unary calls in total (Put/Get), one plugin | zero errors | {} calls in {:.2} s = {} calls/s, {} errors; latency p50 {} µs, p99 {} µs, max {} µs | {} |",
        u(l, "streams"),
        thousands(u(l, "planned")),
        thousands(u(l, "calls")),
        f(l, "seconds"),
        thousands(f(l, "calls_per_second") as u64),
        u(l, "errors"),
        u(l, "p50_us"),
        u(l, "p99_us"),
        u(l, "max_us"),
        verdict(load_ok(l)),
    );
    let triple = |v: &Value, key: &str| {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(" → ")
            })
            .unwrap_or_default()
    };
    let _ = writeln!(
        doc,
        "| {} plugins started concurrently by one host, each used (Put, Get, health), all killed | all succeed; nothing left | {} started, {} used, {} exited 0; all started in {:.2} s (slowest {:.0} ms); fds {}, children {}, temp dirs {} (before → running → after); leftovers: {} | {} |",
        u(p, "count"),
        u(p, "started"),
        u(p, "used"),
        u(p, "killed_cleanly"),
        f(p, "start_all_seconds"),
        f(p, "slowest_start_ms"),
        triple(p, "fds"),
        triple(p, "children"),
        triple(p, "tmp_dirs"),
        if list_empty(p, "leaks") {
            "none".to_owned()
        } else {
            p["leaks"].to_string()
        },
        verdict(plugins_ok(p)),
    );
    let _ = writeln!(
        doc,
        "| {} sequential start / Put+Get / kill cycles | fd count and RSS of the host flat | {} cycles in {:.1} s, {} errors; fds {} → {} (slope {:.3}/cycle; sampled once the cycle's drops have run: in {} cycles, up to {} descriptors and {} heap bytes were still being freed when kill returned); RSS {} → {} KiB, least-squares slope {:.3} KiB/cycle after {} warm-up cycles ({:.0} KiB per 1,000 cycles; {:.3} over all cycles); live heap {} → {} bytes, slope {:.2} bytes/cycle | {} |",
        thousands(u(c, "planned")),
        thousands(u(c, "cycles")),
        f(c, "seconds"),
        c["errors"].as_array().map_or(0, Vec::len),
        u(c, "fds_first"),
        u(c, "fds_last"),
        f(c, "fd_slope_per_cycle"),
        u(c, "cycles_with_descriptors_closing_after_kill"),
        u(c, "max_descriptors_closing_after_kill"),
        thousands(u(c, "max_heap_bytes_freed_after_kill")),
        u(c, "rss_kib_first"),
        u(c, "rss_kib_last"),
        f(c, "rss_slope_kib_per_cycle_after_warmup"),
        u(c, "warmup_cycles"),
        f(c, "rss_slope_kib_per_cycle_after_warmup") * 1000.0,
        f(c, "rss_slope_kib_per_cycle"),
        u(c, "heap_bytes_first"),
        u(c, "heap_bytes_last"),
        f(c, "heap_slope_bytes_per_cycle_after_warmup"),
        verdict(cycles_ok(c)),
    );
    let _ = writeln!(
        doc,
        "\nThe cycle run counts live heap bytes with a counting global allocator: a flat heap \
         under a slowly rising RSS is the allocator keeping freed pages, not a leak. Limits: \
         live heap under {HEAP_SLOPE_LIMIT} bytes/cycle, and RSS growth after warm-up (slope \
         times cycles) under {RSS_GROWTH_LIMIT_KIB} KiB.\n"
    );

    doc.push_str("## Fuzzing\n\n");
    if no_fuzz {
        doc.push_str("Skipped in this run (`--no-fuzz`).\n\n");
    } else {
        let _ = writeln!(
            doc,
            "`cargo fuzz run -s none <target>` on the stable toolchain (no sanitizer; the \
             parsers have no unsafe code), {} s per target, a scratch corpus in front of the \
             committed seeds in `fuzz/corpus/<target>/`.\n\n\
             | Target | Parser | Seeds | Time | Executions | Executions/s | New corpus units | Peak RSS | Result |\n\
             |---|---|---|---|---|---|---|---|---|",
            plan.fuzz_seconds
        );
        for fuzz in report["fuzz"].as_array().into_iter().flatten() {
            let target = fuzz["target"].as_str().unwrap_or_default();
            let execs = u(fuzz, "executions");
            let seconds = f(fuzz, "seconds");
            let _ = writeln!(
                doc,
                "| `{target}` | {} | {} | {:.0} s | {} | {} | {} | {} MB | {} |",
                parser_of(target),
                u(fuzz, "seeds"),
                seconds,
                thousands(execs),
                thousands((execs as f64 / seconds.max(1.0)) as u64),
                thousands(u(fuzz, "new_units")),
                u(fuzz, "peak_rss_mb"),
                verdict(fuzz["ok"] == true),
            );
        }
        doc.push('\n');
    }
    let _ = writeln!(
        doc,
        "Property tests (`crates/tests/tests/parsers.rs`, proptest, part of `cargo test`) for \
         the same parsers: {}.\n",
        report
            .pointer("/properties/summary")
            .unwrap_or(&Value::Null)
            .as_str()
            .unwrap_or("not run")
    );

    doc.push_str(FINDINGS);
    doc
}

fn parser_of(target: &str) -> &'static str {
    match target {
        "handshake_line" => "`HandshakeLine::parse`",
        "protocol_versions" => "`parse_protocol_versions` (`PLUGIN_PROTOCOL_VERSIONS`)",
        "cert_pem" => "`parse_cert_pem` + `cert_key_type` (`PLUGIN_CLIENT_CERT`)",
        "reattach_json" => "`ReattachConfig` JSON + `.addr()`, `TF_REATTACH_PROVIDERS`",
        "stderr_line" => "`parse_stderr_line` (plugin stderr)",
        "authority_filter" => "HTTP/2 `:authority` filter of served connections",
        _ => "",
    }
}

/// What this suite found, and where it was fixed (static text).
const FINDINGS: &str = "## Findings fixed\n\n\
| Finding | Fix |\n|---|---|\n\
| A plugin that starts a grandchild holding its stdout open and exits before its handshake made the host wait for the whole start timeout (60 s by default): the handshake read waited for EOF only. The grandchild, and the host's stderr relay task, also outlived the plugin on every path. | `runtime`: the plugin leads its own process group; kill, abort, drop and failed starts SIGKILL the group; the handshake read also watches the process exit and the stderr relay is aborted when EOF does not come. |\n\
| A TLS client offering no ALPN at all got through rustls and was served HTTP/2 (grpc-go refuses such connections). | `runtime`: served TLS connections must negotiate `h2`. |\n\
| HPACK bomb: the `:authority` filter decoded a client's whole header block before h2 could apply its 16 KiB header-list limit; a 254 KB block of references to one dynamic-table entry decoded to 1 GB (2 GB of plugin RSS, seconds of CPU). | `runtime`: headers are re-encoded while decoding and a list over 1 MiB is refused first. |\n\
| CONTINUATION flood (CVE-2023-45288, which h2 and grpc-go bound): the `:authority` filter kept every frame of an unfinished header block, and empty CONTINUATION frames never reached its 1 MiB block limit (72 MiB sent, plugin RSS +72 MiB, never closed). | `runtime`: a header block may span at most 80 frames (h2's count for a 1 MiB block), then the connection is closed. |\n\
| go-plugin's own services (health, broker, stdio) accepted 2^31-1-byte messages, and tonic reserves what a length prefix declares: four 5-byte prefixes made the plugin's address space grow by 8 GiB. | `runtime`: 4 MiB per message on health, controller, stdio and broker (grpc-go's default, which go-plugin's plugin side keeps); the KV example takes the 256 MiB of `peers/CONTRACT.md`. |\n\
| Health Check echoed the requested service name into its error: a 16 MiB name cost 49 MiB of plugin RSS and an error the host could not even read. | `runtime`: the error says \"unknown service\", as grpc-go's does. |\n\
| Plaintext connections that never sent the HTTP/2 preface stayed open forever; TLS handshakes in flight were not capped; the soft RLIMIT_NOFILE stayed as inherited; \"accept failed\" was logged every 10 ms on EMFILE (165 lines in 2 s). | `runtime`: 10 s preface timeout; at most 128 TLS handshakes at once; soft RLIMIT_NOFILE raised to the hard limit at start (as Go does); accept errors back off from 5 ms to 1 s and are logged at most once a second. |\n\n\
## Left as they are\n\n\
- The plugin now runs in its own process group: terminal Ctrl-C reaches only the host (plugins ignore SIGINT anyway), and a plugin that reads from a terminal on stdin would be stopped as a background job.\n\
- A process group is the unit that is killed: a grandchild that calls `setsid` or `setpgid` itself leaves the group and is not killed.\n\
- `Addr::parse` accepts any TCP address a plugin announces (as go-plugin does), not only loopback; with AutoMTLS the certificate is pinned from the same line, so this gives a plugin nothing it did not have.\n\
- The host as TLS client does not check that the plugin negotiated ALPN `h2` (Go and pyvider plugins always do).\n\
- Flooding plugins cost the host CPU, not memory: the stderr tail keeps 20 lines of at most 512 bytes, stdout after the handshake is discarded, and a log line over 1 MiB is read in pieces.\n";
