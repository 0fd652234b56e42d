//! docs/performance.md and its plots, from `target/bench/report.json`.
//!
//! The tables and plots are regenerated on every full or quick run; the
//! notes between the `notes:start` and `notes:end` markers are carried over
//! from the existing document.

use super::chart::{Row, bar_chart};
use super::num;
use anyhow::Result;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// The document a full run writes, and whose notes every run keeps.
const DOC: &str = "docs/performance.md";
/// Where a full run's document and plots go; a quick run's go to
/// [`QUICK_DIR`], so that CI-sized figures never replace the committed ones.
const DOC_DIR: &str = "docs";
const QUICK_DIR: &str = "target/bench";
const DOC_FILE: &str = "performance.md";
const COLD_SVG: &str = "performance-cold-start.svg";
const LATENCY_SVG: &str = "performance-latency.svg";
const NOTES_START: &str = "<!-- notes:start -->";
const NOTES_END: &str = "<!-- notes:end -->";

fn cells(report: &Value) -> &[Value] {
    report
        .get("cells")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn cell<'a>(report: &'a Value, id: &str) -> Option<&'a Value> {
    cells(report)
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(id))
}

fn at(report: &Value, id: &str, path: &[&str]) -> Option<f64> {
    cell(report, id).and_then(|c| num(c, path))
}

/// Calls per second at `level` in flight.
fn calls_at(report: &Value, id: &str, level: f64) -> Option<f64> {
    cell(report, id)?
        .get("session")?
        .get("throughput")?
        .as_array()?
        .iter()
        .find(|t| num(t, &["concurrency"]) == Some(level))
        .and_then(|t| num(t, &["calls_per_s"]))
}

/// Put and Get MB/s for values of `size` bytes.
fn bulk_at(report: &Value, id: &str, size: f64) -> Option<(f64, f64)> {
    let b = cell(report, id)?
        .get("session")?
        .get("bulk")?
        .as_array()?
        .iter()
        .find(|b| num(b, &["size"]) == Some(size))?;
    Some((num(b, &["put_mb_s"])?, num(b, &["get_mb_s"])?))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| {
        if r >= 10.0 {
            format!("{r:.0}×")
        } else {
            format!("{r:.2}×")
        }
    })
}

fn fmt_num(v: Option<f64>, decimals: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.decimals$}"))
}

/// Milliseconds with sensible precision.
fn fmt_ms(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) if v < 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
    }
}

fn mib(kb: Option<f64>) -> String {
    kb.map_or("–".into(), |kb| format!("{:.1}", kb / 1024.0))
}

const MIB64: f64 = (64u64 << 20) as f64;
const MIB1: f64 = (1u64 << 20) as f64;

