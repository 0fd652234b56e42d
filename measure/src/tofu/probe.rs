//! Rust host → real providers, without OpenTofu: `rpcplugin probe --preset
//! terraform --json` must read each provider's schema (protocol 6 from the
//! Rust and Go localfs providers, protocol 5 from hashicorp's
//! terraform-provider-time) and list its resources, data sources and
//! functions.

use super::at;
use super::build::{Built, PROVIDER_BIN};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// terraform-provider-time, installed from the Go module proxy.
const TIME_MODULE: &str = "github.com/hashicorp/terraform-provider-time";
const TIME_VERSION: &str = "v0.14.2";

fn names(schema: &Value, key: &str) -> Vec<String> {
    at(schema, &[key])
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| at(item, &["name"]).as_str().map(str::to_owned))
        .collect()
}

/// Probes one provider and checks its schema lists what `expect` names.
fn probe_one(
    cli: &Path,
    label: &str,
    provider: &Path,
    protocol: u64,
    expect: &[(&str, &str)],
) -> Result<Value> {
    let out = Command::new(cli)
        .args(["probe", "--preset", "terraform", "--json", "--pings", "1"])
        .arg(provider)
        .output()
        .with_context(|| format!("running {}", cli.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .with_context(|| format!("probe of {label} printed no JSON: {stdout}"))?;
    let schema = at(&report, &["schema"]);
    if !out.status.success() || at(&report, &["ok"]) != true {
        bail!("probe of {label} failed ({}): {report}", out.status);
    }
    if at(schema, &["protocol"]) != protocol {
        bail!(
            "probe of {label}: expected protocol {protocol}, got {}",
            at(schema, &["protocol"])
        );
    }
    for (key, name) in expect {
        if !names(schema, key).iter().any(|n| n == name) {
            bail!("probe of {label}: {key} lacks {name:?}: {schema}");
        }
    }
    let count = |key: &str| at(schema, &[key]).as_array().map_or(0, Vec::len);
    Ok(json!({
        "plugin": label,
        "protocol": protocol,
        "resources": count("resources"),
        "data_sources": count("data_sources"),
        "functions": count("functions"),
        "start_ms": at(&report, &["start_ms"]),
    }))
}

/// Builds the CLI and terraform-provider-time, probes the three providers.
pub(crate) fn check(root: &Path, built: &Built) -> Result<Value> {
    eprintln!("tofu: building the rpcplugin CLI (release)");
    let status = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["build", "--release", "--quiet", "-p", "rpcplugin-cli"])
        .status()?;
    if !status.success() {
        bail!("building rpcplugin-cli failed: {status}");
    }
    let cli = root.join("target/release/rpcplugin");
    let time_dir = root.join("target/tofu/time");
    let time_bin = time_dir.join("terraform-provider-time");
    if !time_bin.exists() {
        eprintln!("tofu: installing {TIME_MODULE}@{TIME_VERSION} from the Go module proxy");
        let out = Command::new("go")
            .env("GOBIN", &time_dir)
            .args(["install", &format!("{TIME_MODULE}@{TIME_VERSION}")])
            .output()?;
        if !out.status.success() {
            bail!(
                "go install {TIME_MODULE}@{TIME_VERSION} failed (is the Go module proxy reachable?): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    let localfs = [
        ("resources", "localfs_file"),
        ("data_sources", "localfs_file"),
        ("functions", "sha256"),
        ("functions", "basename"),
    ];
    Ok(json!([
        probe_one(
            &cli,
            "Rust provider (terraform-provider-localfs)",
            &built.rust_dir.join(PROVIDER_BIN),
            6,
            &localfs
        )?,
        probe_one(
            &cli,
            "Go provider (terraform-plugin-go)",
            &built.go_dir.join(PROVIDER_BIN),
            6,
            &localfs
        )?,
        probe_one(
            &cli,
            &format!("terraform-provider-time {TIME_VERSION}"),
            &time_bin,
            5,
            &[
                ("resources", "time_static"),
                ("resources", "time_sleep"),
                ("functions", "rfc3339_parse")
            ],
        )?,
    ]))
}
