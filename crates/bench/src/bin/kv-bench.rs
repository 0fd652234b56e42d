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
//!   16 bytes, then for each `--concurrency` level as many Gets as complete in
//!   `--throughput-ms`, then for each `SIZExREPS` of `--bulk` REPS Puts and
//!   REPS Gets of SIZE bytes; peak RSS; kill.
//! - `split` (this host only): the launch done step by step with the
//!   lower-level crates, each step timed (first random draw, key
//!   generation, spawn, handshake line, TLS config, dial + TLS handshake,
//!   HTTP/2 handshake, first RPC), plus what the bench plugin reports about
//!   its own start-up through `RPCPLUGIN_BENCH_TIMINGS`.
//!
//! `RPCPLUGIN_BENCH_HOST_RUNTIME=current` runs this host on a current-thread
//! tokio runtime (default multi-thread).

use anyhow::{Context, Result, anyhow, bail};
use hyper_util::rt::TokioIo;
use rpcplugin::PluginChannel;
use rpcplugin::certs::{self, Identity, KeyType, PeerTrust};
use rpcplugin::handshake::{HandshakeLine, env};
use rpcplugin::{Addr, Client, ClientTls};
use rpcplugin_bench::{
    COOKIE, HOST_RUNTIME_ENV, TIMINGS_ENV, ms, proc_status_kb, summary, unix_us, us,
};
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::codegen::Bytes;
use tonic::transport::Endpoint;

const KEY: &str = "bench-key";
const SMALL: usize = 16;

#[derive(Debug, Clone)]
struct Args {
    plugin: PathBuf,
    plugin_args: Vec<String>,
    tls: String,
    mode: String,
    warmup_calls: usize,
    latency_calls: usize,
    concurrency: Vec<usize>,
    throughput_ms: u64,
    bulk: Vec<(usize, usize)>,
    idle_ms: u64,
    timeout_ms: u64,
    /// Ask for broker multiplexing: the calls run on a yamux stream.
    mux: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        plugin: PathBuf::new(),
        plugin_args: Vec::new(),
        tls: "auto".into(),
        mode: "run".into(),
        warmup_calls: 200,
        latency_calls: 10_000,
        concurrency: vec![1, 16, 64],
        throughput_ms: 2000,
        bulk: vec![(1 << 20, 20), (64 << 20, 4)],
        idle_ms: 200,
        timeout_ms: 120_000,
        mux: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow!("usage: {flag} needs a value"))
        };
        match flag.as_str() {
            "--plugin" => args.plugin = value()?.into(),
            "--plugin-arg" => args.plugin_args.push(value()?),
            "--tls" => args.tls = value()?,
            "--mode" => args.mode = value()?,
            "--warmup-calls" => args.warmup_calls = value()?.parse()?,
            "--latency-calls" => args.latency_calls = value()?.parse()?,
            "--concurrency" => {
                args.concurrency = value()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--throughput-ms" => args.throughput_ms = value()?.parse()?,
            "--bulk" => args.bulk = parse_bulk(&value()?)?,
            "--idle-ms" => args.idle_ms = value()?.parse()?,
            "--timeout-ms" => args.timeout_ms = value()?.parse()?,
            "--mux" => args.mux = true,
            other => bail!("usage: unknown flag {other}"),
        }
    }
    if args.plugin.as_os_str().is_empty() {
        bail!("usage: --plugin is required");
    }
    if !matches!(args.tls.as_str(), "off" | "auto") {
        bail!("usage: --tls must be off or auto");
    }
    if !matches!(args.mode.as_str(), "cold" | "run" | "split") {
        bail!("usage: --mode must be cold, run or split");
    }
    Ok(args)
}

/// `SIZExREPS,SIZExREPS,...`
fn parse_bulk(text: &str) -> Result<Vec<(usize, usize)>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (size, reps) = item
                .split_once('x')
                .ok_or_else(|| anyhow!("usage: --bulk items are SIZExREPS, not {item:?}"))?;
            Ok((size.parse()?, reps.parse()?))
        })
        .collect()
}