/// The targets of the issue, evaluated on default builds with AutoMTLS.
pub(crate) fn targets(report: &Value) -> Value {
    let rr = "rust->rust auto";
    let gg = "go->go auto";
    let ctct = "rust-ct->rust-ct auto";
    let mut out = Vec::new();
    let mut push =
        |id: &str, text: &str, figure: String, r: Option<f64>, met: Option<bool>, note: String| {
            out.push(json!({
                "id": id, "target": text, "figure": figure,
                "ratio": r.map(|r| (r * 1000.0).round() / 1000.0),
                "met": met, "note": note,
            }));
        };

    let cold = |id: &str| at(report, id, &["cold", "first_rpc_ms", "median"]);
    let proc_ms = |id: &str| at(report, id, &["cold", "process_ms", "median"]);
    let r = ratio(cold(rr), cold(gg));
    push(
        "cold-rust-rust",
        "Rust→Rust cold start with AutoMTLS ≤ 1/3 of Go→Go",
        format!(
            "{} ms vs {} ms (spawn → first RPC, in-process median)",
            fmt_ms(cold(rr)),
            fmt_ms(cold(gg))
        ),
        r,
        r.map(|r| r <= 1.0 / 3.0),
        format!(
            "whole process: {} ms vs {} ms ({})",
            fmt_ms(proc_ms(rr)),
            fmt_ms(proc_ms(gg)),
            fmt_ratio(ratio(proc_ms(rr), proc_ms(gg)))
        ),
    );
    let gr = "go->rust auto";
    let r = ratio(cold(gr), cold(gg));
    push(
        "cold-go-rust",
        "Go host→Rust plugin cold start < Go→Go",
        format!(
            "{} ms vs {} ms (AutoMTLS, in-process median)",
            fmt_ms(cold(gr)),
            fmt_ms(cold(gg))
        ),
        r,
        r.map(|r| r < 1.0),
        format!(
            "plaintext: {} ms vs {} ms ({})",
            fmt_ms(cold("go->rust off")),
            fmt_ms(cold("go->go off")),
            fmt_ratio(ratio(cold("go->rust off"), cold("go->go off")))
        ),
    );
    let p50 = |id: &str| at(report, id, &["session", "latency_us", "p50"]);
    let task_p50 = |id: &str| at(report, id, &["session", "latency_task_us", "p50"]);
    let from_task = |id: &str| {
        format!(
            "calls from a spawned task: {} µs ({})",
            fmt_num(task_p50(id), 1),
            fmt_ratio(ratio(task_p50(id), p50(gg)))
        )
    };
    let c64 = |id: &str| calls_at(report, id, 64.0);
    // A pair's figure against Go↔Go, as every latency and throughput target
    // states it.
    let p50_vs_go = |id: &str| {
        format!(
            "{} µs vs {} µs (16-byte Get, AutoMTLS)",
            fmt_num(p50(id), 1),
            fmt_num(p50(gg), 1)
        )
    };
    let c64_vs_go = |id: &str| {
        format!(
            "{} vs {} calls/s (AutoMTLS)",
            fmt_num(c64(id), 0),
            fmt_num(c64(gg), 0)
        )
    };
    let rg = "rust->go auto";
    let r = ratio(p50(rg), p50(gg));
    push(
        "latency-rust-go",
        "Rust host→Go plugin unary p50 ≤ Go→Go",
        p50_vs_go(rg),
        r,
        r.map(|r| r <= 1.0),
        format!(
            "{}; plaintext: {}",
            from_task(rg),
            fmt_ratio(ratio(p50("rust->go off"), p50("go->go off")))
        ),
    );
    let r = ratio(c64(rg), c64(gg));
    push(
        "throughput-rust-go",
        "Rust host→Go plugin calls/s at 64 in flight ≥ Go→Go",
        c64_vs_go(rg),
        r,
        r.map(|r| r >= 1.0),
        format!(
            "plaintext: {}",
            fmt_ratio(ratio(c64("rust->go off"), c64("go->go off")))
        ),
    );
    let r = ratio(p50(rr), p50(gg));
    push(
        "latency",
        "Rust↔Rust unary p50 ≤ 0.5× Go↔Go",
        p50_vs_go(rr),
        r,
        r.map(|r| r <= 0.5),
        format!(
            "{}; current-thread runtimes on both sides: {} µs ({}); plaintext: {}",
            from_task(rr),
            fmt_num(p50(ctct), 1),
            fmt_ratio(ratio(p50(ctct), p50(gg))),
            fmt_ratio(ratio(p50("rust->rust off"), p50("go->go off")))
        ),
    );
    let r = ratio(c64(rr), c64(gg));
    push(
        "throughput",
        "Rust↔Rust calls/s at 64 in flight ≥ 1.5× Go↔Go",
        c64_vs_go(rr),
        r,
        r.map(|r| r >= 1.5),
        format!(
            "current-thread runtimes on both sides: {} calls/s ({})",
            fmt_num(c64(ctct), 0),
            fmt_ratio(ratio(c64(ctct), c64(gg)))
        ),
    );
    let idle = |id: &str| at(report, id, &["session", "rss_kb", "plugin_idle"]);
    let r = ratio(idle(rr), idle(gg));
    push(
        "idle-rss",
        "Idle Rust plugin RSS ≤ 0.45× the Go plugin's",
        format!(
            "{} MiB vs {} MiB (VmRSS after start and one call)",
            mib(idle(rr)),
            mib(idle(gg))
        ),
        r,
        r.map(|r| r <= 0.45),
        format!(
            "plugin built with the plain `release` profile: {} MiB ({}); current-thread plugin: {} MiB",
            mib(idle("rust->rust-release auto")),
            fmt_ratio(ratio(idle("rust->rust-release auto"), idle(gg))),
            mib(idle("rust->rust-ct auto"))
        ),
    );
    // Both directions count: the slower of Put and Get against the raw
    // TLS-over-unix floor of this run.
    let big = bulk_at(report, rr, MIB64);
    let floor = num(report, &["floors", "current", "tls", "bulk_mb_s"]);
    let slower = big.map(|(put, get)| put.min(get));
    let r = ratio(slower, floor);
    push(
        "bulk",
        "Rust↔Rust 64 MiB values ≥ 0.8× the TLS-over-unix floor",
        format!(
            "Put {} MB/s, Get {} MB/s vs floor {} MB/s",
            fmt_num(big.map(|b| b.0), 0),
            fmt_num(big.map(|b| b.1), 0),
            fmt_num(floor, 0)
        ),
        r,
        r.map(|r| r >= 0.8),
        format!(
            "Go↔Go: {}",
            bulk_at(report, gg, MIB64).map_or("–".into(), |(p, g)| format!(
                "Put {p:.0}, Get {g:.0} MB/s"
            ))
        ),
    );
    Value::Array(out)
}

