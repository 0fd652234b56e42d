//! Shared pieces of the benchmark programs driven by `cargo xtask bench`:
//! a KV service without per-call logging (so every language's bench plugin
//! does the same work per call), percentile summaries, `/proc` memory
//! readings and wall-clock stamps that two processes can compare.

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

/// Microseconds, rounded to tenths.
pub fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

/// The nearest-rank percentile `p` (0-100) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// `{n, min, p50, p90, p99, max, mean}` of the samples (sorted in place).
pub fn summary(samples: &mut [f64]) -> Value {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let mean = if n == 0 {
        None
    } else {
        Some(samples.iter().sum::<f64>() / n as f64)
    };
    let round = |v: Option<f64>| v.map(|v| (v * 1000.0).round() / 1000.0);
    json!({
        "n": n,
        "min": round(samples.first().copied()),
        "p50": round(percentile(samples, 50.0)),
        "p90": round(percentile(samples, 90.0)),
        "p99": round(percentile(samples, 99.0)),
        "max": round(samples.last().copied()),
        "mean": round(mean),
    })
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

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summary(&mut v);
        assert_eq!(s["p50"], 50.0);
        assert_eq!(s["p99"], 99.0);
        assert_eq!(s["max"], 100.0);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
    }

    #[test]
    fn reads_own_rss() {
        assert!(proc_status_kb(None, "VmRSS").is_some_and(|kb| kb > 0));
        assert!(proc_status_kb(None, "VmHWM").is_some());
    }
}
