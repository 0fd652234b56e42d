//! Shared pieces of the benchmark programs driven by `cargo xtask bench`:
//! a KV service without per-call logging (so every language's bench plugin
//! does the same work per call), percentile summaries (hdrhistogram),
//! `/proc` memory readings, wall-clock stamps that two processes can compare,
//! and the [`steps`] layer that times the runtime's start spans.

pub mod steps;

use rpcplugin_kv::proto::kv_server::{Kv, KvServer};
use rpcplugin_kv::proto::{Empty, GetRequest, GetResponse, PutRequest};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tonic::codegen::Bytes;
use tonic::{Request, Response, Status};

/// Cookie key and value of the KV example protocol.
pub const COOKIE: (&str, &str) = ("BASIC_PLUGIN", "hello");

/// Environment variable naming a file where the bench plugin records when
/// its `main` started, what its first random draw cost and when it was
/// ready to announce (split mode of `kv-bench`).
pub const TIMINGS_ENV: &str = "RPCPLUGIN_BENCH_TIMINGS";

/// Environment variable choosing the bench plugin's tokio runtime:
/// `multi` (default, what `PluginServer::run` builds) or `current`.
pub const RUNTIME_ENV: &str = "RPCPLUGIN_BENCH_RUNTIME";

/// Environment variable choosing the Rust bench host's tokio runtime.
pub const HOST_RUNTIME_ENV: &str = "RPCPLUGIN_BENCH_HOST_RUNTIME";

/// An in-memory KV store that does nothing per call but the map access.
/// A Get of a missing key returns an empty value.
#[derive(Debug, Clone, Default)]
pub struct BenchKv {
    map: Arc<Mutex<HashMap<String, Bytes>>>,
}

impl BenchKv {
    /// The gRPC service with go-plugin's message limits.
    pub fn into_service(self) -> KvServer<BenchKv> {
        KvServer::new(self)
            .max_decoding_message_size(rpcplugin_kv::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(rpcplugin_kv::MAX_MESSAGE_SIZE)
    }
}

#[tonic::async_trait]
impl Kv for BenchKv {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let key = request.into_inner().key;
        let value = self
            .map
            .lock()
            .map_err(|_| Status::internal("store lock poisoned"))?
            .get(&key)
            .cloned()
            .unwrap_or_default();
        Ok(Response::new(GetResponse { value }))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<Empty>, Status> {
        let PutRequest { key, value } = request.into_inner();
        self.map
            .lock()
            .map_err(|_| Status::internal("store lock poisoned"))?
            .insert(key, value);
        Ok(Response::new(Empty {}))
    }
}

/// Microseconds since the Unix epoch (CLOCK_REALTIME), comparable across
/// processes of one machine.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Milliseconds, rounded to microseconds.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Latency samples, in microseconds with three significant digits, as an
/// HDR histogram.
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: hdrhistogram::Histogram<u64>,
}

/// Histogram units per microsecond: samples are recorded in nanoseconds.
const NS_PER_US: f64 = 1e3;

impl Latencies {
    /// An empty histogram for samples from 1 ns up to an hour.
    pub fn new() -> Result<Self, hdrhistogram::CreationError> {
        let histogram = hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000_000, 3)?;
        Ok(Latencies { histogram })
    }

    /// Records one sample of `d`.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.histogram.saturating_record(ns);
    }

    /// The value at percentile `p` (0-100), microseconds.
    pub fn percentile_us(&self, p: f64) -> Option<f64> {
        (!self.histogram.is_empty()).then(|| {
            let ns = self.histogram.value_at_percentile(p);
            self.histogram.median_equivalent(ns) as f64 / NS_PER_US
        })
    }

    /// `{n, min, p50, p90, p99, max, mean}` in microseconds (three decimals).
    pub fn summary(&self) -> Value {
        let h = &self.histogram;
        let empty = h.is_empty();
        let us = |ns: f64| (!empty).then(|| (ns / NS_PER_US * 1000.0).round() / 1000.0);
        let at = |ns: u64| h.median_equivalent(ns) as f64;
        json!({
            "n": h.len(),
            "min": us(at(h.min())),
            "p50": us(at(h.value_at_percentile(50.0))),
            "p90": us(at(h.value_at_percentile(90.0))),
            "p99": us(at(h.value_at_percentile(99.0))),
            "max": us(at(h.max())),
            "mean": us(h.mean()),
        })
    }
}

/// Parses this process's arguments with clap. `--help` and `--version`
/// print and exit; any other error comes back (`usage: ...`) so that the
/// program can still print its one JSON line.
pub fn parse_args<T: clap::Parser>() -> anyhow::Result<T> {
    match T::try_parse() {
        Ok(args) => Ok(args),
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => Err(anyhow::anyhow!("usage: {}", err.to_string().trim())),
    }
}

/// A `kB` field (`VmRSS`, `VmHWM`, ...) of `/proc/<pid>/status`; `pid`
/// `None` reads this process.
pub fn proc_status_kb(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Builds the tokio runtime named by `flavor` (`current` or anything else
/// for multi-thread).
pub fn runtime(flavor: &str) -> std::io::Result<tokio::runtime::Runtime> {
    match flavor {
        "current" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `got` is within the histogram's 0.1 % of `want`.
    fn near(got: &Value, want: f64) -> bool {
        got.as_f64()
            .is_some_and(|got| (got - want).abs() <= want * 1e-3)
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut latencies = Latencies::new().unwrap();
        for us in 1..=100u64 {
            latencies.record(Duration::from_micros(us));
        }
        let s = latencies.summary();
        assert_eq!(s["n"], 100);
        for (key, want) in [
            ("min", 1.0),
            ("p50", 50.0),
            ("p90", 90.0),
            ("p99", 99.0),
            ("max", 100.0),
            ("mean", 50.5),
        ] {
            assert!(near(&s[key], want), "{key}: {} != {want}", s[key]);
        }
        let empty = Latencies::new().unwrap();
        assert_eq!(empty.percentile_us(50.0), None);
        assert_eq!(empty.summary()["p50"], Value::Null);
    }

    #[test]
    fn long_samples_keep_three_significant_digits() {
        let mut latencies = Latencies::new().unwrap();
        latencies.record(Duration::from_secs(123));
        let p50 = latencies.percentile_us(50.0).unwrap();
        assert!((p50 - 123e6).abs() / 123e6 < 1e-3, "{p50}");
    }

    #[test]
    fn reads_own_rss() {
        assert!(proc_status_kb(None, "VmRSS").is_some_and(|kb| kb > 0));
        assert!(proc_status_kb(None, "VmHWM").is_some());
    }
}