fn main() -> ExitCode {
    let started = Instant::now();
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => return emit(json!({"host": "rust", "ok": false, "error": err.to_string()})),
    };
    let flavor = std::env::var(HOST_RUNTIME_ENV).unwrap_or_default();
    let runtime = match rpcplugin_bench::runtime(&flavor) {
        Ok(rt) => rt,
        Err(err) => return emit(json!({"host": "rust", "ok": false, "error": err.to_string()})),
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let outcome = runtime.block_on(async {
        match tokio::time::timeout(timeout, bench(&args)).await {
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
        map.insert("mode".into(), json!(args.mode));
        map.insert("tls".into(), json!(args.tls));
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

async fn bench(args: &Args) -> Result<Value> {
    if args.mode == "split" {
        return split(args).await;
    }
    let tls = match args.tls.as_str() {
        "off" => ClientTls::Disabled,
        _ => ClientTls::Auto(KeyType::default()),
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
    let mut plugin = builder.start().await.context("start")?;
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
    if args.mode == "run" {
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

async fn measure(args: &Args, kv: &KvClient<PluginChannel>, pid: Option<u32>) -> Result<Value> {
    tokio::time::sleep(Duration::from_millis(args.idle_ms)).await;
    let plugin_idle = pid.and_then(|p| proc_status_kb(Some(p), "VmRSS"));
    let host_idle = proc_status_kb(None, "VmRSS");

    let mut kv = kv.clone();
    let get = || GetRequest { key: KEY.into() };
    for _ in 0..args.warmup_calls {
        kv.get(get()).await.context("get")?;
    }
    let mut samples = Vec::with_capacity(args.latency_calls);
    for _ in 0..args.latency_calls {
        let t = Instant::now();
        let value = kv.get(get()).await.context("get")?.into_inner().value;
        samples.push(us(t.elapsed()));
        if value.len() != SMALL {
            bail!("value mismatch: got {} bytes", value.len());
        }
    }
    let latency = summary(&mut samples);

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
        "throughput": throughput,
        "bulk": bulk,
        "rss_kb": {
            "plugin_idle": plugin_idle,
            "host_idle": host_idle,
            "plugin_peak_small": plugin_peak_small,
            "host_peak_small": host_peak_small,
            "plugin_peak": pid.and_then(|p| proc_status_kb(Some(p), "VmHWM")),
            "host_peak": proc_status_kb(None, "VmHWM"),
        },
    }))
}

/// The launch done step by step, each step timed.
async fn split(args: &Args) -> Result<Value> {
    let auto = args.tls == "auto";
    let t0 = Instant::now();
    let mut mark = t0;
    let mut step = |name: &'static str, steps: &mut Vec<(&'static str, f64)>| {
        let now = Instant::now();
        steps.push((name, ms(now - mark)));
        mark = now;
    };
    let mut steps = Vec::new();
    let identity = if auto {
        let mut byte = [0u8; 1];
        aws_lc_rs::rand::fill(&mut byte).map_err(|_| anyhow!("random draw failed"))?;
        step("host_seed", &mut steps);
        let identity = Identity::generate(KeyType::default())?;
        step("host_keygen", &mut steps);
        Some(identity)
    } else {
        None
    };
    let socket_dir = rpcplugin::transport::private_dir(None)?;
    let timings = tempfile::NamedTempFile::new()?;
    let mut cmd = tokio::process::Command::new(&args.plugin);
    cmd.args(&args.plugin_args)
        .envs(std::env::vars_os())
        .env(COOKIE.0, COOKIE.1)
        .env(env::PLUGIN_PROTOCOL_VERSIONS, "1")
        .env(env::PLUGIN_MIN_PORT, "10000")
        .env(env::PLUGIN_MAX_PORT, "25000")
        .env(env::PLUGIN_UNIX_SOCKET_DIR, socket_dir.path())
        .env(TIMINGS_ENV, timings.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match &identity {
        Some(identity) => cmd.env(env::PLUGIN_CLIENT_CERT, identity.cert_pem()),
        None => cmd.env_remove(env::PLUGIN_CLIENT_CERT),
    };
    let spawn_us = unix_us();
    let mut child = cmd.spawn().context("spawn")?;
    step("spawn", &mut steps);
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .next_line()
        .await?
        .context("the plugin exited before its handshake")?;
    let line_us = unix_us();
    step("handshake_wait", &mut steps);
    let hs = HandshakeLine::parse(line.as_bytes())?;
    let addr = Addr::parse(hs.network, &hs.address)?;
    let client_config = match (&identity, hs.server_cert) {
        (Some(identity), Some(cert)) => Some(certs::client_config(
            Some(identity),
            PeerTrust::Pinned(cert.into()),
        )?),
        (None, None) => None,
        _ => bail!("the plugin's TLS does not match --tls {}", args.tls),
    };
    step("parse_and_config", &mut steps);
    let stream = rpcplugin::transport::dial(&addr).await?;
    step("dial", &mut steps);
    let conn: Conn = match client_config {
        Some(config) => {
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(certs::server_name(), stream)
                .await?;
            step("tls_handshake", &mut steps);
            Conn::Tls(Box::new(tls))
        }
        None => Conn::Plain(stream),
    };
    let slot = Arc::new(Mutex::new(Some(conn)));
    let connector = tower::service_fn(move |_uri: http::Uri| {
        let conn = slot.lock().ok().and_then(|mut s| s.take());
        async move {
            conn.map(TokioIo::new)
                .ok_or_else(|| std::io::Error::other("only one connection"))
        }
    });
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(connector)
        .await?;
    step("h2_handshake", &mut steps);
    let mut kv = KvClient::new(channel);
    kv.put(PutRequest {
        key: KEY.into(),
        value: Bytes::from(vec![0x5a; SMALL]),
    })
    .await?;
    step("first_rpc", &mut steps);
    let first_rpc_ms = ms(t0.elapsed());
    let _ = child.start_kill();
    let _ = child.wait().await;

    let plugin: Value = std::fs::read_to_string(timings.path())
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let at = |name: &str| plugin.get(name).and_then(Value::as_u64);
    let plugin_steps = match (at("main_us"), at("ready_us")) {
        (Some(main_us), Some(ready_us)) => json!({
            "exec_to_main": main_us.saturating_sub(spawn_us) as f64 / 1e3,
            "seed": plugin.get("seed_us").and_then(Value::as_f64).map(|v| v / 1e3),
            "main_to_ready": ready_us.saturating_sub(main_us) as f64 / 1e3,
            "ready_to_line_read": line_us.saturating_sub(ready_us) as f64 / 1e3,
        }),
        _ => Value::Null,
    };
    let steps: serde_json::Map<String, Value> = steps
        .into_iter()
        .map(|(name, v)| (name.to_owned(), json!(v)))
        .collect();
    Ok(json!({
        "ok": true,
        "error": null,
        "first_rpc_ms": first_rpc_ms,
        "split_ms": steps,
        "plugin_split_ms": plugin_steps,
    }))
}

/// The one connection handed to tonic in split mode.
enum Conn {
    Plain(rpcplugin::transport::Stream),
    Tls(Box<tokio_rustls::client::TlsStream<rpcplugin::transport::Stream>>),
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}
