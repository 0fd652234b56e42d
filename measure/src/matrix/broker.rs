//! The broker and lifecycle axis of the matrix: hosts and plugins on
//! go-plugin's GRPCBroker in both roles, exit notices, managed stops, and a
//! plugin whose host is killed with SIGKILL.
//!
//! The programs: `rpcplugin-broker-host` (Rust, crates/tests) and
//! `peers/go/cmd/broker-host` (go-plugin v1.8.0) as hosts, the Rust test
//! plugin and `peers/go/cmd/broker-plugin` as plugins; both plugins answer
//! the same KV command keys (`rpcplugin_tests::keys`). Python's KV plugin
//! is in the broker cells to show what pyvider-rpcplugin's broker does.

use super::{Cell, Lang, Outcome, Peers, Tls, bounded, host_log, ms};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One scenario of the axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scenario {
    /// The plugin serves a brokered server (AcceptAndServe); the host dials.
    PluginServes,
    /// The host serves a brokered server; the plugin dials.
    HostServes,
    /// The plugin exits with status 7 mid-call; the host reports it.
    ExitStatus,
    /// go-plugin's Managed + CleanupClients, rpcplugin's ClientSet.
    ManagedStop,
    /// The host is killed with SIGKILL; the plugin must be gone soon after.
    HostKilled,
}

impl Scenario {
    pub(super) fn name(self) -> &'static str {
        match self {
            Scenario::PluginServes => "broker-plugin-serves",
            Scenario::HostServes => "broker-host-serves",
            Scenario::ExitStatus => "exit-status",
            Scenario::ManagedStop => "managed-stop",
            Scenario::HostKilled => "host-killed",
        }
    }

    /// The `--scenario` value of the broker hosts.
    fn host_arg(self) -> &'static str {
        match self {
            Scenario::PluginServes => "plugin-serves",
            Scenario::HostServes => "host-serves",
            Scenario::ExitStatus => "exit-status",
            Scenario::ManagedStop => "managed-stop",
            Scenario::HostKilled => "hold",
        }
    }
}

/// How long a plugin may outlive its SIGKILLed host: the parent poll
/// (0.5 s) and the shutdown grace (1 s) that `crates/runtime/src/parent.rs`
/// promises, plus 1 s for a loaded machine.
const HOST_KILLED_BOUND: Duration = Duration::from_millis(2500);

const HOSTS: [Lang; 2] = [Lang::Rust, Lang::Go];

pub(super) fn cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    let mut push = |client, server, tls, scenario| {
        cells.push(Cell {
            client,
            server,
            transport: "unix",
            tls,
            mux: super::Mux::Off,
            scenario: Some(scenario),
        });
    };
    for client in HOSTS {
        for server in super::LANGS {
            for scenario in [Scenario::PluginServes, Scenario::HostServes] {
                for tls in [Tls::Off, Tls::Auto] {
                    push(client, server, tls, scenario);
                }
            }
        }
        for server in HOSTS {
            for scenario in [
                Scenario::ExitStatus,
                Scenario::ManagedStop,
                Scenario::HostKilled,
            ] {
                push(client, server, Tls::Auto, scenario);
            }
        }
    }
    cells
}

fn host(peers: &Peers, lang: Lang) -> PathBuf {
    match lang {
        Lang::Go => peers.go.join("broker-host"),
        Lang::Rust | Lang::Python => bins(peers).join("rpcplugin-broker-host"),
    }
}

fn plugin(peers: &Peers, lang: Lang) -> PathBuf {
    match lang {
        Lang::Go => peers.go.join("broker-plugin"),
        Lang::Python => peers.python.join("kv-plugin"),
        Lang::Rust => bins(peers).join("rpcplugin-test-plugin"),
    }
}

/// `target/debug`, beside the examples directory.
fn bins(peers: &Peers) -> &Path {
    peers.rust.parent().unwrap_or(&peers.rust)
}

fn command(cell: &Cell, scenario: Scenario, peers: &Peers, timeout_ms: u64) -> Command {
    let mut cmd = Command::new(host(peers, cell.client));
    cmd.arg("--plugin")
        .arg(plugin(peers, cell.server))
        .args(["--scenario", scenario.host_arg()])
        .args([
            "--tls",
            if matches!(cell.tls, Tls::Off) {
                "off"
            } else {
                "auto"
            },
        ])
        .args(["--timeout-ms", &timeout_ms.to_string()])
        .env_remove("RPCPLUGIN_KV_TRANSPORT")
        .env_remove("RPCPLUGIN_KV_SERVER_KEY_TYPE");
    if cell.server == Lang::Python {
        // The Python KV plugin's cookie (peers/CONTRACT.md).
        cmd.args(["--cookie", "BASIC_PLUGIN=hello"]);
    }
    cmd
}