/// One line per target, for the console.
pub(crate) fn target_lines(report: &Value) -> Vec<String> {
    report
        .get("targets")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    format!(
                        "{} {}: {} [{}]",
                        verdict(t),
                        t.get("target").and_then(Value::as_str).unwrap_or(""),
                        t.get("figure").and_then(Value::as_str).unwrap_or(""),
                        fmt_ratio(num(t, &["ratio"]))
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn verdict(t: &Value) -> &'static str {
    match t.get("met").and_then(Value::as_bool) {
        Some(true) => "MET",
        Some(false) => "MISSED",
        None => "NO DATA",
    }
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for key in path {
        match cur.get(*key) {
            Some(next) => cur = next,
            None => return "?",
        }
    }
    cur.as_str().unwrap_or("?")
}

fn pair_label(c: &Value) -> String {
    format!("{} → {}", s(c, &["host"]), s(c, &["plugin"]))
}

/// Cells in display order: the main matrix, then the knobs (multiplexed
/// cells have their own table, [`mux_section`]).
fn ordered(report: &Value) -> Vec<&Value> {
    let mut main: Vec<&Value> = cells(report)
        .iter()
        .filter(|c| s(c, &["group"]) == "main")
        .collect();
    let knobs = cells(report).iter().filter(|c| {
        s(c, &["group"]) == "knob" && !c.get("mux").and_then(Value::as_bool).unwrap_or(false)
    });
    main.extend(knobs);
    main
}

fn baseline_id(c: &Value) -> String {
    format!("go->go {}", s(c, &["tls"]))
}

/// Renders `report` into docs/performance.md and its plots, or, for a
/// quick run, into the same files under target/bench/ (the committed
/// document's notes and OpenTofu section are carried either way).
pub(crate) fn write(root: &Path, report: &Value) -> Result<()> {
    let dir = if s(report, &["kind"]) == "quick" {
        QUICK_DIR
    } else {
        DOC_DIR
    };
    let old = fs::read_to_string(root.join(DOC)).unwrap_or_default();
    let notes = old
        .split_once(NOTES_START)
        .and_then(|(_, rest)| rest.split_once(NOTES_END))
        .map(|(notes, _)| notes.trim().to_owned())
        .unwrap_or_else(|| "(No notes yet.)".into());
    // Keeps the section `cargo xtask tofu` generates.
    let text = crate::tofu::doc::carry_section(&old, render(report, &notes));
    fs::create_dir_all(root.join(dir))?;
    fs::write(root.join(dir).join(DOC_FILE), text)?;
    fs::write(root.join(dir).join(COLD_SVG), cold_svg(report)?)?;
    fs::write(root.join(dir).join(LATENCY_SVG), latency_svg(report)?)?;
    eprintln!("bench: wrote {dir}/{DOC_FILE}, {dir}/{COLD_SVG}, {dir}/{LATENCY_SVG}");
    Ok(())
}

fn render(report: &Value, notes: &str) -> String {
    let mut o = String::new();
    let kind = s(report, &["kind"]);
    let _ = writeln!(o, "# Performance\n");
    let _ = writeln!(
        o,
        "Generated by `{}` on {} ({} run: {:.0} s of measurements, {:.0} s in all). \
         The tables and plots are rewritten by every run; only the notes at the end are kept. \
         Raw figures: `target/bench/report.json`.\n",
        s(report, &["command"]),
        s(report, &["generated"]),
        kind,
        num(report, &["durations_s", "measure"]).unwrap_or(0.0),
        num(report, &["durations_s", "total"]).unwrap_or(0.0),
    );
    if kind != "full" {
        let _ = writeln!(
            o,
            "> **This is a quick (CI-sized) run**: few launches and calls. Run \
             `cargo xtask bench` for the figures to quote.\n"
        );
    }

    // Targets.
    let _ = writeln!(o, "## Targets\n");
    let _ = writeln!(
        o,
        "Default runtimes (multi-thread tokio on both Rust sides), AutoMTLS, unix socket, \
         compared within this one run. The Rust plugin is built with the workspace's `plugin` \
         profile, the one docs/guide.md recommends for plugin executables (size-optimised, \
         fat LTO, the crates every call runs through at `opt-level = 3`); the Rust host with \
         the plain `release` profile.\n"
    );
    let _ = writeln!(o, "| Target | Figure | Ratio | Verdict | Also |");
    let _ = writeln!(o, "|---|---|---|---|---|");
    if let Some(ts) = report.get("targets").and_then(Value::as_array) {
        for t in ts {
            let _ = writeln!(
                o,
                "| {} | {} | {} | **{}** | {} |",
                s(t, &["target"]),
                s(t, &["figure"]),
                fmt_ratio(num(t, &["ratio"])),
                verdict(t),
                s(t, &["note"]),
            );
        }
    }
    let _ = writeln!(o);

    machine_section(&mut o, report);
    method_section(&mut o);
    cold_section(&mut o, report);
    split_section(&mut o, report);
    latency_section(&mut o, report);
    throughput_section(&mut o, report);
    memory_section(&mut o, report);
    knobs_section(&mut o, report);
    mux_section(&mut o, report);
    floors_section(&mut o, report);
    skipped_section(&mut o, report);

    let _ = writeln!(o, "## Build note: `AWS_LC_SYS_NO_JITTER_ENTROPY`\n");
    let _ = writeln!(
        o,
        "aws-lc-sys (the crypto under rustls and rcgen here) seeds its random generator from \
         a CPU-jitter entropy source by default, and that first draw costs tens of \
         milliseconds in every process (see the `host_seed` and plugin `seed` rows of the \
         rust-jitter column above). Built with `AWS_LC_SYS_NO_JITTER_ENTROPY=1` it seeds from \
         the operating system (getrandom), as Go's crypto/rand does. This workspace sets it \
         in `.cargo/config.toml` under `[env]`; **plugins and hosts built outside this \
         workspace should set it too**, in their own `.cargo/config.toml` or the build \
         environment. It is read by aws-lc-sys' build script, so changing it rebuilds \
         aws-lc-sys.\n"
    );
    let _ = writeln!(o, "## Notes\n");
    let _ = writeln!(o, "{NOTES_START}\n{notes}\n{NOTES_END}");
    o
}

fn machine_section(o: &mut String, report: &Value) {
    let m = report.get("machine").cloned().unwrap_or(Value::Null);
    let v = report.get("versions").cloned().unwrap_or(Value::Null);
    let _ = writeln!(o, "## Machine and versions\n");
    let _ = writeln!(
        o,
        "- CPU: {} ({} cores visible, {} GiB RAM), Linux {}",
        s(&m, &["cpu_model"]),
        fmt_num(num(&m, &["cores"]), 0),
        fmt_num(num(&m, &["mem_gib"]), 1),
        s(&m, &["kernel"]),
    );
    let _ = writeln!(
        o,
        "- Load average (1/5/15 min) before: {}; after: {}. The machine is shared; ratios \
         within the run are the figures to trust, absolute values move with the load.",
        s(&m, &["load_before"]),
        s(report, &["load_after"]),
    );
    let r = |k: &str| s(&v, &["rust", k]).to_owned();
    let _ = writeln!(
        o,
        "- Rust: rpcplugin {} ({}), tonic {}, h2 {}, hyper {}, tokio {}, rustls {}, \
         tokio-rustls {}, aws-lc-rs {} (aws-lc-sys {}), prost {}",
        r("rpcplugin"),
        r("rustc"),
        r("tonic"),
        r("h2"),
        r("hyper"),
        r("tokio"),
        r("rustls"),
        r("tokio-rustls"),
        r("aws-lc-rs"),
        r("aws-lc-sys"),
        r("prost"),
    );
    let _ = writeln!(
        o,
        "- Go: hashicorp/go-plugin {}, grpc-go {} ({})",
        s(&v, &["go", "go-plugin"]),
        s(&v, &["go", "grpc-go"]),
        s(&v, &["go", "go"]),
    );
    let _ = writeln!(
        o,
        "- Python: pyvider-rpcplugin {}, grpcio {}, protobuf {} ({})",
        s(&v, &["python", "pyvider-rpcplugin"]),
        s(&v, &["python", "grpcio"]),
        s(&v, &["python", "protobuf"]),
        s(&v, &["python", "python"]),
    );
    let p = report.get("params").cloned().unwrap_or(Value::Null);
    let _ = writeln!(
        o,
        "- Run size: {} cold launches per cell (after one untimed round), {} step-by-step \
         launches, {} session round(s) per cell of {} warm-up + {} timed Gets, {} ms per \
         throughput level, bulk `{}`; floors {} ping-pongs and {} MB.\n",
        fmt_num(num(&p, &["cold_launches"]), 0),
        fmt_num(num(&p, &["split_launches"]), 0),
        fmt_num(num(&p, &["session_rounds"]), 0),
        fmt_num(num(&p, &["warmup_calls"]), 0),
        fmt_num(num(&p, &["latency_calls"]), 0),
        fmt_num(num(&p, &["throughput_ms"]), 0),
        s(&p, &["bulk"]),
        fmt_num(num(&p, &["floor_calls"]), 0),
        fmt_num(num(&p, &["floor_bulk_bytes"]).map(|b| b / 1e6), 0),
    );
}

fn method_section(o: &mut String) {
    let _ = writeln!(o, "## How it is measured\n");
    let _ = writeln!(
        o,
        "Each language has a bench host and a bench plugin with the same flags and output \
         (`crates/bench` for Rust, `peers/go/cmd/kv-bench*` on go-plugin, \
         `peers/python/kv_bench_*.py` on pyvider-rpcplugin). The plugins serve the KV \
         service from memory without per-call logging; each host launches a plugin through \
         its library (AutoMTLS with the library's default key: P-256 for rpcplugin, P-521 \
         for go-plugin, P-384 for pyvider) and prints one JSON line.\n\n\
         - **Cold start**: the host is launched, starts the plugin, makes one 16-byte Put and \
         stops the plugin. *In-process* is the host's own launch → first RPC done; *whole \
         process* is the host executable's spawn → exit as seen by `cargo xtask bench` (it \
         includes the host's own start-up, such as Python imports, and the plugin's \
         shutdown).\n\
         - **Latency**: sequential 16-byte Gets, one in flight, each timed. The Rust host \
         runs the loop twice: from the body of its `main` (the figure the targets judge), \
         which on tokio's multi-thread runtime is a thread outside the workers that read \
         the socket, then from one spawned task, which runs on a worker (the table's last \
         two columns); the Go and Python hosts have no such difference and run it \
         once.\n\
         - **Throughput**: N tasks/goroutines/coroutines each looping Gets over the one \
         connection for a fixed time; calls/s. Bulk: Put then Get of 1 MiB and 64 MiB values, \
         MB/s with MB = 10^6 bytes.\n\
         - **Memory**: `VmRSS` (idle, after start and one call) and `VmHWM` (peak) from \
         `/proc/PID/status` of the plugin and of the host.\n\
         - Ratios are against Go↔Go in the same TLS mode (below 1 is faster for times and \
         memory; above 1 is better for rates), and against the raw socket floors \
         (current-thread runtime) measured in the same run.\n\
         - Knob rows: `rust-release` is the Rust plugin built with the plain `release` \
         profile instead of the `plugin` profile; `rust-ct` runs the plugin (and, as host, the \
         host) on a current-thread tokio runtime; `rust-jitter` is the same code built with the `release` profile \
         and aws-lc's CPU-jitter entropy (`AWS_LC_SYS_NO_JITTER_ENTROPY=0`, in \
         `target/bench-jitter`), host and plugin; `rust-thp` \
         runs the default binaries with `GLIBC_TUNABLES={}` (large \
         buffers on transparent huge pages); `rust-heap` runs them with \
         `GLIBC_TUNABLES={}` (glibc keeps freed large buffers for reuse instead of \
         unmapping them; the guide's advice for large messages).\n",
        crate::bench::THP_TUNABLES,
        crate::bench::HEAP_TUNABLES
    );
}

fn cold_section(o: &mut String, report: &Value) {
    let _ = writeln!(o, "## Cold start: spawn → handshake → first RPC\n");
    let _ = writeln!(o, "![cold start per pair](performance-cold-start.svg)\n");
    let _ = writeln!(
        o,
        "| Host → plugin | TLS | In-process median (ms) | p90 | Whole process median (ms) | p90 | × Go→Go (in-process) | × Go→Go (whole) |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for c in ordered(report) {
        if c.get("cold").is_none_or(Value::is_null) {
            continue;
        }
        let base = baseline_id(c);
        let f = |path: &[&str]| num(c, path);
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            pair_label(c),
            s(c, &["tls"]),
            fmt_ms(f(&["cold", "first_rpc_ms", "median"])),
            fmt_ms(f(&["cold", "first_rpc_ms", "p90"])),
            fmt_ms(f(&["cold", "process_ms", "median"])),
            fmt_ms(f(&["cold", "process_ms", "p90"])),
            fmt_ratio(ratio(
                f(&["cold", "first_rpc_ms", "median"]),
                at(report, &base, &["cold", "first_rpc_ms", "median"])
            )),
            fmt_ratio(ratio(
                f(&["cold", "process_ms", "median"]),
                at(report, &base, &["cold", "process_ms", "median"])
            )),
        );
    }
    let _ = writeln!(o);
}

