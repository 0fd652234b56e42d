//! The report types of every job, written as `target/<job>/report.json` and
//! read back by the doc renderers.
//!
//! Fields are declared in alphabetical order: `serde_json` writes a struct's
//! fields in declaration order and a map's keys sorted, and the reports
//! were first written from maps, so this keeps their bytes unchanged.
//! Figures that a measured program printed as its own JSON line (a bench
//! host's result, a load scenario's census) stay [`Value`]s: their shape
//! belongs to that program.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Writes `report` as pretty JSON to `path`, creating its directory.
pub fn write<T: Serialize>(path: &Path, report: &T) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(report)?)?;
    Ok(())
}

/// `target/flake/report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlakeReport {
    /// Every binary run, the doctests last.
    pub binaries: Vec<FlakeBinary>,
    /// Runs of the doctests.
    pub doc_runs: u32,
    /// Wall time of the whole job, in seconds (one decimal).
    pub elapsed_s: f64,
    /// Every test that failed at least once.
    pub failures: Vec<FlakeFailure>,
    /// The `--filter` strings.
    pub filter: Vec<String>,
    /// Binaries run at once.
    pub jobs: usize,
    /// Runs of every test binary.
    pub runs: u32,
    /// Failures over all tests and runs.
    pub total_failures: u32,
}

/// One test binary (or the doctests) of a flake run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlakeBinary {
    /// How the doctests run (`cargo test --workspace --doc`); binaries have
    /// a `path` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Runs with at least one failed test.
    pub failed_runs: u32,
    /// `package/target`, or `doctests`.
    pub name: String,
    /// The test executable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Runs done.
    pub runs: u32,
}

/// One test that failed at least once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlakeFailure {
    /// The binary's name.
    pub binary: String,
    /// Runs it failed in.
    pub count: u32,
    /// Output of its first failure (tail).
    pub first_output: String,
    /// The run (from 1) it first failed in.
    pub first_run: u32,
    /// Runs of its binary.
    pub runs: u32,
    /// The test's name.
    pub test: String,
}

/// `target/reliability/report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReliabilityReport {
    /// `git rev-parse HEAD` of the tree measured.
    pub commit: String,
    /// One result per fuzz target.
    pub fuzz: Vec<FuzzRun>,
    /// The load, plugins and cycles scenarios.
    pub load: LoadScenarios,
    /// Cores and memory.
    pub machine: String,
    /// The property tests' summary.
    pub properties: Properties,
    /// One row per fault or rogue-peer test, as the suite wrote it.
    pub rows: Vec<Value>,
    /// `quick` or `full`.
    pub run: String,
    /// Wall time of the whole job.
    pub seconds: f64,
}

/// The three load and soak scenarios of `rpcplugin-reliability`, each its
/// JSON line (or `{"error": ...}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadScenarios {
    /// Start/kill cycles.
    pub cycles: Value,
    /// Concurrent calls over streams.
    pub load: Value,
    /// Plugins started at once.
    pub plugins: Value,
}

/// Summary of the property-test binary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Properties {
    /// Its wall time.
    pub seconds: f64,
    /// Its `test result:` line.
    pub summary: Option<String>,
    /// It exited 0.
    pub tests_ok: bool,
}

/// One fuzz target's run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FuzzRun {
    /// Up to three error lines, when not ok.
    pub error: Option<String>,
    /// Inputs executed.
    pub executions: Option<u64>,
    /// Corpus entries added.
    pub new_units: Option<u64>,
    /// It exited 0.
    pub ok: bool,
    /// Peak RSS, MB.
    pub peak_rss_mb: Option<u64>,
    /// Wall time.
    pub seconds: f64,
    /// Seed files in its corpus.
    pub seeds: usize,
    /// The target's name.
    pub target: String,
}

/// `target/tofu/report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TofuReport {
    /// `cargo xtask tofu`.
    pub command: String,
    /// The 1-minute load average when the job started.
    pub load_average: Option<String>,
    /// The OpenTofu version built.
    pub opentofu: String,
    /// The Rust and Go providers' figures.
    pub providers: TofuProviders,
    /// Rust over Go.
    pub ratios: TofuRatios,
    /// Scenario runs per provider.
    pub runs: usize,
    /// The schema-read probe's result.
    pub schema_reads: Value,
}

/// The figures of both providers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TofuProviders {
    /// The Go reference provider.
    pub go: TofuProvider,
    /// The Rust provider.
    pub rust: TofuProvider,
}

