//! The `rpcplugin` command against real plugin processes: its own
//! `serve-kv` plugin, and programs that are not plugins.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;
use std::io::Read as _;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin");

/// Runs `rpcplugin probe --json ARGS`, returning the exit code and report.
fn probe(args: &[&str]) -> (i32, Value) {
    let out = Command::new(BIN)
        .arg("probe")
        .arg("--json")
        .args(args)
        .output()
        .expect("run rpcplugin");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let report = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

#[test]
fn probes_a_plugin_with_automtls() {
    let (code, r) = probe(&[
        BIN,
        "--arg",
        "serve-kv",
        "--key-type",
        "p384",
        "--pings",
        "3",
    ]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["ok"], true);
    assert_eq!(r["health"], "SERVING");
    assert_eq!(r["protocol_version"], 1);
    assert_eq!(r["handshake"]["core_version"], 1);
    assert_eq!(r["handshake"]["protocol"], "grpc");
    assert_eq!(r["handshake"]["server_cert_key_type"], "P-256");
    assert_eq!(r["tls"]["version"], "TLSv1_3");
    assert_eq!(r["tls"]["peer_key_type"], "P-256");
    assert_eq!(r["tls"]["host_key_type"], "P-384");
    assert_eq!(r["exit_status"], "exit status: 0");
    assert!(r["ping_median_us"].as_u64().is_some(), "{r}");
}

#[test]
fn probes_a_plaintext_plugin() {
    let (code, r) = probe(&[BIN, "--arg", "serve-kv", "--tls", "off"]);
    assert_eq!(code, 0, "{r}");
    assert!(r["tls"].is_null(), "{r}");
    assert!(r["handshake"]["server_cert_bytes"].is_null(), "{r}");
}

#[test]
fn diagnoses_a_wrong_cookie() {
    let (code, r) = probe(&[BIN, "--arg", "serve-kv", "--cookie", "SOME_HOST=other"]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["ok"], false);
    assert!(r["error"].as_str().unwrap().contains("magic cookie"), "{r}");
    assert!(r["diagnosis"].as_str().unwrap().contains("--cookie"), "{r}");
}

#[test]
fn diagnoses_a_program_that_is_not_a_plugin() {
    let (code, r) = probe(&["/bin/sh", "--arg=-c", "--arg", "echo hello world; sleep 5"]);
    assert_eq!(code, 1, "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("invalid handshake line"),
        "{r}"
    );
    assert!(
        r["diagnosis"]
            .as_str()
            .unwrap()
            .contains("not a go-plugin plugin"),
        "{r}"
    );
}

#[test]
fn diagnoses_an_early_exit() {
    let (code, r) = probe(&[
        "/bin/sh",
        "--arg=-c",
        "--arg",
        "echo missing library >&2; exit 3",
    ]);
    assert_eq!(code, 1, "{r}");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.contains("exit status: 3") && error.contains("missing library"),
        "{r}"
    );
}

#[test]
fn serve_kv_refuses_to_run_without_its_host() {
    let out = Command::new(BIN).arg("serve-kv").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("plugin"));
}

/// `rpcplugin probe` of its own `serve-kv` with debug logging, so that it
/// logs many lines on stderr.
fn logging_probe(no_color: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["probe", "--json", BIN, "--arg", "serve-kv", "--pings", "1"])
        .env("RUST_LOG", "debug")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if let Some(value) = no_color {
        cmd.env("NO_COLOR", value);
    }
    cmd
}

/// Runs `cmd` with its stderr on a new pseudo-terminal and returns what it
/// wrote there.
fn stderr_on_a_terminal(mut cmd: Command) -> Vec<u8> {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let mut child = cmd.stderr(terminal).spawn().unwrap();
    // The command held the only other handle on the terminal: once the child
    // exits, reading the master side ends with EIO.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut master = std::fs::File::from(master);
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = master.read(&mut chunk) {
            out.extend_from_slice(&chunk[..n]);
        }
        out
    });
    assert!(child.wait().unwrap().success());
    reader.join().unwrap()
}

const ESC: u8 = 0x1b;

#[test]
fn logs_on_a_pipe_carry_no_colour_codes() {
    let out = logging_probe(None).stderr(Stdio::piped()).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEBUG"), "nothing was logged: {stderr}");
    assert!(
        !out.stderr.contains(&ESC),
        "colour codes on a pipe: {stderr}"
    );
}

#[test]
fn logs_on_a_terminal_are_coloured_unless_no_color_is_set() {
    let coloured = stderr_on_a_terminal(logging_probe(None));
    assert!(
        coloured.contains(&ESC),
        "no colour on a terminal: {}",
        String::from_utf8_lossy(&coloured)
    );
    for no_color in ["1", "true"] {
        let plain = stderr_on_a_terminal(logging_probe(Some(no_color)));
        let text = String::from_utf8_lossy(&plain);
        assert!(text.contains("DEBUG"), "nothing was logged: {text}");
        assert!(!plain.contains(&ESC), "NO_COLOR={no_color} ignored: {text}");
    }
    // An empty NO_COLOR does not count as set.
    assert!(stderr_on_a_terminal(logging_probe(Some(""))).contains(&ESC));
}

/// `--preset terraform` reads a schema only from a provider protocol: a
/// go-plugin plugin on another protocol is reported, not misread. (Reading
/// real providers' schemas is checked by `cargo xtask tofu` against the
/// example provider, its Go twin and terraform-provider-time.)
#[test]
fn terraform_preset_reports_a_plugin_that_is_not_a_provider() {
    let (code, r) = probe(&[
        BIN,
        "--arg",
        "serve-kv",
        "--preset",
        "terraform",
        "--cookie",
        "BASIC_PLUGIN=hello",
        "--versions",
        "1",
    ]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["ok"], false);
    assert_eq!(r["health"], "SERVING");
    assert!(r["schema"].is_null(), "{r}");
    assert!(
        r["schema_error"]
            .as_str()
            .unwrap()
            .contains("protocol version 1 is not a Terraform provider protocol"),
        "{r}"
    );
}

#[test]
fn terraform_preset_offers_the_terraform_cookie() {
    // serve-kv wants BASIC_PLUGIN=hello; the preset sends Terraform's cookie.
    let (code, r) = probe(&[BIN, "--arg", "serve-kv", "--preset", "terraform"]);
    assert_eq!(code, 1, "{r}");
    assert!(r["error"].as_str().unwrap().contains("magic cookie"), "{r}");
}
