//! `cargo xtask bench`: cold start, unary latency, throughput and memory of
//! every host × plugin pair among Rust (rpcplugin), Go (hashicorp/go-plugin)
//! and Python (pyvider-rpcplugin), AutoMTLS on and off, over unix sockets,
//! measured side by side in one run, plus the Rust build and runtime knobs
//! and raw socket floors.
//!
//! Writes `target/bench/report.json` and regenerates `docs/performance.md`
//! with its plots. `--quick` is the CI-sized run: the same cells with fewer
//! launches and calls, rendered into `target/bench/performance.md` so that
//! the committed document keeps a full run's figures.
//!
//! Noise control on a shared machine: every cold-start launch round visits
//! every cell before the next round starts, and sessions are repeated in
//! rounds, so load that comes and goes hits all pairs alike; figures are
//! medians over launches and over rounds.

mod chart;
mod doc;

use crate::process::{self, Stderr, checked as run_quiet, which};
use crate::report::{self, BenchDurations, BenchParams, BenchReport};
use crate::units::{self, ms};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Command-line options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A CI-sized run: fewer launches and calls, same coverage.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Use the binaries already built (skip cargo, go build and the venv).
    #[arg(long)]
    pub(crate) no_build: bool,
    /// Run only the cells whose id contains one of these strings (ids look
    /// like `rust->go auto`; several as `--only a --only b` or
    /// `--only a,b`); the docs are then left as they are.
    #[arg(long, value_delimiter = ',')]
    pub(crate) only: Vec<String>,
    /// Measure nothing: regenerate docs/performance.md and its plots from
    /// target/bench/report.json (after editing the notes or the renderer;
    /// a quick run's report renders into target/bench/ instead).
    #[arg(long, alias = "from-report")]
    pub(crate) render: bool,
}

/// Sizes of one run.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub(crate) kind: &'static str,
    pub(crate) launches: usize,
    pub(crate) split_launches: usize,
    pub(crate) rounds: usize,
    pub(crate) warmup_calls: usize,
    pub(crate) latency_calls: usize,
    pub(crate) concurrency: Vec<usize>,
    pub(crate) throughput_ms: u64,
    pub(crate) bulk: Vec<(usize, usize)>,
    pub(crate) idle_ms: u64,
    pub(crate) floor_calls: usize,
    pub(crate) floor_bulk_bytes: usize,
}

impl Params {
    fn new(quick: bool) -> Params {
        if quick {
            Params {
                kind: "quick",
                launches: 3,
                split_launches: 3,
                rounds: 1,
                warmup_calls: 100,
                latency_calls: 1000,
                concurrency: vec![1, 16, 64],
                throughput_ms: 300,
                bulk: vec![(1 << 20, 5), (64 << 20, 1)],
                idle_ms: 100,
                floor_calls: 2000,
                floor_bulk_bytes: 64 << 20,
            }
        } else {
            Params {
                kind: "full",
                launches: 30,
                split_launches: 30,
                rounds: 3,
                warmup_calls: 500,
                latency_calls: 10_000,
                concurrency: vec![1, 16, 64],
                throughput_ms: 1500,
                bulk: vec![(1 << 20, 40), (64 << 20, 4)],
                idle_ms: 300,
                floor_calls: 20_000,
                floor_bulk_bytes: 512 << 20,
            }
        }
    }

    fn bulk_flag(&self) -> String {
        self.bulk
            .iter()
            .map(|(size, reps)| format!("{size}x{reps}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn to_report(&self) -> BenchParams {
        BenchParams {
            kind: self.kind.into(),
            cold_launches: self.launches,
            split_launches: self.split_launches,
            session_rounds: self.rounds,
            warmup_calls: self.warmup_calls,
            latency_calls: self.latency_calls,
            concurrency: self.concurrency.clone(),
            throughput_ms: self.throughput_ms,
            bulk: self.bulk_flag(),
            idle_ms: self.idle_ms,
            floor_calls: self.floor_calls,
            floor_bulk_bytes: self.floor_bulk_bytes,
        }
    }
}

/// One implementation of a host or plugin.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Impl {
    /// rpcplugin, default runtime (multi-thread tokio); as a plugin, built
    /// with the workspace's `plugin` profile (the guide's recommendation).
    Rust,
    /// The Rust plugin built with the plain `release` profile.
    RustRelease,
    /// rpcplugin on a current-thread tokio runtime.
    RustCt,
    /// rpcplugin built with aws-lc's CPU-jitter entropy source.
    RustJitter,
    /// rpcplugin with glibc's malloc asking for transparent huge pages
    /// ([`THP_TUNABLES`]).
    RustThp,
    /// rpcplugin with glibc's malloc keeping freed memory for reuse
    /// ([`HEAP_TUNABLES`]).
    RustHeap,
    /// hashicorp/go-plugin.
    Go,
    /// pyvider-rpcplugin.
    Python,
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Impl::Rust => "rust",
            Impl::RustRelease => "rust-release",
            Impl::RustCt => "rust-ct",
            Impl::RustJitter => "rust-jitter",
            Impl::RustThp => "rust-thp",
            Impl::RustHeap => "rust-heap",
            Impl::Go => "go",
            Impl::Python => "python",
        })
    }
}

