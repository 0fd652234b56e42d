//! Load and soak runs for `cargo xtask reliability`: a Rust host driving the
//! test plugin (`rpcplugin-test-plugin`, found next to this executable or
//! given with `--plugin`) over loopback, bounded in count and in time.
//! Each run prints one JSON object on stdout.
//!
//! ```text
//! rpcplugin-reliability load    --streams 64 --calls 100000 [--max-seconds 600]
//! rpcplugin-reliability plugins --count 50 [--max-seconds 300]
//! rpcplugin-reliability cycles  --count 1000 [--max-seconds 900]
//! ```

use rpcplugin::{Client, ClientBuilder, ClientTls, KeyType};
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use rpcplugin_tests::{COOKIE_KEY, COOKIE_VALUE, MODE_ENV, mode};
use serde_json::{Value, json};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The system allocator, counting live heap bytes: a heap that stays flat
/// while RSS creeps up is allocator fragmentation, not a leak.
struct Counting;

static LIVE_HEAP: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)]
// SAFETY: every call is forwarded to the system allocator with the same
// arguments; the counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE_HEAP.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE_HEAP.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE_HEAP.fetch_add(new_size, Ordering::Relaxed);
            LIVE_HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Set on every plugin launched here, so leftovers can be found.
const MARK_ENV: &str = "RPCPLUGIN_RELIABILITY_MARK";

/// One load or soak scenario.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Scenario {
    /// `--calls` unary calls over `--streams` concurrent streams.
    Load,
    /// `--count` plugins started at once.
    Plugins,
    /// `--count` sequential start, use, kill cycles.
    Cycles,
}

/// Load and soak runs of the test plugin; prints one JSON object.
#[derive(clap::Parser, Debug)]
#[command(name = "rpcplugin-reliability")]
struct Cli {
    /// The scenario to run.
    scenario: Scenario,
    /// The test plugin (default: `rpcplugin-test-plugin` beside this
    /// executable).
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Concurrent streams of `load`.
    #[arg(long, default_value_t = 64)]
    streams: u64,
    /// Calls of `load`.
    #[arg(long, default_value_t = 100_000)]
    calls: u64,
    /// Plugins of `plugins`, cycles of `cycles`.
    #[arg(long, default_value_t = 50)]
    count: u64,
    /// Bound on the whole run.
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
}

struct Options {
    scenario: Scenario,
    plugin: PathBuf,
    streams: u64,
    calls: u64,
    count: u64,
    max: Duration,
}

impl Options {
    fn new(cli: Cli) -> Result<Options, BoxError> {
        let plugin = match cli.plugin {
            Some(plugin) => plugin,
            None => std::env::current_exe()?.with_file_name("rpcplugin-test-plugin"),
        };
        Ok(Options {
            scenario: cli.scenario,
            plugin,
            streams: cli.streams,
            calls: cli.calls,
            count: cli.count,
            max: Duration::from_secs(cli.max_seconds),
        })
    }
}

fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let result = Options::new(cli).and_then(|options| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(async {
            match options.scenario {
                Scenario::Load => load(&options).await,
                Scenario::Plugins => plugins(&options).await,
                Scenario::Cycles => cycles(&options).await,
            }
        })
    });
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("rpcplugin-reliability: {err}");
            ExitCode::FAILURE
        }
    }
}

fn builder(options: &Options) -> ClientBuilder {
    Client::builder(&options.plugin)
        .cookie(COOKIE_KEY, COOKIE_VALUE)
        .versions([1])
        .skip_host_env(true)
        .tls(ClientTls::Auto(KeyType::EcP256))
        .env(MODE_ENV, mode::NORMAL)
        .env(MARK_ENV, std::process::id().to_string())
}

/// A Put then a Get of the same key; the value must come back.
async fn put_get(kv: &mut KvClient<rpcplugin::PluginChannel>, key: &str) -> Result<(), BoxError> {
    let value = format!("value of {key}").into_bytes();
    kv.put(PutRequest {
        key: key.to_owned(),
        value: value.clone().into(),
    })
    .await?;
    let got = kv
        .get(GetRequest {
            key: key.to_owned(),
        })
        .await?;
    if got.get_ref().value.as_ref() != value.as_slice() {
        return Err(format!("{key}: wrong value").into());
    }
    Ok(())
}