pub(super) fn run_cell(
    cell: &Cell,
    scenario: Scenario,
    peers: &Peers,
    timeout_ms: u64,
    log_path: &Path,
) -> Outcome {
    let started = Instant::now();
    let cmd = command(cell, scenario, peers, timeout_ms);
    if scenario == Scenario::HostKilled {
        return host_killed(cmd, timeout_ms, log_path, started);
    }
    let finished = match bounded::host(cmd, started, timeout_ms, log_path) {
        Ok(finished) => finished,
        Err(failed) => return failed,
    };
    let lines = host_log::host_lines(&finished.stderr);
    let host_problems = &lines.problems;
    let Some(result) = last_json(&finished.stdout) else {
        return Outcome::failed("matrix: the host printed no JSON line".into(), started);
    };
    let exchanged = result.get("ok").and_then(Value::as_bool) == Some(true);
    let error = result
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (ok, error) = match scenario {
        // The exit must be logged, at error level, with its status; nothing
        // else may be.
        Scenario::ExitStatus if exchanged => {
            let named = host_problems
                .iter()
                .any(|l| l.contains("exit status: 7") || l.contains("exit status 7"));
            let other = host_problems.iter().find(|l| !l.contains("exited"));
            match (named, other) {
                (true, None) => (true, None),
                (false, _) => (
                    false,
                    Some("the host logged no line naming the plugin's exit status 7".into()),
                ),
                (_, Some(line)) => (
                    false,
                    Some(format!(
                        "the host printed another warning/error line: {}",
                        host_log::without_timestamp(line)
                    )),
                ),
            }
        }
        _ => super::silent_verdict(exchanged, error, host_problems),
    };
    outcome(ok, error, result, started, lines)
}

fn outcome(
    ok: bool,
    error: Option<String>,
    result: Value,
    started: Instant,
    lines: host_log::HostLines,
) -> Outcome {
    Outcome {
        ok,
        error,
        result,
        wall_ms: ms(started.elapsed()),
        host_problems: lines.problems,
        stop_races: lines.stop_races,
    }
}

fn last_json(stdout: &str) -> Option<Value> {
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty())?;
    serde_json::from_str(line).ok()
}

/// Starts the host in `hold`, reads the plugin's pid from its line, kills
/// the host with SIGKILL and waits for the plugin to be gone (exited, a
/// zombie waiting for its new parent counts) within [`HOST_KILLED_BOUND`].
fn host_killed(mut cmd: Command, timeout_ms: u64, log_path: &Path, started: Instant) -> Outcome {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    match std::fs::File::create(log_path) {
        Ok(log) => cmd.stderr(log),
        Err(_) => cmd.stderr(Stdio::null()),
    };
    let mut host = match cmd.spawn() {
        Ok(host) => host,
        Err(err) => {
            return Outcome::failed(format!("matrix: cannot start the host: {err}"), started);
        }
    };
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(stdout) = host.stdout.take() {
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
    }
    let line = rx.recv_timeout(Duration::from_millis(timeout_ms));
    let pid = line
        .as_deref()
        .ok()
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|v| v.get("plugin_pid").and_then(Value::as_u64));
    let Some(pid) = pid else {
        let _ = host.kill();
        let _ = host.wait();
        return Outcome::failed(
            format!(
                "matrix: the host gave no plugin pid: {:?}",
                line.unwrap_or_default().trim()
            ),
            started,
        );
    };
    let _ = host.kill();
    let _ = host.wait();
    let killed = Instant::now();
    let gone_after = loop {
        if !running(pid) {
            break Some(killed.elapsed());
        }
        if killed.elapsed() > HOST_KILLED_BOUND {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = std::fs::read(log_path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines = host_log::host_lines(&stderr);
    let result = serde_json::json!({
        "plugin_pid": pid,
        "gone_after_ms": gone_after.map(ms),
    });
    let (ok, error) = match gone_after {
        Some(_) => (true, None),
        None => {
            // Clean up what the check left behind.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            (
                false,
                Some(format!(
                    "the plugin (pid {pid}) was still running {HOST_KILLED_BOUND:?} after its host was killed with SIGKILL"
                )),
            )
        }
    };
    outcome(ok, error, result, started, lines)
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // pid (comm) state ...: comm may hold spaces and parentheses.
            let after = stat.rsplit_once(')')?.1;
            after
                .split_whitespace()
                .next()
                .map(|s| s != "Z" && s != "X")
        })
        .unwrap_or(false)
}