/// What OpenTofu's runs measured of one provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TofuProvider {
    /// Median of the `apply` command.
    pub apply_ms_median: Option<f64>,
    /// Median per command.
    pub command_ms_median: std::collections::BTreeMap<String, Option<f64>>,
    /// Median launch (spawn to handshake).
    pub launch_ms_median: Option<f64>,
    /// 90th percentile launch.
    pub launch_ms_p90: Option<f64>,
    /// Launches per command, first run.
    pub launches_per_command: Vec<TofuLaunches>,
    /// Launches total.
    pub launches_total: usize,
    /// Protocol versions negotiated.
    pub protocol_versions: Vec<u32>,
    /// Warnings or errors the provider logged.
    pub provider_warnings_or_errors: Vec<String>,
    /// Steps of the scenario.
    pub scenario_steps: usize,
}

/// Launches of one OpenTofu command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TofuLaunches {
    /// The tofu command.
    pub command: String,
    /// Provider processes it started.
    pub launches: usize,
}

/// Rust over Go.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TofuRatios {
    /// Of the median `apply`.
    pub apply_ms_median_rust_over_go: Option<f64>,
    /// Of the median launch.
    pub launch_ms_median_rust_over_go: Option<f64>,
}

/// `target/bench/report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    /// One aggregate per host × plugin cell.
    pub cells: Vec<Value>,
    /// The command that wrote it.
    pub command: String,
    /// Build, measurement and total wall time, seconds.
    pub durations_s: BenchDurations,
    /// Cells with failed runs.
    pub failures: Vec<String>,
    /// Raw unix and TLS socket floors.
    pub floors: Value,
    /// UTC time it was written.
    pub generated: String,
    /// `quick` or `full`.
    pub kind: String,
    /// Load average after the run.
    pub load_after: String,
    /// CPU, cores, memory and load before the run.
    pub machine: Value,
    /// The `--only` filters.
    pub only: Vec<String>,
    /// Sizes of the run.
    pub params: BenchParams,
    /// The performance targets and whether they are met (absent before
    /// they are computed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Value>,
    /// Versions of every implementation and tool.
    pub versions: Value,
}

/// Wall times of a bench run, seconds (one decimal).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchDurations {
    /// Building the programs.
    pub build: f64,
    /// Measuring.
    pub measure: f64,
    /// Everything.
    pub total: f64,
}

/// Sizes of a bench run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchParams {
    /// `SIZExREPS,...` of the bulk transfers.
    pub bulk: String,
    /// Cold launches per cell per round.
    pub cold_launches: usize,
    /// Concurrency levels of the throughput runs.
    pub concurrency: Vec<usize>,
    /// Bulk bytes of the socket floors.
    pub floor_bulk_bytes: usize,
    /// Calls of the socket floors.
    pub floor_calls: usize,
    /// Idle time before the memory sample.
    pub idle_ms: u64,
    /// `quick` or `full`.
    pub kind: String,
    /// Calls timed for latency.
    pub latency_calls: usize,
    /// Rounds of sessions.
    pub session_rounds: usize,
    /// Launches of the start-up split.
    pub split_launches: usize,
    /// Duration of each throughput run.
    pub throughput_ms: u64,
    /// Untimed calls first.
    pub warmup_calls: usize,
}

/// `target/matrix/report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixReport {
    /// One result per host × plugin cell.
    pub cells: Vec<MatrixCell>,
    /// Wall time of the whole job, seconds (one decimal).
    pub elapsed_s: f64,
    /// The `--filter` strings.
    pub filter: Vec<String>,
    /// Cells run at once.
    pub jobs: usize,
    /// The real-provider probe row, when run.
    pub probes: Vec<MatrixProbe>,
    /// Verdict counts.
    pub summary: MatrixSummary,
    /// Versions of the peer libraries.
    pub versions: std::collections::BTreeMap<String, String>,
}

/// One cell of the matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixCell {
    /// The host's language.
    pub client: String,
    /// Why it failed.
    pub error: Option<String>,
    /// What `peers/expectations.tsv` expects.
    pub expected_pass: Option<bool>,
    /// Warning and error lines the host printed on stderr.
    pub host_problems: Vec<String>,
    /// `host->plugin transport tls`, plus the mux or scenario axis.
    pub id: String,
    /// Broker multiplexing of the cell (`off`, `on`, ...).
    pub mux: String,
    /// The exchange passed and the host was silent.
    pub ok: bool,
    /// The expectation's root cause, when it has one.
    pub reason: Option<String>,
    /// The host's JSON line.
    pub result: Value,
    /// The plugin's language.
    pub server: String,
    /// Lines left out of `host_problems` as go-plugin's own stop races
    /// (hashicorp/yamux frames in flight when a session ends).
    pub stop_races: Vec<String>,
    /// The TLS setup.
    pub tls: String,
    /// `unix` or `tcp`.
    pub transport: String,
    /// `pass`, `expected-fail` or an unexpected verdict.
    pub verdict: String,
    /// Spawn to exit of the host.
    pub wall_ms: f64,
}

