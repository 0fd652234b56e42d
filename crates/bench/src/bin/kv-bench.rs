//! The Rust bench host: launches a KV plugin (any language) with
//! `rpcplugin::Client` and measures it. One JSON line on stdout.
//!
//! The Go (`peers/go/cmd/kv-bench`) and Python (`peers/python/kv_bench_host.py`)
//! bench hosts take the same flags and print the same fields:
//!
//! ```text
//! kv-bench --plugin PATH [--plugin-arg ARG]... [--tls off|auto] [--mode cold|run|split]
//!          [--warmup-calls 200] [--latency-calls 10000] [--concurrency 1,16,64]
//!          [--throughput-ms 2000] [--bulk 1048576x20,67108864x4] [--idle-ms 200]
//!          [--timeout-ms 120000] [--mux]
//! ```
//!
//! - `cold`: launch, one Put of 16 bytes, kill.
//! - `run`: launch, first Put, idle RSS, `--latency-calls` sequential Gets of
//!   16 bytes from the body of `main` (`latency_us`) and as many again from
//!   one spawned task (`latency_task_us`, this host only), then for each
//!   `--concurrency` level as many Gets as complete in `--throughput-ms`,
//!   then for each `SIZExREPS` of `--bulk` REPS Puts and
//!   REPS Gets of SIZE bytes; the plugin's RSS then (it still holds the
//!   last value of each size) and peak RSS; kill.
//! - `split` (this host only): a `cold` launch through `Client::start`, with
//!   each start step (key generation, spawn, handshake line, connect,
//!   health check) timed from the runtime's own `tracing` spans
//!   (`rpcplugin_bench::steps`), plus the first RPC and what the bench
//!   plugin reports about its own start-up through `RPCPLUGIN_BENCH_TIMINGS`.
//!
//! `RPCPLUGIN_BENCH_HOST_RUNTIME=current` runs this host on a current-thread
//! tokio runtime (default multi-thread).

use anyhow::{Context, Result, anyhow, bail};
use rpcplugin::PluginChannel;
use rpcplugin::{Client, ClientTls, KeyType};
use rpcplugin_bench::steps::StepClock;
use rpcplugin_bench::{COOKIE, HOST_RUNTIME_ENV, Latencies, TIMINGS_ENV, ms, proc_status_kb};
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tonic::codegen::Bytes;
use tracing_subscriber::layer::SubscriberExt;

const KEY: &str = "bench-key";
const SMALL: usize = 16;

/// TLS of the launch.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    /// Plaintext.
    Off,
    /// AutoMTLS.
    Auto,
}

/// What one run measures.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Launch, one Put, kill.
    Cold,
    /// Launch, latency, throughput, bulk, memory, kill.
    Run,
    /// A cold launch with each start step timed from the library's spans.
    Split,
}

impl Tls {
    fn as_str(self) -> &'static str {
        match self {
            Tls::Off => "off",
            Tls::Auto => "auto",
        }
    }
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Cold => "cold",
            Mode::Run => "run",
            Mode::Split => "split",
        }
    }
}

/// The Rust KV bench host; one JSON line on stdout.
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "kv-bench")]
struct Args {
    /// The plugin executable.
    #[arg(long)]
    plugin: PathBuf,
    /// An argument of the plugin (repeatable).
    #[arg(long = "plugin-arg", allow_hyphen_values = true)]
    plugin_args: Vec<String>,
    /// AutoMTLS or plaintext.
    #[arg(long, value_enum, default_value = "auto")]
    tls: Tls,
    /// What to measure.
    #[arg(long, value_enum, default_value = "run")]
    mode: Mode,
    /// Untimed Gets before the latency run.
    #[arg(long, default_value_t = 200)]
    warmup_calls: usize,
    /// Timed sequential Gets.
    #[arg(long, default_value_t = 10_000)]
    latency_calls: usize,
    /// Concurrency levels of the throughput runs.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Duration of each throughput run.
    #[arg(long, default_value_t = 2000)]
    throughput_ms: u64,
    /// `SIZExREPS,...` bulk Puts and Gets.
    #[arg(long, value_delimiter = ',', value_parser = parse_bulk, default_value = "1048576x20,67108864x4")]
    bulk: Vec<(usize, usize)>,
    /// Idle time before the idle RSS sample.
    #[arg(long, default_value_t = 200)]
    idle_ms: u64,
    /// Bound on the whole run.
    #[arg(long, default_value_t = 120_000)]
    timeout_ms: u64,
    /// Ask for broker multiplexing: the calls run on a yamux stream.
    #[arg(long)]
    mux: bool,
}

