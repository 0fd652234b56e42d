//! `cargo xtask tofu`: real OpenTofu plans and applies with the Rust example
//! provider (`crates/tfplugin/examples/terraform-provider-localfs`) and, in
//! the same run, with its Go twin on terraform-plugin-go (peers/go), then
//! compares them.
//!
//! Builds OpenTofu once from the Go module proxy into `target/tofu/bin`
//! (cached), runs the scenario of `tofu/scenario.rs` `--runs` times per
//! provider (alternating, so load drifts hit both alike), reads each
//! command's `TF_LOG=trace` log for provider launches and provider warnings
//! or errors, checks that `rpcplugin probe --preset terraform` reads real
//! providers' schemas (`tofu/probe.rs`), and writes
//! `target/tofu/report.json` plus the marked sections of
//! docs/compatibility.md and docs/performance.md.

mod build;
pub mod doc;
mod probe;
mod scenario;
mod trace;

use crate::bench::median;
use crate::report::{self, TofuLaunches, TofuProvider, TofuProviders, TofuRatios, TofuReport};
use anyhow::{Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Command-line options of `cargo xtask tofu`.
#[derive(clap::Args)]
pub struct Args {
    /// Scenario runs per provider (medians are taken over all of them).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Leave docs/ as they are (still writes target/tofu/report.json).
    #[arg(long)]
    no_docs: bool,
}

/// Everything measured for one provider build.
#[derive(Default)]
struct Measured {
    /// Launches per command, from the first run (the same every run).
    launches_per_step: Vec<(&'static str, usize)>,
    launch_ms: Vec<f64>,
    versions: Vec<u32>,
    step_ms: BTreeMap<&'static str, Vec<f64>>,
    problems: Vec<String>,
    steps: usize,
}

impl Measured {
    fn add(&mut self, steps: Vec<scenario::Step>) {
        let first = self.launches_per_step.is_empty();
        self.steps = steps.len();
        for step in steps {
            if first {
                self.launches_per_step
                    .push((step.name, step.launches.len()));
            }
            self.launch_ms.extend(step.launches.iter().map(|l| l.ms));
            self.versions
                .extend(step.launches.iter().map(|l| l.version));
            self.step_ms.entry(step.name).or_default().push(step.ms);
            self.problems.extend(step.problems);
        }
    }

    fn to_report(&self) -> TofuProvider {
        let mut versions = self.versions.clone();
        versions.sort_unstable();
        versions.dedup();
        TofuProvider {
            launches_per_command: self
                .launches_per_step
                .iter()
                .map(|(n, c)| TofuLaunches {
                    command: (*n).to_owned(),
                    launches: *c,
                })
                .collect(),
            launches_total: self.launch_ms.len(),
            launch_ms_median: median(&self.launch_ms),
            launch_ms_p90: crate::bench::percentile(&self.launch_ms, 90.0),
            protocol_versions: versions,
            command_ms_median: self
                .step_ms
                .iter()
                .map(|(name, ms)| ((*name).to_owned(), median(ms)))
                .collect(),
            apply_ms_median: self.step_ms.get("apply").and_then(|ms| median(ms)),
            scenario_steps: self.steps,
            provider_warnings_or_errors: self.problems.clone(),
        }
    }
}

static NULL: Value = Value::Null;

/// The value at `path` (object keys) in `v`, `null` when absent.
pub(crate) fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter()
        .fold(v, |cur, key| cur.get(*key).unwrap_or(&NULL))
}

fn ratio(rust: Option<f64>, go: Option<f64>) -> Option<f64> {
    let (rust, go) = (rust?, go?);
    (go > 0.0).then(|| rust / go)
}

/// Runs the whole job; fails on any failed step or provider warning.
pub fn run(root: &Path, args: &Args) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let built = build::build_all(root)?;
    // Other work on the machine shows in every figure: say how busy it was.
    let load_average = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned));
    let mut rust = Measured::default();
    let mut go = Measured::default();
    for n in 0..args.runs {
        for (name, dir, measured) in [
            ("rust", &built.rust_dir, &mut rust),
            ("go", &built.go_dir, &mut go),
        ] {
            eprintln!(
                "tofu: scenario run {} of {} with the {name} provider",
                n + 1,
                args.runs
            );
            let run_dir = root.join(format!("target/tofu/run-{name}-{n}"));
            measured.add(scenario::run(&built.tofu, dir, &run_dir)?);
        }
    }
    let schema = probe::check(root, &built)?;
    let (rust_report, go_report) = (rust.to_report(), go.to_report());
    let report = TofuReport {
        command: "cargo xtask tofu".into(),
        opentofu: build::OPENTOFU_VERSION.into(),
        runs: args.runs,
        load_average,
        ratios: TofuRatios {
            launch_ms_median_rust_over_go: ratio(
                rust_report.launch_ms_median,
                go_report.launch_ms_median,
            ),
            apply_ms_median_rust_over_go: ratio(
                rust_report.apply_ms_median,
                go_report.apply_ms_median,
            ),
        },
        providers: TofuProviders {
            rust: rust_report,
            go: go_report,
        },
        schema_reads: schema,
    };
    let path = root.join("target/tofu/report.json");
    report::write(&path, &report)?;
    let report = serde_json::to_value(&report)?;
    eprintln!("tofu: wrote {}", path.display());
    print_summary(&report);
    if !args.no_docs {
        doc::write(root, &report)?;
    }
    if !rust.problems.is_empty() {
        bail!(
            "the Rust provider logged warnings or errors under OpenTofu:\n{}",
            rust.problems.join("\n")
        );
    }
    Ok(())
}

fn print_summary(report: &Value) {
    for name in ["rust", "go"] {
        let p = at(report, &["providers", name]);
        let launches: Vec<String> = at(p, &["launches_per_command"])
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        format!(
                            "{}={}",
                            at(s, &["command"]).as_str().unwrap_or("?"),
                            at(s, &["launches"])
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "{name:>4}: launch median {:.1} ms, apply median {:.0} ms, launches per command: {}",
            at(p, &["launch_ms_median"]).as_f64().unwrap_or(f64::NAN),
            at(p, &["apply_ms_median"]).as_f64().unwrap_or(f64::NAN),
            launches.join(" ")
        );
    }
    println!(
        "rust/go: launch {:.2}x, apply {:.2}x",
        at(report, &["ratios", "launch_ms_median_rust_over_go"])
            .as_f64()
            .unwrap_or(f64::NAN),
        at(report, &["ratios", "apply_ms_median_rust_over_go"])
            .as_f64()
            .unwrap_or(f64::NAN)
    );
}