/// The language of an [`Impl`]: which bench programs it runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lang {
    Rust,
    Go,
    Python,
}

impl Impl {
    fn lang(self) -> Lang {
        match self {
            Impl::Rust
            | Impl::RustRelease
            | Impl::RustCt
            | Impl::RustJitter
            | Impl::RustThp
            | Impl::RustHeap => Lang::Rust,
            Impl::Go => Lang::Go,
            Impl::Python => Lang::Python,
        }
    }

    /// The `GLIBC_TUNABLES` a knob runs its host with (the plugin inherits
    /// them).
    fn glibc_tunables(self) -> Option<&'static str> {
        match self {
            Impl::RustThp => Some(THP_TUNABLES),
            Impl::RustHeap => Some(HEAP_TUNABLES),
            _ => None,
        }
    }
}

/// What a cell is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Group {
    /// The language matrix, default builds.
    Main,
    /// A build or runtime knob of the Rust side.
    Knob,
}

/// One host × plugin × TLS pairing.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    pub(crate) host: Impl,
    pub(crate) plugin: Impl,
    pub(crate) tls: &'static str,
    pub(crate) group: Group,
    /// Whether it gets cold-start launches.
    pub(crate) cold: bool,
    /// Whether it gets latency/throughput/memory sessions.
    pub(crate) session: bool,
    /// Whether the Rust host also launches it step by step (cost split).
    pub(crate) split: bool,
    /// Why it is not run at all.
    pub(crate) skip: Option<&'static str>,
    /// The host asks for broker multiplexing (go-plugin's
    /// `GRPCBrokerMultiplex`): the calls run on a yamux stream.
    pub(crate) mux: bool,
}

impl Cell {
    pub(crate) fn id(&self) -> String {
        let mux = if self.mux { " mux" } else { "" };
        format!("{}->{} {}{mux}", self.host, self.plugin, self.tls)
    }
}

const PYTHON_GO_AUTO: &str = "go-plugin's AutoMTLS certificate is always ECDSA P-521, which grpcio \
     (BoringSSL) cannot verify; see peers/RESULTS.md";

fn all_cells() -> Vec<Cell> {
    let cell = |host, plugin, tls, group| Cell {
        host,
        plugin,
        tls,
        group,
        cold: true,
        session: true,
        split: false,
        skip: None,
        mux: false,
    };
    let mut cells = Vec::new();
    for host in [Impl::Rust, Impl::Go, Impl::Python] {
        for plugin in [Impl::Rust, Impl::Go, Impl::Python] {
            for tls in ["off", "auto"] {
                let mut c = cell(host, plugin, tls, Group::Main);
                c.split = host == Impl::Rust && plugin == Impl::Rust;
                if host == Impl::Python && plugin == Impl::Go && tls == "auto" {
                    c.skip = Some(PYTHON_GO_AUTO);
                }
                cells.push(c);
            }
        }
    }
    for tls in ["off", "auto"] {
        cells.push(cell(Impl::Rust, Impl::RustCt, tls, Group::Knob));
        cells.push(cell(Impl::RustCt, Impl::Rust, tls, Group::Knob));
        cells.push(cell(Impl::RustCt, Impl::RustCt, tls, Group::Knob));
    }
    cells.push(cell(Impl::Go, Impl::RustCt, "auto", Group::Knob));
    for tls in ["off", "auto"] {
        let mut c = cell(Impl::RustJitter, Impl::RustJitter, tls, Group::Knob);
        c.session = false;
        c.split = true;
        cells.push(c);
    }
    let mut c = cell(Impl::Go, Impl::RustJitter, "auto", Group::Knob);
    c.session = false;
    cells.push(c);
    cells.push(cell(Impl::Rust, Impl::RustRelease, "auto", Group::Knob));
    for imp in [Impl::RustThp, Impl::RustHeap] {
        let mut c = cell(imp, imp, "auto", Group::Knob);
        c.cold = false;
        cells.push(c);
    }
    // Multiplexed beside plain: Rust and Go in both roles (pyvider does
    // not multiplex).
    for host in [Impl::Rust, Impl::Go] {
        for plugin in [Impl::Rust, Impl::Go] {
            let mut c = cell(host, plugin, "auto", Group::Knob);
            c.cold = false;
            c.mux = true;
            cells.push(c);
        }
    }
    cells
}