/// One `SIZExREPS` item of `--bulk`.
fn parse_bulk(item: &str) -> Result<(usize, usize), String> {
    let (size, reps) = item
        .split_once('x')
        .ok_or_else(|| format!("--bulk items are SIZExREPS, not {item:?}"))?;
    let number = |n: &str| n.parse::<usize>().map_err(|err| format!("{item:?}: {err}"));
    Ok((number(size)?, number(reps)?))
}

fn main() -> ExitCode {
    let started = Instant::now();
    let args = match rpcplugin_bench::parse_args::<Args>() {
        Ok(args) => args,
        Err(err) => return emit(json!({"host": "rust", "ok": false, "error": err.to_string()})),
    };
    // Split mode times the library's start steps from its spans.
    let clock = StepClock::default();
    if args.mode == Mode::Split {
        let subscriber = tracing_subscriber::registry().with(clock.clone());
        if let Err(err) = tracing::subscriber::set_global_default(subscriber) {
            return emit(json!({"host": "rust", "ok": false, "error": err.to_string()}));
        }
    }
    let flavor = std::env::var(HOST_RUNTIME_ENV).unwrap_or_default();
    let runtime = match rpcplugin_bench::runtime(&flavor) {
        Ok(rt) => rt,
        Err(err) => return emit(json!({"host": "rust", "ok": false, "error": err.to_string()})),
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let outcome = runtime.block_on(async {
        match tokio::time::timeout(timeout, bench(&args, &clock)).await {
            Ok(result) => result,
            Err(_) => Err(anyhow!("timeout: no result within {timeout:?}")),
        }
    });
    let mut report = match outcome {
        Ok(report) => report,
        Err(err) => json!({"ok": false, "error": format!("{err:#}")}),
    };
    if let Value::Object(map) = &mut report {
        map.insert("host".into(), json!("rust"));
        map.insert("mode".into(), json!(args.mode.as_str()));
        map.insert("tls".into(), json!(args.tls.as_str()));
        map.insert(
            "host_runtime".into(),
            json!(if flavor == "current" {
                "current"
            } else {
                "multi"
            }),
        );
        map.insert("process_ms".into(), json!(ms(started.elapsed())));
    }
    // Leave without waiting for the runtime's tasks.
    let code = emit(report);
    std::mem::forget(runtime);
    code
}

fn emit(report: Value) -> ExitCode {
    let ok = report.get("ok").and_then(Value::as_bool) == Some(true);
    println!("{report}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn bench(args: &Args, clock: &StepClock) -> Result<Value> {
    let tls = match args.tls {
        Tls::Off => ClientTls::Disabled,
        Tls::Auto => ClientTls::Auto(KeyType::default()),
    };
    let launched = Instant::now();
    let mut builder = Client::builder(&args.plugin)
        .cookie(COOKIE.0, COOKIE.1)
        .versions([1])
        .tls(tls)
        .multiplex(args.mux)
        .start_timeout(Duration::from_millis(args.timeout_ms));
    for arg in &args.plugin_args {
        builder = builder.arg(arg);
    }
    let timings = tempfile::NamedTempFile::new().context("timings file")?;
    if args.mode == Mode::Split {
        builder = builder.env(TIMINGS_ENV, timings.path());
    }
    let mut plugin = builder.start().await.context("start")?;
    let started = Instant::now();
    let start_ms = ms(launched.elapsed());
    let mut kv = KvClient::new(plugin.channel())
        .max_decoding_message_size(rpcplugin::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(rpcplugin::MAX_MESSAGE_SIZE);
    let small = Bytes::from(vec![0x5a; SMALL]);
    kv.put(PutRequest {
        key: KEY.into(),
        value: small.clone(),
    })
    .await
    .context("put")?;
    let first_rpc = started.elapsed();
    let first_rpc_ms = ms(launched.elapsed());
    let pid = plugin.pid();
    let mut report = json!({
        "ok": true,
        "error": null,
        "start_ms": start_ms,
        "first_rpc_ms": first_rpc_ms,
        "plugin_pid": pid,
        "tls_version": plugin.tls_info().map(|t| t.version.clone()),
    });
    if args.mode == Mode::Split
        && let (Value::Object(map), Value::Object(more)) =
            (&mut report, split_fields(clock, timings.path(), first_rpc))
    {
        map.extend(more);
    }
    if args.mode == Mode::Run {
        let measured = measure(args, &kv, pid).await;
        let _ = plugin.kill().await;
        let measured = measured?;
        if let (Value::Object(map), Value::Object(more)) = (&mut report, measured) {
            map.extend(more);
        }
    } else {
        plugin.kill().await.context("kill")?;
    }
    if let Value::Object(map) = &mut report {
        map.insert("total_ms".into(), json!(ms(launched.elapsed())));
    }
    Ok(report)
}

/// `calls` sequential 16-byte Gets, each timed; their summary.
async fn sequential_gets(mut kv: KvClient<PluginChannel>, calls: usize) -> Result<Value> {
    let mut samples = Latencies::new()?;
    for _ in 0..calls {
        let t = Instant::now();
        let value = kv
            .get(GetRequest { key: KEY.into() })
            .await
            .context("get")?
            .into_inner()
            .value;
        samples.record(t.elapsed());
        if value.len() != SMALL {
            bail!("value mismatch: got {} bytes", value.len());
        }
    }
    Ok(samples.summary())
}

async fn measure(args: &Args, kv: &KvClient<PluginChannel>, pid: Option<u32>) -> Result<Value> {
    tokio::time::sleep(Duration::from_millis(args.idle_ms)).await;
    let plugin_idle = pid.and_then(|p| proc_status_kb(Some(p), "VmRSS"));
    let host_idle = proc_status_kb(None, "VmRSS");

    let mut kv = kv.clone();
    let get = || GetRequest { key: KEY.into() };
    for _ in 0..args.warmup_calls {
        kv.get(get()).await.context("get")?;
    }
    // The same loop twice: from this future (the body of `main`, which on
    // the multi-thread runtime is not a worker thread), then from a spawned
    // task, which runs on a worker.
    let latency = sequential_gets(kv.clone(), args.latency_calls).await?;
    let latency_task = tokio::spawn(sequential_gets(kv.clone(), args.latency_calls))
        .await
        .context("latency task")??;

    let mut throughput = Vec::new();
    for &concurrency in &args.concurrency {
        let deadline = Instant::now() + Duration::from_millis(args.throughput_ms);
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency.max(1) {
            let mut kv = kv.clone();
            tasks.push(tokio::spawn(async move {
                let mut calls = 0u64;
                while Instant::now() < deadline {
                    kv.get(GetRequest { key: KEY.into() }).await?;
                    calls += 1;
                }
                Ok::<u64, tonic::Status>(calls)
            }));
        }
        let mut calls = 0u64;
        for task in tasks {
            calls += task.await.context("throughput task")?.context("get")?;
        }
        let seconds = t.elapsed().as_secs_f64();
        throughput.push(json!({
            "concurrency": concurrency,
            "calls": calls,
            "seconds": (seconds * 1e4).round() / 1e4,
            "calls_per_s": (calls as f64 / seconds).round(),
        }));
    }
    let plugin_peak_small = pid.and_then(|p| proc_status_kb(Some(p), "VmHWM"));
    let host_peak_small = proc_status_kb(None, "VmHWM");

    let mut bulk = Vec::new();
    for &(size, reps) in &args.bulk {
        let value = Bytes::from(vec![0xa5; size]);
        let key = format!("bulk-{size}");
        let put = |kv: &mut KvClient<PluginChannel>| {
            let request = PutRequest {
                key: key.clone(),
                value: value.clone(),
            };
            let mut kv = kv.clone();
            async move { kv.put(request).await }
        };
        // One untimed round first.
        put(&mut kv).await.context("bulk put")?;
        kv.get(GetRequest { key: key.clone() })
            .await
            .context("bulk get")?;
        let mut put_s = 0.0;
        let mut get_s = 0.0;
        for _ in 0..reps {
            let t = Instant::now();
            put(&mut kv).await.context("bulk put")?;
            put_s += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let got = kv
                .get(GetRequest { key: key.clone() })
                .await
                .context("bulk get")?
                .into_inner()
                .value;
            get_s += t.elapsed().as_secs_f64();
            if got.len() != size {
                bail!("bulk value mismatch: {} of {size} bytes", got.len());
            }
        }
        let mb = (size * reps) as f64 / 1e6;
        bulk.push(json!({
            "size": size,
            "reps": reps,
            "put_mb_s": (mb / put_s * 10.0).round() / 10.0,
            "get_mb_s": (mb / get_s * 10.0).round() / 10.0,
        }));
    }
    Ok(json!({
        "latency_us": latency,
        "latency_task_us": latency_task,
        "throughput": throughput,
        "bulk": bulk,
        "rss_kb": {
            "plugin_idle": plugin_idle,
            "host_idle": host_idle,
            "plugin_peak_small": plugin_peak_small,
            "host_peak_small": host_peak_small,
            "plugin_after_bulk": pid.and_then(|p| proc_status_kb(Some(p), "VmRSS")),
            "plugin_peak": pid.and_then(|p| proc_status_kb(Some(p), "VmHWM")),
            "host_peak": proc_status_kb(None, "VmHWM"),
        },
    }))
}

/// The `split` fields: each start step as the library's spans timed it,
/// the first RPC, and what the bench plugin wrote about its own start-up.
fn split_fields(clock: &StepClock, timings: &Path, first_rpc: Duration) -> Value {
    let mut host = serde_json::Map::new();
    for (key, span) in HOST_STEPS {
        if let Some(step) = clock.step(span) {
            host.insert(key.into(), json!(ms(step.elapsed)));
        }
    }
    host.insert("first_rpc".into(), json!(ms(first_rpc)));
    let plugin: Value = std::fs::read_to_string(timings)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let at = |name: &str| plugin.get(name).and_then(Value::as_u64);
    let spawned = clock.step("spawn").map(|s| s.opened_unix_us);
    let line_read = clock.step("handshake").map(|s| s.closed_unix_us);
    let plugin_steps = match (at("main_us"), at("ready_us"), spawned, line_read) {
        (Some(main_us), Some(ready_us), Some(spawn_us), Some(line_us)) => json!({
            "exec_to_main": main_us.saturating_sub(spawn_us) as f64 / 1e3,
            "seed": plugin.get("seed_us").and_then(Value::as_f64).map(|v| v / 1e3),
            "main_to_ready": ready_us.saturating_sub(main_us) as f64 / 1e3,
            "ready_to_line_read": line_us.saturating_sub(ready_us) as f64 / 1e3,
        }),
        _ => Value::Null,
    };
    json!({"split_ms": host, "plugin_split_ms": plugin_steps})
}

/// Report keys of the host's start steps and the runtime spans they come
/// from (`Client::start`'s `plugin_start` span is the whole start).
const HOST_STEPS: [(&str, &str); 6] = [
    ("keygen", "keygen"),
    ("spawn", "spawn"),
    ("handshake", "handshake"),
    ("connect", "connect"),
    ("health_check", "health_check"),
    ("start", "plugin_start"),
];