const HOST_STEPS: [(&str, &str); 7] = [
    (
        "keygen",
        "host: key + certificate (incl. the first random draw)",
    ),
    ("spawn", "host: spawn the plugin process"),
    ("handshake", "spawn → handshake line read"),
    (
        "connect",
        "connect: TLS config, dial, TLS 1.3 and HTTP/2 handshakes",
    ),
    ("health_check", "health check RPC"),
    ("start", "`Client::start`, whole"),
    ("first_rpc", "first RPC (16-byte Put)"),
];

const PLUGIN_STEPS: [(&str, &str); 4] = [
    ("exec_to_main", "plugin: exec → main (loader, std init)"),
    ("seed", "plugin: first random draw (DRBG seeding)"),
    (
        "main_to_ready",
        "plugin: main → ready (runtime, key + certificate, bind), incl. the seed",
    ),
    (
        "ready_to_line_read",
        "plugin ready → host has read the line",
    ),
];

fn split_section(o: &mut String, report: &Value) {
    let split_cells: Vec<&Value> = ordered(report)
        .into_iter()
        .filter(|c| c.get("split").is_some_and(|s| !s.is_null()))
        .collect();
    if split_cells.is_empty() {
        return;
    }
    let _ = writeln!(o, "### Where a Rust cold start goes\n");
    let _ = writeln!(
        o,
        "The Rust bench host's `--mode split` starts the plugin with `Client::start`, as a \
         cold start does, and times each start step from the runtime's own `tracing` spans \
         (`keygen`, `spawn`, `handshake`, `connect`, `health_check` inside `plugin_start`); \
         the bench plugin reports its own start-up (wall clocks compared across the two \
         processes). The plugin side runs inside \"spawn → handshake line read\". Medians in \
         ms; the steps are medians of each step, so they need not add up exactly to the \
         total.\n"
    );
    let mut header = String::from("| Step |");
    let mut rule = String::from("|---|");
    for c in &split_cells {
        let _ = write!(header, " {} {} |", pair_label(c), s(c, &["tls"]));
        rule.push_str("---|");
    }
    let _ = writeln!(o, "{header}\n{rule}");
    for (key, label) in HOST_STEPS {
        let _ = write!(o, "| {label} |");
        for c in &split_cells {
            let _ = write!(o, " {} |", fmt_ms(num(c, &["split", "host_ms", key])));
        }
        let _ = writeln!(o);
    }
    let _ = write!(o, "| **total: launch → first RPC** |");
    for c in &split_cells {
        let _ = write!(
            o,
            " **{}** |",
            fmt_ms(num(c, &["split", "first_rpc_ms", "median"]))
        );
    }
    let _ = writeln!(o);
    for (key, label) in PLUGIN_STEPS {
        let _ = write!(o, "| {label} |");
        for c in &split_cells {
            let _ = write!(o, " {} |", fmt_ms(num(c, &["split", "plugin_ms", key])));
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o);
}

fn floor_of<'a>(report: &'a Value, tls: &str) -> Option<&'a Value> {
    report
        .get("floors")?
        .get("current")?
        .get(if tls == "off" { "unix" } else { "tls" })
}