/// Where every program lives.
struct Bins {
    rust: PathBuf,
    rust_plugin: PathBuf,
    rust_jitter: PathBuf,
    go: PathBuf,
    python: PathBuf,
    python_dir: PathBuf,
}

impl Bins {
    fn new(root: &Path) -> Bins {
        Bins {
            rust: root.join("target/release"),
            rust_plugin: root.join(PLUGIN_PROFILE_DIR),
            rust_jitter: root.join(JITTER_TARGET).join("release"),
            go: root.join("peers/go/bin"),
            python: root.join("peers/python/.venv/bin/python"),
            python_dir: root.join("peers/python"),
        }
    }

    /// The Rust bench host of `imp`.
    fn rust_host(&self, imp: Impl) -> PathBuf {
        let dir = if imp == Impl::RustJitter {
            &self.rust_jitter
        } else {
            &self.rust
        };
        dir.join("kv-bench")
    }

    /// The Rust bench plugin of `imp`.
    fn rust_plugin(&self, imp: Impl) -> PathBuf {
        let dir = match imp {
            Impl::RustJitter => &self.rust_jitter,
            Impl::RustRelease => &self.rust,
            _ => &self.rust_plugin,
        };
        dir.join("kv-bench-plugin")
    }

    /// The host command with the flags that name the plugin.
    fn host(&self, cell: &Cell) -> Command {
        let mut cmd = match cell.host.lang() {
            Lang::Rust => Command::new(self.rust_host(cell.host)),
            Lang::Go => Command::new(self.go.join("kv-bench")),
            Lang::Python => {
                let mut c = Command::new(&self.python);
                c.arg(self.python_dir.join("kv_bench_host.py"));
                c
            }
        };
        match cell.plugin.lang() {
            Lang::Rust => {
                cmd.arg("--plugin").arg(self.rust_plugin(cell.plugin));
            }
            Lang::Go => {
                cmd.arg("--plugin").arg(self.go.join("kv-bench-plugin"));
            }
            Lang::Python => {
                cmd.arg("--plugin")
                    .arg(&self.python)
                    .arg("--plugin-arg")
                    .arg(self.python_dir.join("kv_bench_plugin.py"));
            }
        }
        let runtime = |ct: bool| if ct { "current" } else { "multi" };
        cmd.args(["--tls", cell.tls])
            .env(
                "RPCPLUGIN_BENCH_RUNTIME",
                runtime(cell.plugin == Impl::RustCt),
            )
            .env(
                "RPCPLUGIN_BENCH_HOST_RUNTIME",
                runtime(cell.host == Impl::RustCt),
            )
            .env_remove("RPCPLUGIN_BENCH_TIMINGS")
            .env_remove("GLIBC_TUNABLES")
            .env("PROVIDE_LOG_LEVEL", "WARNING")
            .stdin(Stdio::null());
        if cell.mux {
            cmd.arg("--mux");
        }
        if let Some(tunables) = cell.host.glibc_tunables() {
            // Inherited by the plugin.
            cmd.env("GLIBC_TUNABLES", tunables);
        }
        cmd
    }
}

/// glibc malloc asking for transparent huge pages for large buffers.
pub(crate) const THP_TUNABLES: &str = "glibc.malloc.hugetlb=1";

/// glibc malloc settings that keep large freed buffers for reuse: no
/// `mmap` for large allocations (above 32 MiB glibc otherwise maps each one
/// afresh and unmaps it on free), up to 256 MiB of free heap kept instead of
/// trimmed, and one arena (a thread's own arena cannot grow past 64 MiB, so
/// larger allocations would go back to `mmap`). The guide's "Very large
/// messages" advice.
pub(crate) const HEAP_TUNABLES: &str =
    "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=268435456:glibc.malloc.arena_max=1";