/// The real-provider probe row of the matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixProbe {
    /// Why it failed.
    pub error: Option<String>,
    /// Warning and error lines of the probe.
    pub host_problems: Vec<String>,
    /// The row's id.
    pub id: String,
    /// The Go module probed.
    pub module: String,
    /// It passed.
    pub ok: bool,
    /// The probe's own report.
    pub report: Value,
    /// The module version `@latest` resolved to.
    pub version: String,
    /// Wall time.
    pub wall_ms: f64,
}

/// Verdict counts of a matrix run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MatrixSummary {
    /// Failures that the expectations list.
    pub expected_fail: usize,
    /// Passes.
    pub pass: usize,
    /// Anything else.
    pub unexpected: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `report` written as a struct has the bytes it has written as a map.
    fn assert_map_order<T: Serialize>(report: &T) {
        let typed = serde_json::to_string_pretty(report).unwrap();
        let value = serde_json::to_value(report).unwrap();
        assert_eq!(typed, serde_json::to_string_pretty(&value).unwrap());
    }

    #[test]
    fn every_report_keeps_the_bytes_of_a_map() {
        assert_map_order(&FlakeReport {
            binaries: vec![FlakeBinary {
                command: None,
                failed_runs: 0,
                name: "b".into(),
                path: Some("/t/b".into()),
                runs: 1,
            }],
            doc_runs: 0,
            elapsed_s: 1.5,
            failures: vec![FlakeFailure {
                binary: "b".into(),
                count: 1,
                first_output: "o".into(),
                first_run: 1,
                runs: 1,
                test: "t".into(),
            }],
            filter: vec![],
            jobs: 1,
            runs: 1,
            total_failures: 1,
        });
        let provider = TofuProvider {
            apply_ms_median: Some(1.0),
            command_ms_median: [("apply".to_owned(), Some(1.0))].into(),
            launch_ms_median: None,
            launch_ms_p90: None,
            launches_per_command: vec![TofuLaunches {
                command: "plan".into(),
                launches: 2,
            }],
            launches_total: 2,
            protocol_versions: vec![6],
            provider_warnings_or_errors: vec![],
            scenario_steps: 3,
        };
        assert_map_order(&TofuReport {
            command: "cargo xtask tofu".into(),
            load_average: None,
            opentofu: "1".into(),
            providers: TofuProviders {
                go: provider.clone(),
                rust: provider,
            },
            ratios: TofuRatios {
                apply_ms_median_rust_over_go: None,
                launch_ms_median_rust_over_go: Some(1.0),
            },
            runs: 1,
            schema_reads: Value::Null,
        });
        assert_map_order(&ReliabilityReport {
            commit: "c".into(),
            fuzz: vec![FuzzRun {
                error: None,
                executions: Some(1),
                new_units: None,
                ok: true,
                peak_rss_mb: Some(1),
                seconds: 1.5,
                seeds: 1,
                target: "t".into(),
            }],
            load: LoadScenarios {
                cycles: Value::Null,
                load: Value::Null,
                plugins: Value::Null,
            },
            machine: "m".into(),
            properties: Properties {
                seconds: 1.0,
                summary: None,
                tests_ok: true,
            },
            rows: vec![],
            run: "quick".into(),
            seconds: 1.0,
        });
        assert_map_order(&MatrixReport {
            cells: vec![MatrixCell {
                client: "rust".into(),
                error: None,
                expected_pass: Some(true),
                host_problems: vec![],
                id: "rust->go unix off".into(),
                mux: "off".into(),
                ok: true,
                reason: None,
                result: Value::Null,
                server: "go".into(),
                stop_races: vec![],
                tls: "off".into(),
                transport: "unix".into(),
                verdict: "pass".into(),
                wall_ms: 1.0,
            }],
            elapsed_s: 1.0,
            filter: vec![],
            jobs: 2,
            probes: vec![MatrixProbe {
                error: None,
                host_problems: vec![],
                id: "p".into(),
                module: "m".into(),
                ok: true,
                report: Value::Null,
                version: "v".into(),
                wall_ms: 1.0,
            }],
            summary: MatrixSummary::default(),
            versions: [("go-plugin".to_owned(), "v1".to_owned())].into(),
        });
        assert_map_order(&BenchReport {
            cells: vec![],
            command: "c".into(),
            durations_s: BenchDurations {
                build: 1.0,
                measure: 1.0,
                total: 2.0,
            },
            failures: vec![],
            floors: Value::Null,
            generated: "g".into(),
            kind: "quick".into(),
            load_after: "0".into(),
            machine: Value::Null,
            only: vec![],
            params: BenchParams {
                bulk: "1x1".into(),
                cold_launches: 1,
                concurrency: vec![1],
                floor_bulk_bytes: 1,
                floor_calls: 1,
                idle_ms: 1,
                kind: "quick".into(),
                latency_calls: 1,
                session_rounds: 1,
                split_launches: 1,
                throughput_ms: 1,
                warmup_calls: 1,
            },
            targets: Some(Value::Null),
            versions: Value::Null,
        });
    }
}