fn latency_section(o: &mut String, report: &Value) {
    let _ = writeln!(o, "## Unary latency: 16-byte Get, one in flight\n");
    let _ = writeln!(o, "![latency per pair](performance-latency.svg)\n");
    let _ = writeln!(
        o,
        "| Host → plugin | TLS | p50 (µs) | p90 | p99 | × Go↔Go p50 | × floor p50 | p50 from a spawned task (µs) | × Go↔Go |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
    for c in ordered(report) {
        if c.get("session").is_none_or(Value::is_null) {
            continue;
        }
        let p50 = num(c, &["session", "latency_us", "p50"]);
        let floor = floor_of(report, s(c, &["tls"])).and_then(|f| num(f, &["p50_us"]));
        let go_p50 = at(report, &baseline_id(c), &["session", "latency_us", "p50"]);
        let task_p50 = num(c, &["session", "latency_task_us", "p50"]);
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            pair_label(c),
            s(c, &["tls"]),
            fmt_num(p50, 1),
            fmt_num(num(c, &["session", "latency_us", "p90"]), 1),
            fmt_num(num(c, &["session", "latency_us", "p99"]), 1),
            fmt_ratio(ratio(p50, go_p50)),
            fmt_ratio(ratio(p50, floor)),
            fmt_num(task_p50, 1),
            fmt_ratio(ratio(task_p50, go_p50)),
        );
    }
    let _ = writeln!(o);
}