const JITTER_TARGET: &str = "target/bench-jitter";
/// Where `cargo build --profile plugin` puts the plugin.
const PLUGIN_PROFILE_DIR: &str = "target/plugin";

fn build(root: &Path) -> Result<()> {
    let mut missing = Vec::new();
    if which("go").is_none() {
        missing.push("Go (the `go` command) is not installed: the Go peer cannot be built");
    }
    if which("python3.11").is_none() {
        missing.push("Python 3.11 (`python3.11`) is not installed: the Python peer cannot run");
    }
    if !missing.is_empty() {
        bail!(
            "the benchmarks need the real peers:\n  - {}",
            missing.join("\n  - ")
        );
    }
    eprintln!("bench: building the Rust bench programs (release)");
    run_quiet(Command::new(env!("CARGO")).current_dir(root).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "rpcplugin-bench",
    ]))?;
    eprintln!("bench: building the Rust bench plugin with the `plugin` profile");
    run_quiet(Command::new(env!("CARGO")).current_dir(root).args([
        "build",
        "--profile",
        "plugin",
        "--quiet",
        "-p",
        "rpcplugin-bench",
        "--bin",
        "kv-bench-plugin",
    ]))?;
    // The workspace's .cargo/config.toml sets AWS_LC_SYS_NO_JITTER_ENTROPY=1
    // without `force`, so a value in the environment wins; aws-lc-sys'
    // build script reads "0" as false, i.e. builds its jitter entropy source.
    eprintln!("bench: building them again with aws-lc's CPU-jitter entropy ({JITTER_TARGET})");
    run_quiet(
        Command::new(env!("CARGO"))
            .current_dir(root)
            .env("AWS_LC_SYS_NO_JITTER_ENTROPY", "0")
            .env_remove("AWS_LC_SYS_NO_JITTER_ENTROPY_x86_64_unknown_linux_gnu")
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "rpcplugin-bench",
                "--target-dir",
                JITTER_TARGET,
            ]),
    )?;
    eprintln!("bench: building the Go peer (hashicorp/go-plugin)");
    run_quiet(Command::new("bash").arg(root.join("peers/go/build.sh")))?;
    eprintln!("bench: setting up the Python peer (pyvider-rpcplugin venv)");
    run_quiet(Command::new("bash").arg(root.join("peers/python/setup.sh")))?;
    Ok(())
}

/// What one program run produced.
#[derive(Debug, Clone)]
struct RunOut {
    /// The JSON line, or `{"ok": false, "error": ...}`.
    result: Value,
    /// Spawn to exit, as seen from here.
    wall_ms: f64,
}

impl RunOut {
    fn ok(&self) -> bool {
        self.result.get("ok").and_then(Value::as_bool) == Some(true)
    }

    fn error(&self) -> String {
        self.result
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no error text")
            .to_owned()
    }
}

/// Runs `cmd`, timing it from spawn to exit, and parses its last stdout
/// line as JSON. A run longer than `limit` is killed.
fn run_json(cmd: Command, log: &Path, limit: Duration) -> RunOut {
    let failure = |error: String, wall_ms: f64| RunOut {
        result: json!({"ok": false, "error": error}),
        wall_ms,
    };
    let out = match process::run(cmd, limit, Stderr::AppendTo(log.to_path_buf())) {
        Ok(out) => out,
        Err(err) => return failure(format!("bench: {:#}", anyhow::Error::from(err)), 0.0),
    };
    let wall_ms = ms(out.elapsed);
    if out.timed_out {
        return failure(
            format!("bench: killed after {} s", limit.as_secs()),
            wall_ms,
        );
    }
    let Some(line) = out.stdout.lines().rev().find(|l| !l.trim().is_empty()) else {
        return failure("bench: no JSON line on stdout".into(), wall_ms);
    };
    match serde_json::from_str::<Value>(line) {
        Ok(result) => RunOut { result, wall_ms },
        Err(err) => failure(format!("bench: not JSON ({err}): {line}"), wall_ms),
    }
}

/// Nearest-rank percentile of unsorted samples.
pub(crate) fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

pub(crate) fn median(samples: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted.get(n / 2).copied()
    } else {
        Some((sorted.get(n / 2 - 1)? + sorted.get(n / 2)?) / 2.0)
    }
}