/// `--calls` unary calls (alternating Put and Get) over `--streams`
/// concurrent tasks sharing one connection to one plugin.
async fn load(options: &Options) -> Result<Value, BoxError> {
    let mut client = builder(options).start().await?;
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + options.max;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for stream in 0..options.streams {
        let mut kv = KvClient::new(client.channel());
        let next = Arc::clone(&next);
        let errors = Arc::clone(&errors);
        let total = options.calls;
        tasks.push(tokio::spawn(async move {
            let key = format!("stream-{stream}");
            let value = format!("value of {key}").into_bytes();
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            // Put on this stream's even calls, Get (of what it put) on odd ones.
            for own in 0u64.. {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total || Instant::now() > deadline {
                    break;
                }
                let call = Instant::now();
                let result = if own % 2 == 0 {
                    kv.put(PutRequest {
                        key: key.clone(),
                        value: value.clone().into(),
                    })
                    .await
                    .map(|_| ())
                } else {
                    match kv.get(GetRequest { key: key.clone() }).await {
                        Ok(r) if r.get_ref().value.as_ref() == value.as_slice() => Ok(()),
                        Ok(_) => Err(tonic::Status::data_loss("wrong value")),
                        Err(status) => Err(status),
                    }
                };
                latencies.push(u64::try_from(call.elapsed().as_micros()).unwrap_or(u64::MAX));
                if let Err(status) = result {
                    errors.fetch_add(1, Ordering::Relaxed);
                    if failures.len() < 3 {
                        failures.push(status.to_string());
                    }
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for task in tasks {
        let (task_latencies, task_failures) = task.await?;
        latencies.extend(task_latencies);
        failures.extend(task_failures.into_iter().take(5 - failures.len().min(5)));
    }
    let seconds = started.elapsed().as_secs_f64();
    let killed = client.kill().await;
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).copied().unwrap_or(0)
    };
    let done = latencies.len() as u64;
    Ok(json!({
        "streams": options.streams,
        "calls": done,
        "planned": options.calls,
        "errors": errors.load(Ordering::Relaxed) + (options.calls - done.min(options.calls)),
        "seconds": seconds,
        "calls_per_second": done as f64 / seconds,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "max_us": latencies.last().copied().unwrap_or(0),
        "first_errors": failures,
        "kill_ok": matches!(killed, Ok(Some(status)) if status.success()),
    }))
}

/// `--count` plugins started at once by one host, each used, all killed.
async fn plugins(options: &Options) -> Result<Value, BoxError> {
    let before = Snapshot::take();
    let started = Instant::now();
    let starts = (0..options.count).map(|_| {
        let builder = builder(options);
        async move {
            let begun = Instant::now();
            let result = builder.start().await;
            (result, begun.elapsed())
        }
    });
    let started_all = tokio::time::timeout(options.max, futures_join_all(starts.collect()))
        .await
        .map_err(|_| "starting did not finish in time")?;
    let start_seconds = started.elapsed().as_secs_f64();
    let mut clients = Vec::new();
    let mut failures = Vec::new();
    let mut slowest_start = Duration::ZERO;
    for (result, took) in started_all {
        slowest_start = slowest_start.max(took);
        match result {
            Ok(client) => clients.push(client),
            Err(err) => failures.push(format!("start: {err}")),
        }
    }
    let started_count = clients.len();
    let during = Snapshot::take();
    let mut used = 0u64;
    for (i, client) in clients.iter().enumerate() {
        let result = async {
            let mut kv = KvClient::new(client.channel());
            put_get(&mut kv, &format!("plugin-{i}")).await?;
            client.ping().await?;
            Ok::<(), BoxError>(())
        }
        .await;
        match result {
            Ok(()) => used += 1,
            Err(err) => failures.push(format!("use: {err}")),
        }
    }
    let kills = clients.into_iter().map(|mut client| async move {
        let status = client.kill().await;
        matches!(status, Ok(Some(s)) if s.success())
    });
    let killed = futures_join_all(kills.collect()).await;
    let killed_ok = killed.iter().filter(|ok| **ok).count();
    let after = Snapshot::settle(&before).await;
    Ok(json!({
        "count": options.count,
        "started": started_count,
        "used": used,
        "killed_cleanly": killed_ok,
        "failures": failures,
        "start_all_seconds": start_seconds,
        "slowest_start_ms": slowest_start.as_secs_f64() * 1000.0,
        "seconds": started.elapsed().as_secs_f64(),
        "fds": [before.fds, during.fds, after.fds],
        "children": [before.children, during.children, after.children],
        "marked_processes_after": after.marked,
        "tmp_dirs": [before.tmp_dirs.len(), during.tmp_dirs.len(), after.tmp_dirs.len()],
        "leaks": after.leaks_since(&before),
    }))
}

/// `--count` sequential start, use, kill cycles; samples fd count, RSS and
/// live heap once the cycle's descriptors are closed.
async fn cycles(options: &Options) -> Result<Value, BoxError> {
    let before = Snapshot::take();
    let deadline = Instant::now() + options.max;
    let started = Instant::now();
    // Allocated up front, so the samples do not show up in the heap count.
    let capacity = usize::try_from(options.count).unwrap_or(0);
    let mut rss = Vec::with_capacity(capacity);
    let mut heap = Vec::with_capacity(capacity);
    let mut fds = Vec::with_capacity(capacity);
    let mut errors = Vec::new();
    let mut done = 0u64;
    // What a cycle leaves until the runtime has run the drops `kill`
    // started: descriptors, and heap bytes.
    let mut unsettled_fds = 0usize;
    let mut unsettled_heap = 0u64;
    let mut unsettled_cycles = 0u64;
    let mut target = Quiet {
        fds: before.fds,
        heap: LIVE_HEAP.load(Ordering::Relaxed) as u64,
    };
    for i in 0..options.count {
        if Instant::now() > deadline {
            errors.push(format!("stopped at the time limit after {i} cycles"));
            break;
        }
        let result = async {
            let mut client = builder(options).start().await?;
            let mut kv = KvClient::new(client.channel());
            put_get(&mut kv, "cycle").await?;
            match client.kill().await? {
                Some(status) if status.success() => Ok::<(), BoxError>(()),
                other => Err(format!("exit: {other:?}").into()),
            }
        }
        .await;
        if let Err(err) = result
            && errors.len() < 20
        {
            errors.push(format!("cycle {i}: {err}"));
        }
        done += 1;
        let at_kill = Quiet::now();
        let (quiet, reached) = Quiet::wait_for(target).await;
        if !reached {
            // A level that stays (the first start's process-wide state, a
            // table that grew): later cycles return to this one. Growth
            // that repeats shows in the slopes.
            target = quiet;
        }
        if at_kill.fds > quiet.fds || at_kill.heap > quiet.heap {
            unsettled_cycles += 1;
            unsettled_fds = unsettled_fds.max(at_kill.fds.saturating_sub(quiet.fds));
            unsettled_heap = unsettled_heap.max(at_kill.heap.saturating_sub(quiet.heap));
        }
        rss.push(rss_kib());
        heap.push(quiet.heap);
        fds.push(quiet.fds);
    }
    let after = Snapshot::settle(&before).await;
    let warm = rss.len() / 10;
    let tail: Vec<u64> = rss.iter().skip(warm).copied().collect();
    let heap_tail: Vec<u64> = heap.iter().skip(warm).copied().collect();
    Ok(json!({
        "cycles": done,
        "planned": options.count,
        "errors": errors,
        "seconds": started.elapsed().as_secs_f64(),
        "rss_kib_first": rss.first(),
        "rss_kib_last": rss.last(),
        "rss_kib_max": rss.iter().max(),
        "rss_slope_kib_per_cycle": slope(&rss),
        "rss_slope_kib_per_cycle_after_warmup": slope(&tail),
        "warmup_cycles": warm,
        "heap_bytes_first": heap.first(),
        "heap_bytes_last": heap.last(),
        "heap_slope_bytes_per_cycle_after_warmup": slope(&heap_tail),
        "fds_before": before.fds,
        "fds_first": fds.first(),
        "fds_last": fds.last(),
        "fds_max": fds.iter().max(),
        "fds_after": after.fds,
        "fd_slope_per_cycle": slope(&fds.iter().map(|f| *f as u64).collect::<Vec<_>>()),
        "cycles_with_descriptors_closing_after_kill": unsettled_cycles,
        "max_descriptors_closing_after_kill": unsettled_fds,
        "max_heap_bytes_freed_after_kill": unsettled_heap,
        "rss_samples_kib": sample(&rss, 50),
        "heap_samples_bytes": sample(&heap, 50),
        "leaks": after.leaks_since(&before),
    }))
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Descriptors and live heap bytes of this process at one moment.
#[derive(Debug, Clone, Copy)]
struct Quiet {
    fds: usize,
    heap: u64,
}

impl Quiet {
    fn now() -> Quiet {
        Quiet {
            fds: fd_count(),
            heap: LIVE_HEAP.load(Ordering::Relaxed) as u64,
        }
    }

    /// Waits, for at most a second, until this process is back to at most
    /// `target` descriptors and live heap bytes; returns the state then and
    /// whether it got there. `kill` returns once the plugin is reaped, but
    /// the tonic connection's task and the client's aborted tasks close
    /// their descriptors and free their buffers on a worker thread
    /// afterwards: a sample taken before that counts them or not at random.
    async fn wait_for(target: Quiet) -> (Quiet, bool) {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let now = Quiet::now();
            if now.fds <= target.fds && now.heap <= target.heap {
                return (now, true);
            }
            if Instant::now() > deadline {
                return (now, false);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Least-squares slope of `ys` against their index.
fn slope(ys: &[u64]) -> f64 {
    let n = ys.len() as f64;
    if ys.len() < 2 {
        return 0.0;
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = ys.iter().map(|y| *y as f64).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in ys.iter().enumerate() {
        let dx = x as f64 - mean_x;
        num += dx * (*y as f64 - mean_y);
        den += dx * dx;
    }
    num / den
}

/// At most `n` evenly spaced values of `values`.
fn sample(values: &[u64], n: usize) -> Vec<u64> {
    let step = values.len().div_ceil(n).max(1);
    values.iter().step_by(step).copied().collect()
}

async fn futures_join_all<F: Future + Send + 'static>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        if let Ok(value) = handle.await {
            out.push(value);
        }
    }
    out
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Descriptors, children and temp dirs of this process at one moment.
struct Snapshot {
    fds: usize,
    children: usize,
    marked: usize,
    tmp_dirs: BTreeSet<PathBuf>,
}

impl Snapshot {
    fn take() -> Snapshot {
        let me = std::process::id();
        let marker = format!("{MARK_ENV}={me}");
        let mut children = 0;
        let mut marked = 0;
        for (pid, _, ppid) in rpcplugin_tests::processes() {
            if ppid == me {
                children += 1;
            }
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            if pid != me && environ.split(|b| *b == 0).any(|v| v == marker.as_bytes()) {
                marked += 1;
            }
        }
        let tmp_dirs = std::fs::read_dir(std::env::temp_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("rpcplugin-"))
            .map(|e| e.path())
            .collect();
        Snapshot {
            fds: fd_count(),
            children,
            marked,
            tmp_dirs,
        }
    }

    /// Waits up to 2 s for the counts to return to `before`.
    async fn settle(before: &Snapshot) -> Snapshot {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let now = Snapshot::take();
            if now.leaks_since(before).is_empty() || Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn leaks_since(&self, before: &Snapshot) -> Vec<String> {
        let mut leaks = Vec::new();
        if self.fds > before.fds {
            leaks.push(format!("{} more file descriptors", self.fds - before.fds));
        }
        if self.children > before.children {
            leaks.push(format!(
                "{} more child processes",
                self.children - before.children
            ));
        }
        if self.marked > 0 {
            leaks.push(format!("{} launched processes still running", self.marked));
        }
        let live = live_socket_dirs();
        let new_dirs: Vec<_> = self
            .tmp_dirs
            .difference(&before.tmp_dirs)
            .filter(|d| !live.iter().any(|l| l.starts_with(d)))
            .collect();
        if !new_dirs.is_empty() {
            leaks.push(format!("temp dirs left: {new_dirs:?}"));
        }
        leaks
    }
}

/// Paths of listening unix sockets (other programs' plugins).
fn live_socket_dirs() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(7).map(PathBuf::from))
        .collect()
}