fn throughput_section(o: &mut String, report: &Value) {
    let _ = writeln!(o, "## Throughput\n");
    let _ = writeln!(
        o,
        "| Host → plugin | TLS | calls/s, 1 in flight | 16 | 64 | × Go↔Go at 64 | 1 MiB Put / Get (MB/s) | 64 MiB Put / Get (MB/s) | 64 MiB best × floor |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
    for c in ordered(report) {
        if c.get("session").is_none_or(Value::is_null) {
            continue;
        }
        let id = s(c, &["id"]);
        let tls = s(c, &["tls"]);
        let pair =
            |b: Option<(f64, f64)>| b.map_or("–".into(), |(p, g)| format!("{p:.0} / {g:.0}"));
        let big = bulk_at(report, id, MIB64);
        let floor = floor_of(report, tls).and_then(|f| num(f, &["bulk_mb_s"]));
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            pair_label(c),
            tls,
            fmt_num(calls_at(report, id, 1.0), 0),
            fmt_num(calls_at(report, id, 16.0), 0),
            fmt_num(calls_at(report, id, 64.0), 0),
            fmt_ratio(ratio(
                calls_at(report, id, 64.0),
                calls_at(report, &baseline_id(c), 64.0)
            )),
            pair(bulk_at(report, id, MIB1)),
            pair(big),
            fmt_ratio(ratio(big.map(|(p, g)| p.max(g)), floor)),
        );
    }
    let _ = writeln!(o);
}

fn memory_section(o: &mut String, report: &Value) {
    let _ = writeln!(o, "## Memory (MiB)\n");
    let _ = writeln!(
        o,
        "Peak (small) is `VmHWM` after the latency and throughput runs; peak (bulk) after the \
         64 MiB values, which every implementation holds a few copies of. Plugin after bulk is \
         the plugin's `VmRSS` once the last 64 MiB Get has returned: it still stores one 64 MiB \
         value, and whatever its allocator kept of the freed buffers shows here.\n"
    );
    let _ = writeln!(
        o,
        "| Host → plugin | TLS | plugin idle | × Go | plugin peak (small) | plugin peak (bulk) | plugin after bulk | host idle | host peak (small) | host peak (bulk) |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
    for c in ordered(report) {
        if c.get("session").is_none_or(Value::is_null) {
            continue;
        }
        let r = |k: &str| num(c, &["session", "rss_kb", k]);
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            pair_label(c),
            s(c, &["tls"]),
            mib(r("plugin_idle")),
            fmt_ratio(ratio(
                r("plugin_idle"),
                at(
                    report,
                    &baseline_id(c),
                    &["session", "rss_kb", "plugin_idle"]
                )
            )),
            mib(r("plugin_peak_small")),
            mib(r("plugin_peak")),
            mib(r("plugin_after_bulk")),
            mib(r("host_idle")),
            mib(r("host_peak_small")),
            mib(r("host_peak")),
        );
    }
    let _ = writeln!(o);
}

fn knobs_section(o: &mut String, report: &Value) {
    let _ = writeln!(o, "## Build and runtime knobs (Rust)\n");
    let _ = writeln!(
        o,
        "| Configuration | TLS | cold start in-process (ms) | whole process (ms) | p50 (µs) | calls/s at 64 | 64 MiB Get (MB/s) | plugin idle RSS (MiB) |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    let rows = [
        (
            "rust->rust",
            "default (`plugin` profile, no jitter entropy, multi-thread runtimes)",
        ),
        (
            "rust->rust-release",
            "plugin built with the plain `release` profile",
        ),
        ("rust-jitter->rust-jitter", "aws-lc CPU-jitter entropy on"),
        ("rust->rust-ct", "plugin on a current-thread runtime"),
        ("rust-ct->rust", "host on a current-thread runtime"),
        (
            "rust-ct->rust-ct",
            "host and plugin on current-thread runtimes",
        ),
        (
            "rust-thp->rust-thp",
            "glibc malloc with transparent huge pages (`rust-thp` above)",
        ),
        (
            "rust-heap->rust-heap",
            "glibc malloc keeping freed large buffers (`rust-heap` above)",
        ),
        ("go->rust", "Go host, Rust plugin (default)"),
        (
            "go->rust-jitter",
            "Go host, Rust plugin with jitter entropy",
        ),
        (
            "go->rust-ct",
            "Go host, Rust plugin on a current-thread runtime",
        ),
    ];
    for (pair, label) in rows {
        for tls in ["off", "auto"] {
            let id = format!("{pair} {tls}");
            if cell(report, &id).is_none() {
                continue;
            }
            let _ = writeln!(
                o,
                "| {label} (`{pair}`) | {tls} | {} | {} | {} | {} | {} | {} |",
                fmt_ms(at(report, &id, &["cold", "first_rpc_ms", "median"])),
                fmt_ms(at(report, &id, &["cold", "process_ms", "median"])),
                fmt_num(at(report, &id, &["session", "latency_us", "p50"]), 1),
                fmt_num(calls_at(report, &id, 64.0), 0),
                fmt_num(bulk_at(report, &id, MIB64).map(|b| b.1), 0),
                mib(at(report, &id, &["session", "rss_kb", "plugin_idle"])),
            );
        }
    }
    let _ = writeln!(o);
}