fn round3(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |v| json!((v * 1000.0).round() / 1000.0))
}

/// `{median, p90, min, n}` of samples.
fn stats(samples: &[f64]) -> Value {
    json!({
        "median": round3(median(samples)),
        "p90": round3(percentile(samples, 90.0)),
        "min": round3(percentile(samples, 0.0)),
        "n": samples.len(),
    })
}

/// The number at `path` (keys and array indexes) in `v`.
pub(crate) fn num(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for key in path {
        cur = match key.parse::<usize>() {
            Ok(i) if cur.is_array() => cur.get(i)?,
            _ => cur.get(*key)?,
        };
    }
    cur.as_f64()
}

/// Everything measured for one cell.
#[derive(Default, Debug)]
struct CellData {
    cold: Vec<RunOut>,
    split: Vec<RunOut>,
    sessions: Vec<RunOut>,
    errors: Vec<String>,
}

/// Runs `cargo xtask bench`: builds, measures every cell, writes the
/// report and regenerates docs/performance.md (or only renders, with
/// `--render`).
pub fn run(root: &Path, args: &Args) -> Result<()> {
    if args.render {
        let path = root.join("target/bench/report.json");
        let text = fs::read_to_string(&path)
            .with_context(|| format!("reading {}; run the benchmarks first", path.display()))?;
        let report: BenchReport =
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        return doc::write(root, &serde_json::to_value(&report)?);
    }
    let started = Instant::now();
    let params = Params::new(args.quick);
    let out_dir = root.join("target/bench");
    let log_dir = out_dir.join("logs");
    let _ = fs::remove_dir_all(&log_dir);
    fs::create_dir_all(&log_dir)?;
    if !args.no_build {
        build(root)?;
    }
    let build_s = started.elapsed().as_secs_f64();
    let bins = Bins::new(root);
    let machine_before = machine();
    let cells: Vec<Cell> = all_cells()
        .into_iter()
        .filter(|c| args.only.is_empty() || args.only.iter().any(|f| c.id().contains(f.as_str())))
        .collect();
    if cells.is_empty() {
        bail!("no cell matches {:?}", args.only);
    }
    let active: Vec<&Cell> = cells.iter().filter(|c| c.skip.is_none()).collect();
    let mut data: BTreeMap<String, CellData> = BTreeMap::new();
    let measure_started = Instant::now();
    let log_of = |cell: &Cell, what: &str| {
        log_dir.join(format!(
            "{}-{what}.log",
            cell.id().replace("->", "_to_").replace(' ', "_")
        ))
    };

    // Floors.
    eprintln!("bench: floors (raw unix and TLS ping-pong, bulk)");
    let mut floors: BTreeMap<&str, Vec<RunOut>> = BTreeMap::new();
    for _ in 0..params.rounds {
        for runtime in ["current", "multi"] {
            let mut cmd = Command::new(bins.rust.join("bench-floor"));
            cmd.args([
                "--runtime",
                runtime,
                "--calls",
                &params.floor_calls.to_string(),
                "--bulk-bytes",
                &params.floor_bulk_bytes.to_string(),
            ])
            .stdin(Stdio::null());
            let out = run_json(cmd, &log_dir.join("floor.log"), Duration::from_secs(120));
            if !out.ok() {
                bail!("bench-floor ({runtime}) failed: {}", out.error());
            }
            floors.entry(runtime).or_default().push(out);
        }
    }

    // Cold starts: one untimed round, then every round visits every cell.
    let cold_limit = Duration::from_secs(60);
    let launch_flags = |cmd: &mut Command, mode: &str| {
        cmd.args(["--mode", mode, "--timeout-ms", "30000"]);
    };
    eprintln!(
        "bench: cold start, {} launches of {} cells (+1 warm-up round)",
        params.launches,
        active.len()
    );
    for round in 0..=params.launches.max(params.split_launches) {
        for cell in &active {
            let entry = data.entry(cell.id()).or_default();
            if cell.cold && round <= params.launches {
                let mut cmd = bins.host(cell);
                launch_flags(&mut cmd, "cold");
                let out = run_json(cmd, &log_of(cell, "cold"), cold_limit);
                if !out.ok() {
                    entry.errors.push(format!("cold: {}", out.error()));
                }
                if round > 0 {
                    entry.cold.push(out);
                }
            }
            if cell.split && round <= params.split_launches {
                let mut cmd = bins.host(cell);
                launch_flags(&mut cmd, "split");
                let out = run_json(cmd, &log_of(cell, "split"), cold_limit);
                if !out.ok() {
                    entry.errors.push(format!("split: {}", out.error()));
                }
                if round > 0 {
                    entry.split.push(out);
                }
            }
        }
        if round > 0 && (round % 5 == 0 || round == params.launches) {
            eprintln!(
                "bench:   cold round {round}/{} ({:.0} s)",
                params.launches,
                measure_started.elapsed().as_secs_f64()
            );
        }
    }

    // Sessions: latency, throughput, bulk, memory.
    let session_limit = Duration::from_secs(300);
    for round in 0..params.rounds {
        eprintln!(
            "bench: sessions, round {}/{} ({:.0} s)",
            round + 1,
            params.rounds,
            measure_started.elapsed().as_secs_f64()
        );
        for cell in active.iter().filter(|c| c.session) {
            let mut cmd = bins.host(cell);
            cmd.args([
                "--mode",
                "run",
                "--warmup-calls",
                &params.warmup_calls.to_string(),
                "--latency-calls",
                &params.latency_calls.to_string(),
                "--concurrency",
                &params
                    .concurrency
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                "--throughput-ms",
                &params.throughput_ms.to_string(),
                "--bulk",
                &params.bulk_flag(),
                "--idle-ms",
                &params.idle_ms.to_string(),
                "--timeout-ms",
                "240000",
            ]);
            let out = run_json(cmd, &log_of(cell, "run"), session_limit);
            let entry = data.entry(cell.id()).or_default();
            if out.ok() {
                eprintln!(
                    "bench:   {:<26} p50 {:>8.1} us, {:>7.0} calls/s at 64",
                    cell.id(),
                    num(&out.result, &["latency_us", "p50"]).unwrap_or(f64::NAN),
                    num(&out.result, &["throughput", "2", "calls_per_s"]).unwrap_or(f64::NAN),
                );
            } else {
                eprintln!("bench:   {:<26} FAILED: {}", cell.id(), out.error());
                entry.errors.push(format!("run: {}", out.error()));
            }
            entry.sessions.push(out);
        }
    }
    let measure_s = measure_started.elapsed().as_secs_f64();

    // Aggregate.
    let floor_json: BTreeMap<&str, Value> = floors
        .iter()
        .map(|(runtime, runs)| (*runtime, aggregate_floor(runs)))
        .collect();
    let mut cells_json = Vec::new();
    let mut failures = Vec::new();
    for cell in &cells {
        let empty = CellData::default();
        let d = data.get(&cell.id()).unwrap_or(&empty);
        if !d.errors.is_empty() {
            failures.push(format!(
                "{}: {} failed runs, first: {}",
                cell.id(),
                d.errors.len(),
                d.errors.first().map(String::as_str).unwrap_or("")
            ));
        }
        cells_json.push(aggregate_cell(cell, d));
    }
    let versions = versions(root, &bins);
    let mut report = BenchReport {
        generated: now_utc(),
        kind: params.kind.into(),
        command: if args.quick {
            "cargo xtask bench --quick"
        } else {
            "cargo xtask bench"
        }
        .into(),
        only: args.only.clone(),
        durations_s: BenchDurations {
            build: units::round(build_s, 1),
            measure: units::round(measure_s, 1),
            total: units::seconds_tenths(started.elapsed()),
        },
        params: params.to_report(),
        machine: machine_before,
        load_after: loadavg(),
        versions,
        floors: serde_json::to_value(&floor_json)?,
        cells: cells_json,
        failures: failures.clone(),
        targets: None,
    };
    report.targets = Some(doc::targets(&serde_json::to_value(&report)?));
    let path = out_dir.join("report.json");
    report::write(&path, &report)?;
    let report = serde_json::to_value(&report)?;
    eprintln!("bench: wrote {}", path.display());
    if args.only.is_empty() {
        doc::write(root, &report)?;
    } else {
        eprintln!("bench: filtered run; no document written");
    }
    for line in doc::target_lines(&report) {
        eprintln!("bench: {line}");
    }
    eprintln!(
        "bench: {} run finished in {:.0} s (build {:.0} s, measurements {:.0} s)",
        params.kind,
        started.elapsed().as_secs_f64(),
        build_s,
        measure_s
    );
    if !failures.is_empty() {
        bail!(
            "{} cells had failed runs (see target/bench/logs/):\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

fn aggregate_floor(runs: &[RunOut]) -> Value {
    let pick = |path: &[&str]| -> Vec<f64> {
        runs.iter()
            .filter_map(|r| num(&r.result, path))
            .collect::<Vec<_>>()
    };
    let mut out = serde_json::Map::new();
    for kind in ["unix", "tls"] {
        out.insert(
            kind.into(),
            json!({
                "p50_us": round3(median(&pick(&[kind, "latency_us", "p50"]))),
                "p99_us": round3(median(&pick(&[kind, "latency_us", "p99"]))),
                "bulk_mb_s": round3(median(&pick(&[kind, "bulk_mb_s"]))),
            }),
        );
    }
    Value::Object(out)
}

fn aggregate_cell(cell: &Cell, d: &CellData) -> Value {
    let ok_cold: Vec<&RunOut> = d.cold.iter().filter(|r| r.ok()).collect();
    let cold = if ok_cold.is_empty() {
        Value::Null
    } else {
        let wall: Vec<f64> = ok_cold.iter().map(|r| r.wall_ms).collect();
        let field = |name: &str| -> Vec<f64> {
            ok_cold
                .iter()
                .filter_map(|r| num(&r.result, &[name]))
                .collect()
        };
        json!({
            "process_ms": stats(&wall),
            "first_rpc_ms": stats(&field("first_rpc_ms")),
            "start_ms": stats(&field("start_ms")),
            "samples_process_ms": wall,
            "samples_first_rpc_ms": field("first_rpc_ms"),
        })
    };
    let ok_split: Vec<&RunOut> = d.split.iter().filter(|r| r.ok()).collect();
    let split = if ok_split.is_empty() {
        Value::Null
    } else {
        let mut host = serde_json::Map::new();
        let mut plugin = serde_json::Map::new();
        let step_names = |key: &str| -> Vec<String> {
            ok_split
                .first()
                .and_then(|r| r.result.get(key))
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        for name in step_names("split_ms") {
            let v: Vec<f64> = ok_split
                .iter()
                .filter_map(|r| num(&r.result, &["split_ms", &name]))
                .collect();
            host.insert(name, round3(median(&v)));
        }
        for name in step_names("plugin_split_ms") {
            let v: Vec<f64> = ok_split
                .iter()
                .filter_map(|r| num(&r.result, &["plugin_split_ms", &name]))
                .collect();
            plugin.insert(name, round3(median(&v)));
        }
        let total: Vec<f64> = ok_split
            .iter()
            .filter_map(|r| num(&r.result, &["first_rpc_ms"]))
            .collect();
        json!({"host_ms": host, "plugin_ms": plugin, "first_rpc_ms": stats(&total)})
    };
    let ok_sessions: Vec<&RunOut> = d.sessions.iter().filter(|r| r.ok()).collect();
    let session = if ok_sessions.is_empty() {
        Value::Null
    } else {
        let med = |path: &[&str]| -> Value {
            let v: Vec<f64> = ok_sessions
                .iter()
                .filter_map(|r| num(&r.result, path))
                .collect();
            round3(median(&v))
        };
        let mut throughput = Vec::new();
        let levels = ok_sessions
            .first()
            .and_then(|r| r.result.get("throughput"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for i in 0..levels {
            let idx = i.to_string();
            throughput.push(json!({
                "concurrency": med(&["throughput", &idx, "concurrency"]),
                "calls_per_s": med(&["throughput", &idx, "calls_per_s"]),
            }));
        }
        let mut bulk = Vec::new();
        let sizes = ok_sessions
            .first()
            .and_then(|r| r.result.get("bulk"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for i in 0..sizes {
            let idx = i.to_string();
            bulk.push(json!({
                "size": med(&["bulk", &idx, "size"]),
                "put_mb_s": med(&["bulk", &idx, "put_mb_s"]),
                "get_mb_s": med(&["bulk", &idx, "get_mb_s"]),
            }));
        }
        let mut rss = serde_json::Map::new();
        for key in [
            "plugin_idle",
            "host_idle",
            "plugin_peak_small",
            "host_peak_small",
            "plugin_peak",
            "plugin_after_bulk",
            "host_peak",
        ] {
            rss.insert(key.into(), med(&["rss_kb", key]));
        }
        json!({
            "rounds": ok_sessions.len(),
            "latency_us": {
                "p50": med(&["latency_us", "p50"]),
                "p90": med(&["latency_us", "p90"]),
                "p99": med(&["latency_us", "p99"]),
                "mean": med(&["latency_us", "mean"]),
            },
            // The Rust host's second loop, from a spawned task (null for
            // the other hosts).
            "latency_task_us": {
                "p50": med(&["latency_task_us", "p50"]),
            },
            "throughput": throughput,
            "bulk": bulk,
            "rss_kb": rss,
            "tls_version": ok_sessions.first().and_then(|r| r.result.get("tls_version")).cloned(),
        })
    };
    json!({
        "id": cell.id(),
        "host": cell.host.to_string(),
        "plugin": cell.plugin.to_string(),
        "tls": cell.tls,
        "group": match cell.group { Group::Main => "main", Group::Knob => "knob" },
        "mux": cell.mux,
        "skip": cell.skip,
        "cold": cold,
        "split": split,
        "session": session,
        "errors": d.errors,
        "raw_sessions": d.sessions.iter().map(|r| r.result.clone()).collect::<Vec<_>>(),
    })
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn loadavg() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn machine() -> Value {
    let cpuinfo = read("/proc/cpuinfo");
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    };
    let mem_kb = read("/proc/meminfo").lines().find_map(|l| {
        l.strip_prefix("MemTotal:")?
            .split_whitespace()
            .next()?
            .parse::<u64>()
            .ok()
    });
    json!({
        "cpu_model": field("model name"),
        "cpu_mhz": field("cpu MHz"),
        "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "mem_gib": mem_kb.map(|kb| (kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "load_before": loadavg(),
    })
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let line = text.lines().next()?.trim().to_owned();
    (!line.is_empty()).then_some(line)
}

/// The version of a package in Cargo.lock.
fn lock_version(lock: &str, name: &str) -> Option<String> {
    let needle = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == needle {
            let version = lines.next()?.trim().strip_prefix("version = ")?;
            return Some(version.trim_matches('"').to_owned());
        }
    }
    None
}

fn versions(root: &Path, bins: &Bins) -> Value {
    let lock = read(root.join("Cargo.lock"));
    let go_mod = read(root.join("peers/go/go.mod"));
    let go_dep = |module: &str| {
        go_mod.lines().find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next()? == module).then(|| parts.next().map(str::to_owned))?
        })
    };
    let reqs = read(root.join("peers/python/requirements.txt"));
    let pin = |name: &str| {
        reqs.lines().find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{name}=="))
                .map(str::to_owned)
        })
    };
    let mut rust = serde_json::Map::new();
    rust.insert("rpcplugin".into(), json!(env!("CARGO_PKG_VERSION")));
    rust.insert("rustc".into(), json!(command_line("rustc", &["-V"])));
    for name in [
        "tonic",
        "h2",
        "hyper",
        "tokio",
        "rustls",
        "tokio-rustls",
        "aws-lc-rs",
        "aws-lc-sys",
        "prost",
    ] {
        rust.insert(name.into(), json!(lock_version(&lock, name)));
    }
    json!({
        "rust": rust,
        "go": {
            "go": command_line("go", &["version"]),
            "go-plugin": go_dep("github.com/hashicorp/go-plugin"),
            "grpc-go": go_dep("google.golang.org/grpc"),
        },
        "python": {
            "python": command_line(&bins.python.to_string_lossy(), &["-V"]),
            "pyvider-rpcplugin": pin("pyvider-rpcplugin"),
            "grpcio": pin("grpcio"),
            "protobuf": pin("protobuf"),
        },
    })
}

fn now_utc() -> String {
    command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_ids_are_unique() {
        let cells = all_cells();
        let ids: std::collections::BTreeSet<String> = cells.iter().map(Cell::id).collect();
        assert_eq!(ids.len(), cells.len());
        assert!(ids.contains("rust->rust auto"));
        assert!(ids.contains("go->go off"));
    }

    #[test]
    fn statistics() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 90.0), Some(9.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        let j = json!({"a": [{"b": 2.5}]});
        assert_eq!(num(&j, &["a", "0", "b"]), Some(2.5));
    }

    #[test]
    fn lock_versions() {
        let lock = "[[package]]\nname = \"tonic\"\nversion = \"0.14.9\"\n";
        assert_eq!(lock_version(lock, "tonic").as_deref(), Some("0.14.9"));
        assert_eq!(lock_version(lock, "h2"), None);
    }
}