/// Multiplexed cells (`... mux`) beside the same pair without it.
fn mux_section(o: &mut String, report: &Value) {
    let _ = writeln!(o, "## Broker multiplexing\n");
    let _ = writeln!(
        o,
        "The host asks for go-plugin's broker multiplexing (`ClientBuilder::multiplex`, \
         `GRPCBrokerMultiplex`): the main gRPC connection is a yamux stream of the one socket. \
         AutoMTLS; each pair with and without it, in the same run.\n"
    );
    let _ = writeln!(
        o,
        "| Pair | p50 plain (µs) | p50 mux (µs) | calls/s at 64 plain | calls/s at 64 mux | 64 MiB Get plain (MB/s) | 64 MiB Get mux (MB/s) |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    for pair in ["rust->rust", "rust->go", "go->rust", "go->go"] {
        let plain = format!("{pair} auto");
        let mux = format!("{pair} auto mux");
        if cell(report, &mux).is_none() {
            continue;
        }
        let p50 = |id: &str| fmt_num(at(report, id, &["session", "latency_us", "p50"]), 1);
        let calls = |id: &str| fmt_num(calls_at(report, id, 64.0), 0);
        let bulk = |id: &str| fmt_num(bulk_at(report, id, MIB64).map(|b| b.1), 0);
        let _ = writeln!(
            o,
            "| `{pair}` | {} | {} | {} | {} | {} | {} |",
            p50(&plain),
            p50(&mux),
            calls(&plain),
            calls(&mux),
            bulk(&plain),
            bulk(&mux),
        );
    }
    let _ = writeln!(o);
}

fn floors_section(o: &mut String, report: &Value) {
    let _ = writeln!(o, "## Floors: raw sockets between two processes\n");
    let _ = writeln!(
        o,
        "`bench-floor` (crates/bench): a 16-byte ping-pong and a one-way bulk transfer over a \
         unix socket, raw and wrapped in TLS 1.3 (rustls + aws-lc, pinned P-256 certificates, \
         as AutoMTLS), between the program and a child copy of itself, both on the given tokio \
         runtime. No HTTP/2, no gRPC: the physical limit for the figures above.\n"
    );
    let _ = writeln!(
        o,
        "| Runtime | unix p50 (µs) | unix p99 | TLS p50 | TLS p99 | unix bulk (MB/s) | TLS bulk (MB/s) |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    if let Some(floors) = report.get("floors").and_then(Value::as_object) {
        for (runtime, f) in floors {
            let _ = writeln!(
                o,
                "| {runtime} | {} | {} | {} | {} | {} | {} |",
                fmt_num(num(f, &["unix", "p50_us"]), 1),
                fmt_num(num(f, &["unix", "p99_us"]), 1),
                fmt_num(num(f, &["tls", "p50_us"]), 1),
                fmt_num(num(f, &["tls", "p99_us"]), 1),
                fmt_num(num(f, &["unix", "bulk_mb_s"]), 0),
                fmt_num(num(f, &["tls", "bulk_mb_s"]), 0),
            );
        }
    }
    let _ = writeln!(o);
}

fn skipped_section(o: &mut String, report: &Value) {
    let skipped: Vec<&Value> = cells(report)
        .iter()
        .filter(|c| c.get("skip").is_some_and(|s| !s.is_null()))
        .collect();
    let failed: Vec<&Value> = cells(report)
        .iter()
        .filter(|c| {
            c.get("errors")
                .and_then(Value::as_array)
                .is_some_and(|e| !e.is_empty())
        })
        .collect();
    if skipped.is_empty() && failed.is_empty() {
        return;
    }
    let _ = writeln!(o, "## Pairs not measured\n");
    for c in skipped {
        let _ = writeln!(
            o,
            "- {} ({}): {}",
            pair_label(c),
            s(c, &["tls"]),
            s(c, &["skip"])
        );
    }
    for c in failed {
        let n = c
            .get("errors")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let first = c
            .get("errors")
            .and_then(|e| e.get(0))
            .and_then(Value::as_str)
            .unwrap_or("");
        let _ = writeln!(
            o,
            "- {} ({}): {n} failed run(s), first: `{}`",
            pair_label(c),
            s(c, &["tls"]),
            first.replace('`', "'")
        );
    }
    let _ = writeln!(o);
}

// ---------------------------------------------------------------- plots

fn rows(report: &Value, path: &[&str], pairs: &[&str]) -> Vec<Row> {
    pairs
        .iter()
        .map(|pair| Row {
            label: pair.replace("->", " → "),
            off: at(report, &format!("{pair} off"), path),
            auto: at(report, &format!("{pair} auto"), path),
        })
        .filter(|r| r.off.is_some() || r.auto.is_some())
        .collect()
}

const PAIRS: [&str; 9] = [
    "rust->rust",
    "rust->go",
    "rust->python",
    "go->rust",
    "go->go",
    "go->python",
    "python->rust",
    "python->go",
    "python->python",
];

fn cold_svg(report: &Value) -> Result<String> {
    let mut pairs: Vec<&str> = PAIRS.to_vec();
    pairs.extend([
        "rust-ct->rust-ct",
        "rust-jitter->rust-jitter",
        "go->rust-jitter",
    ]);
    let rows = rows(report, &["cold", "first_rpc_ms", "median"], &pairs);
    bar_chart(
        "Cold start: host launch → first RPC done (in-process median)",
        "ms",
        &rows,
    )
}

fn latency_svg(report: &Value) -> Result<String> {
    let mut pairs: Vec<&str> = PAIRS.to_vec();
    pairs.extend(["rust->rust-ct", "rust-ct->rust", "rust-ct->rust-ct"]);
    let mut rows = rows(report, &["session", "latency_us", "p50"], &pairs);
    if let Some(floor) = report.get("floors").and_then(|f| f.get("current")) {
        rows.push(Row {
            label: "floor: raw socket".into(),
            off: num(floor, &["unix", "p50_us"]),
            auto: num(floor, &["tls", "p50_us"]),
        });
    }
    bar_chart("Unary latency: 16-byte Get, p50", "µs", &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({
            "kind": "quick",
            "command": "cargo xtask bench --quick",
            "generated": "now",
            "floors": {"current": {"unix": {"p50_us": 10.0, "bulk_mb_s": 4000.0}, "tls": {"p50_us": 20.0, "bulk_mb_s": 800.0}}},
            "cells": [
                {"id": "rust->rust auto", "host": "rust", "plugin": "rust", "tls": "auto", "group": "main",
                 "cold": {"first_rpc_ms": {"median": 5.0, "p90": 6.0}, "process_ms": {"median": 8.0, "p90": 9.0}},
                 "session": {"latency_us": {"p50": 120.0}, "throughput": [{"concurrency": 64.0, "calls_per_s": 30000.0}],
                             "bulk": [{"size": 67108864.0, "put_mb_s": 500.0, "get_mb_s": 600.0}],
                             "rss_kb": {"plugin_idle": 8000.0}}},
                {"id": "rust->go auto", "host": "rust", "plugin": "go", "tls": "auto", "group": "main",
                 "cold": {"first_rpc_ms": {"median": 30.0, "p90": 40.0}, "process_ms": {"median": 35.0, "p90": 45.0}},
                 "session": {"latency_us": {"p50": 130.0}, "throughput": [{"concurrency": 64.0, "calls_per_s": 21000.0}],
                             "bulk": [], "rss_kb": {"plugin_idle": 16000.0}}},
                {"id": "go->go auto", "host": "go", "plugin": "go", "tls": "auto", "group": "main",
                 "cold": {"first_rpc_ms": {"median": 50.0, "p90": 60.0}, "process_ms": {"median": 55.0, "p90": 66.0}},
                 "session": {"latency_us": {"p50": 140.0}, "throughput": [{"concurrency": 64.0, "calls_per_s": 20000.0}],
                             "bulk": [], "rss_kb": {"plugin_idle": 16000.0}}},
                {"id": "python->go auto", "host": "python", "plugin": "go", "tls": "auto", "group": "main",
                 "skip": "reason", "cold": null, "session": null, "errors": []}
            ]
        })
    }

    #[test]
    fn targets_are_evaluated() {
        let report = sample();
        let t = targets(&report);
        let by_id = |id: &str| {
            t.as_array()
                .and_then(|a| a.iter().find(|x| x["id"] == id))
                .cloned()
                .unwrap_or(Value::Null)
        };
        assert_eq!(by_id("cold-rust-rust")["met"], true);
        assert_eq!(by_id("latency-rust-go")["met"], true);
        assert_eq!(by_id("throughput-rust-go")["met"], true);
        // 120 / 140 µs = 0.86×: not the 0.5× asked.
        assert_eq!(by_id("latency")["met"], false);
        assert_eq!(by_id("throughput")["met"], true);
        // 8,000 / 16,000 kB = 0.5×: above 0.45×.
        assert_eq!(by_id("idle-rss")["met"], false);
        // The slower direction, Put 500 MB/s, against the 800 MB/s floor.
        assert_eq!(by_id("bulk")["ratio"], 0.625);
        assert_eq!(by_id("bulk")["met"], false);
        assert_eq!(by_id("cold-go-rust")["met"], Value::Null);
    }

    #[test]
    fn renders_markdown_and_svg() {
        let mut report = sample();
        let t = targets(&report);
        report["targets"] = t;
        let md = render(&report, "kept notes");
        assert!(md.contains("| rust → rust | auto | 5.00 |"));
        assert!(md.contains("kept notes"));
        assert!(md.contains("python → go (auto): reason"));
        let svg = cold_svg(&report).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("rust → rust"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
