//! `cargo xtask matrix`: every host × plugin pair among Rust, Go
//! (hashicorp/go-plugin) and Python (pyvider-rpcplugin), across TLS modes,
//! key types and transports, run for real and compared with the expectations
//! in `peers/expectations.tsv`.
//!
//! Writes `target/matrix/report.json` and regenerates
//! `docs/compatibility.md`. Fails on any unexpected result, in either
//! direction.

mod bounded;
mod broker;
pub(crate) mod host_log;
mod provider;

use crate::pki;
use crate::process::{checked as run, which};
use crate::report::{self, MatrixCell, MatrixProbe, MatrixReport, MatrixSummary};
use crate::units::ms_tenths as ms;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Command-line options of `cargo xtask matrix`.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// Run only the cells whose id contains one of these strings
    /// (ids look like `rust->go unix auto-host-p256`).
    #[arg(long, alias = "only")]
    pub(crate) filter: Vec<String>,
    /// Cells run at the same time.
    #[arg(long, default_value_t = 2)]
    pub(crate) jobs: usize,
    /// Per-cell deadline handed to each host, in milliseconds.
    #[arg(long, default_value_t = 15000)]
    pub(crate) timeout_ms: u64,
    /// Rewrite peers/expectations.tsv from this run (keeps known reasons).
    #[arg(long)]
    pub(crate) write_expectations: bool,
    /// Fail when docs/compatibility.md changes in anything but error texts (CI).
    #[arg(long)]
    pub(crate) check: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(crate) enum Lang {
    Rust,
    Go,
    Python,
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::Rust => "rust",
            Lang::Go => "go",
            Lang::Python => "python",
        })
    }
}

const LANGS: [Lang; 3] = [Lang::Rust, Lang::Go, Lang::Python];

/// The TLS setup of one cell.
#[derive(Clone, Debug)]
enum Tls {
    Off,
    /// AutoMTLS, the host choosing its certificate's key type.
    AutoHost(&'static str),
    /// AutoMTLS, the plugin choosing its certificate's key type (host default).
    AutoPlugin(&'static str),
    /// Manual TLS: both sides' certificates of this key type, from one CA.
    Manual(&'static str),
    /// AutoMTLS, each side with its library's default key type.
    Auto,
}

impl fmt::Display for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tls::Off => f.write_str("off"),
            Tls::AutoHost(k) => write!(f, "auto-host-{k}"),
            Tls::AutoPlugin(k) => write!(f, "auto-plugin-{k}"),
            Tls::Manual(k) => write!(f, "manual-{k}"),
            Tls::Auto => f.write_str("auto"),
        }
    }
}

#[derive(Clone, Debug)]
struct Cell {
    client: Lang,
    server: Lang,
    transport: &'static str,
    tls: Tls,
    mux: Mux,
    /// A broker or lifecycle scenario instead of the KV exchange.
    scenario: Option<broker::Scenario>,
}

impl Cell {
    fn id(&self) -> String {
        let mux = match self.mux {
            Mux::Off => "",
            Mux::Plain => " mux",
            Mux::Broker => " mux-broker",
            Mux::Hold => " mux-hold",
        };
        let id = format!(
            "{}->{} {} {}{mux}",
            self.client, self.server, self.transport, self.tls
        );
        match self.scenario {
            Some(scenario) => format!("{id} {}", scenario.name()),
            None => id,
        }
    }
}

/// The broker multiplexing axis (go-plugin's `GRPCBrokerMultiplex`), for
/// Rust and Go hosts. The hosts are `rpcplugin-mux-host` (Rust) and the
/// Go `kv-host`, both with `--mux`; broker cells use the plugins that speak
/// the test plugin's brokered-call commands (`rpcplugin-test-plugin`, Go
/// `broker-plugin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mux {
    /// Not asked for: every other cell.
    Off,
    /// Put and Get over the multiplexed main connection.
    Plain,
    /// Plain, plus a brokered call each way (both multiplexed).
    Broker,
    /// Broker, then [`MUX_HOLD`] idle, then all again on the same session:
    /// crosses go-plugin's 30 s keepalive pings and its 75 s stream-open
    /// timeout.
    Hold,
}

/// The idle time of the `mux-hold` cells.
const MUX_HOLD: Duration = Duration::from_secs(80);

impl Mux {
    /// Host arguments for this kind of cell.
    fn host_args(self) -> Vec<String> {
        let mut args = Vec::new();
        if self != Mux::Off {
            args.push("--mux".into());
        }
        if matches!(self, Mux::Broker | Mux::Hold) {
            args.push("--broker".into());
        }
        if self == Mux::Hold {
            args.extend(["--hold-ms".into(), MUX_HOLD.as_millis().to_string()]);
        }
        args
    }

    fn hold(self) -> Duration {
        match self {
            Mux::Hold => MUX_HOLD,
            _ => Duration::ZERO,
        }
    }
}

/// The multiplexing cells: Rust and Go hosts against Rust and Go plugins,
/// TLS off and AutoMTLS at the host's default, plain and brokered; one
/// long `mux-hold` cell per cross-language direction; Python plugins
/// (pyvider does not multiplex) as known failures.
fn mux_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    let auto =
        |client: Lang| Tls::AutoHost(host_key_types(client).first().map_or("p256", |(k, _)| *k));
    for client in [Lang::Rust, Lang::Go] {
        for server in [Lang::Rust, Lang::Go] {
            for &transport in transports(server) {
                for tls in [Tls::Off, auto(client)] {
                    for mux in [Mux::Plain, Mux::Broker] {
                        cells.push(Cell {
                            client,
                            server,
                            transport,
                            tls: tls.clone(),
                            mux,
                            scenario: None,
                        });
                    }
                }
            }
        }
        cells.push(Cell {
            client,
            server: Lang::Python,
            transport: "unix",
            tls: Tls::Off,
            mux: Mux::Plain,
            scenario: None,
        });
    }
    // Last in the list, so they are taken first and run side by side.
    for (client, server) in [(Lang::Rust, Lang::Go), (Lang::Go, Lang::Rust)] {
        cells.push(Cell {
            client,
            server,
            transport: "unix",
            tls: auto(client),
            mux: Mux::Hold,
            scenario: None,
        });
    }
    cells
}

/// Key types a host library can choose for its AutoMTLS certificate, with
/// the `--key-type` value that asks for it.
fn host_key_types(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Rust => &[
            ("p256", "p256"),
            ("p384", "p384"),
            ("p521", "p521"),
            ("rsa2048", "rsa2048"),
        ],
        // go-plugin always generates P-521.
        Lang::Go => &[("p521", "auto")],
        // pyvider generates EC keys only.
        Lang::Python => &[("p256", "p256"), ("p384", "p384"), ("p521", "p521")],
    }
}

/// Key types a plugin library can choose for its AutoMTLS certificate
/// (besides its default, covered by the auto-host cells).
fn plugin_key_types(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Rust => &["p384", "p521", "rsa2048"],
        Lang::Go | Lang::Python => &[],
    }
}

const MANUAL_KEY_TYPES: [&str; 4] = ["p256", "p384", "p521", "rsa2048"];

fn transports(server: Lang) -> &'static [&'static str] {
    match server {
        // go-plugin serves only unix sockets on Linux.
        Lang::Go => &["unix"],
        Lang::Rust | Lang::Python => &["unix", "tcp"],
    }
}

fn all_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for client in LANGS {
        for server in LANGS {
            for &transport in transports(server) {
                let mut tls = vec![Tls::Off];
                tls.extend(host_key_types(client).iter().map(|(k, _)| Tls::AutoHost(k)));
                tls.extend(plugin_key_types(server).iter().map(|k| Tls::AutoPlugin(k)));
                tls.extend(MANUAL_KEY_TYPES.iter().map(|k| Tls::Manual(k)));
                cells.extend(tls.into_iter().map(|tls| Cell {
                    client,
                    server,
                    transport,
                    tls,
                    mux: Mux::Off,
                    scenario: None,
                }));
            }
        }
    }
    cells.extend(mux_cells());
    cells.extend(broker::cells());
    cells
}

/// Executables of each language's KV host and plugin.
struct Peers {
    rust: PathBuf,
    go: PathBuf,
    python: PathBuf,
    /// The Rust test crate's binaries (the multiplexing host, the test
    /// plugin).
    rust_bins: PathBuf,
}

impl Peers {
    fn dir(&self, lang: Lang) -> &Path {
        match lang {
            Lang::Rust => &self.rust,
            Lang::Go => &self.go,
            Lang::Python => &self.python,
        }
    }

    fn host(&self, lang: Lang) -> PathBuf {
        self.dir(lang).join("kv-host")
    }

    fn plugin(&self, lang: Lang) -> PathBuf {
        self.dir(lang).join("kv-plugin")
    }

    /// The host and plugin executables of `cell`.
    fn pair(&self, cell: &Cell) -> (PathBuf, PathBuf) {
        let host = match (cell.mux, cell.client) {
            (Mux::Off, client) => self.host(client),
            (_, Lang::Rust) => self.rust_bins.join("rpcplugin-mux-host"),
            (_, client) => self.host(client),
        };
        let plugin = match (cell.mux, cell.server) {
            (Mux::Broker | Mux::Hold, Lang::Rust) => self.rust_bins.join("rpcplugin-test-plugin"),
            (Mux::Broker | Mux::Hold, Lang::Go) => self.go.join("broker-plugin"),
            (_, server) => self.plugin(server),
        };
        (host, plugin)
    }
}

/// Builds the peers, and the `rpcplugin` command and the provider when the
/// provider row runs.
fn prepare(root: &Path, with_provider: bool) -> Result<(Peers, Option<Provider>)> {
    eprintln!("matrix: building the Rust examples and the rpcplugin command");
    run(Command::new(env!("CARGO")).current_dir(root).args([
        "build",
        "--quiet",
        "-p",
        "rpcplugin",
        "--examples",
        "-p",
        "rpcplugin-cli",
        "-p",
        "rpcplugin-tests",
        "--bins",
    ]))?;
    run(Command::new(env!("CARGO")).current_dir(root).args([
        "build",
        "--quiet",
        "-p",
        "rpcplugin-tests",
        "--bins",
    ]))?;
    let examples = root.join("target/debug/examples");

    let mut missing = Vec::new();
    if which("go").is_none() {
        missing.push(
            "Go (the `go` command) is not installed: the Go peer (hashicorp/go-plugin) cannot be \
             built, and the real-provider row cannot install terraform-provider-time",
        );
    }
    if which("python3.11").is_none() {
        missing.push("Python 3.11 (`python3.11`) is not installed: the Python peer (pyvider-rpcplugin) cannot run");
    }
    if !missing.is_empty() {
        bail!(
            "the matrix needs the real peers:\n  - {}",
            missing.join("\n  - ")
        );
    }
    eprintln!("matrix: building the Go peer (hashicorp/go-plugin)");
    run(Command::new("bash").arg(root.join("peers/go/build.sh")))?;
    eprintln!("matrix: setting up the Python peer (pyvider-rpcplugin venv)");
    run(Command::new("bash").arg(root.join("peers/python/setup.sh")))?;
    let provider = if with_provider {
        eprintln!(
            "matrix: installing {}@latest (go install)",
            provider::MODULE
        );
        Some(Provider {
            cli: root.join("target/debug/rpcplugin"),
            executable: provider::install(&root.join("target/matrix/providers"))?,
        })
    } else {
        None
    };

    Ok((
        Peers {
            rust: examples,
            go: root.join("peers/go/bin"),
            python: root.join("peers/python"),
            rust_bins: root.join("target/debug"),
        },
        provider,
    ))
}

/// The `rpcplugin` command and the real provider it probes.
struct Provider {
    cli: PathBuf,
    executable: PathBuf,
}

/// What one cell produced.
#[derive(Clone, Debug)]
struct Outcome {
    ok: bool,
    error: Option<String>,
    result: Value,
    wall_ms: f64,
    /// Warning and error lines the host printed on stderr.
    host_problems: Vec<String>,
    /// go-plugin's own stop races, left out of `host_problems`.
    stop_races: Vec<String>,
}

impl Outcome {
    fn failed(error: String, started: Instant) -> Self {
        Outcome {
            ok: false,
            error: Some(error),
            result: Value::Null,
            wall_ms: ms(started.elapsed()),
            host_problems: Vec::new(),
            stop_races: Vec::new(),
        }
    }
}

fn run_cell(
    cell: &Cell,
    peers: &Peers,
    pki_dir: &Path,
    timeout_ms: u64,
    log_dir: &Path,
) -> Outcome {
    let log_path = log_dir.join(format!("{}.log", cell.id().replace([' ', '>'], "_")));
    if let Some(scenario) = cell.scenario {
        return broker::run_cell(cell, scenario, peers, timeout_ms, &log_path);
    }
    let started = Instant::now();
    let timeout_ms = timeout_ms + cell.mux.hold().as_millis() as u64;
    let (host, plugin) = peers.pair(cell);
    let mut cmd = Command::new(host);
    cmd.arg("--plugin")
        .arg(plugin)
        .args(cell.mux.host_args())
        .args(["--timeout-ms", &timeout_ms.to_string()])
        .env("RPCPLUGIN_KV_TRANSPORT", cell.transport)
        .env_remove("RPCPLUGIN_KV_SERVER_KEY_TYPE")
        .env_remove("RPCPLUGIN_KV_TLS_CERT")
        .env_remove("RPCPLUGIN_KV_TLS_KEY")
        .env_remove("RPCPLUGIN_KV_TLS_CA");
    match &cell.tls {
        Tls::Off => {
            cmd.args(["--tls", "off"]);
        }
        Tls::AutoHost(kt) => {
            let flag = host_key_types(cell.client)
                .iter()
                .find(|(k, _)| k == kt)
                .map_or(*kt, |(_, flag)| *flag);
            cmd.args(["--tls", "auto", "--key-type", flag]);
        }
        Tls::AutoPlugin(kt) => {
            cmd.args(["--tls", "auto"])
                .env("RPCPLUGIN_KV_SERVER_KEY_TYPE", kt);
        }
        Tls::Auto => {
            cmd.args(["--tls", "auto"]);
        }
        Tls::Manual(kt) => {
            let dir = pki_dir.join(kt);
            cmd.args(["--tls", "manual", "--key-type", kt])
                .arg("--cert")
                .arg(dir.join("client.pem"))
                .arg("--key")
                .arg(dir.join("client.key"))
                .arg("--ca")
                .arg(dir.join("ca.pem"))
                .env("RPCPLUGIN_KV_TLS_CERT", dir.join("server.pem"))
                .env("RPCPLUGIN_KV_TLS_KEY", dir.join("server.key"))
                .env("RPCPLUGIN_KV_TLS_CA", dir.join("ca.pem"));
        }
    }
    // The host enforces --timeout-ms itself; this is the backstop.
    let finished = match bounded::host(cmd, started, timeout_ms, &log_path) {
        Ok(finished) => finished,
        Err(failed) => return failed,
    };
    let wall_ms = ms(started.elapsed());
    let host_log::HostLines {
        problems: host_problems,
        stop_races,
    } = host_log::host_lines(&finished.stderr);
    let Some(line) = finished.stdout.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Outcome::failed("matrix: the host printed no JSON line".into(), started);
    };
    let result = match serde_json::from_str::<Value>(line) {
        Ok(result) => result,
        Err(err) => {
            return Outcome::failed(
                format!("matrix: host output is not JSON ({err}): {line}"),
                started,
            );
        }
    };
    let exchanged = result.get("ok").and_then(Value::as_bool) == Some(true);
    let error = result
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (ok, error) = silent_verdict(exchanged, error, &host_problems);
    Outcome {
        ok,
        error,
        result,
        wall_ms,
        host_problems,
        stop_races,
    }
}

/// A clean start-use-stop must be silent: a passing exchange whose host
/// logged a warning or an error fails the cell.
fn silent_verdict(
    exchanged: bool,
    error: Option<String>,
    host_problems: &[String],
) -> (bool, Option<String>) {
    match host_problems.first() {
        Some(first) if exchanged => (
            false,
            Some(format!(
                "the exchange passed but the host printed {} warning/error line(s), first: {}",
                host_problems.len(),
                host_log::without_timestamp(first)
            )),
        ),
        _ => (exchanged, error),
    }
}

/// One row of `peers/expectations.tsv`.
#[derive(Clone, Debug)]
struct Expectation {
    pass: bool,
    reason: String,
}

const EXPECTATIONS: &str = "peers/expectations.tsv";

fn read_expectations(root: &Path) -> Result<BTreeMap<String, Expectation>> {
    let path = root.join(EXPECTATIONS);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(id), Some(expect)) = (cols.next(), cols.next()) else {
            bail!(
                "{}:{}: expected `cell<TAB>pass|fail<TAB>reason`",
                path.display(),
                n + 1
            );
        };
        let reason = cols.next().unwrap_or("").to_owned();
        let pass = match expect {
            "pass" => true,
            "fail" if !reason.is_empty() => false,
            "fail" => bail!(
                "{}:{}: an expected failure needs a reason",
                path.display(),
                n + 1
            ),
            other => bail!(
                "{}:{}: unknown expectation {other:?}",
                path.display(),
                n + 1
            ),
        };
        if map
            .insert(id.to_owned(), Expectation { pass, reason })
            .is_some()
        {
            bail!("{}:{}: duplicate row for {id}", path.display(), n + 1);
        }
    }
    Ok(map)
}

fn write_expectations(
    root: &Path,
    results: &[(Cell, Outcome)],
    old: &BTreeMap<String, Expectation>,
) -> Result<()> {
    let mut text = String::from(
        "# One row per matrix cell: cell<TAB>pass|fail<TAB>reason (root cause of an expected failure).\n\
         # `cargo xtask matrix` fails on any result that differs from its row.\n",
    );
    let mut merged = old.clone();
    for (cell, outcome) in results {
        let id = cell.id();
        let reason = match old.get(&id) {
            Some(e) if !e.pass && !outcome.ok => e.reason.clone(),
            _ if outcome.ok => String::new(),
            _ => "UNEXPLAINED: write the root cause here".into(),
        };
        merged.insert(
            id,
            Expectation {
                pass: outcome.ok,
                reason,
            },
        );
    }
    for (id, e) in &merged {
        if e.pass {
            text.push_str(&format!("{id}\tpass\n"));
        } else {
            text.push_str(&format!("{id}\tfail\t{}\n", e.reason));
        }
    }
    fs::write(root.join(EXPECTATIONS), text)?;
    Ok(())
}

/// Replaces run-specific details (paths, ports, durations, pids) so that
/// error texts are stable from run to run.
pub(crate) fn normalize(error: &str) -> String {
    let mut out = String::with_capacity(error.len());
    for (i, word) in error.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&normalize_word(word));
    }
    out
}

fn normalize_word(word: &str) -> String {
    if let Some(pos) = word.find("/tmp/") {
        let tail: String = word[pos..]
            .chars()
            .skip_while(|c| !matches!(c, '"' | '\'' | ')' | ',' | ';'))
            .collect();
        return format!(
            "{}<path>{}",
            &word[..pos],
            tail.trim_start_matches(':').to_owned()
        );
    }
    if let Some(pos) = word.find("127.0.0.1:") {
        let rest = &word[pos + 10..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        return format!(
            "{}127.0.0.1:<port>{}",
            &word[..pos],
            normalize_word(&rest[digits..])
        );
    }
    let digits = word.chars().filter(char::is_ascii_digit).count();
    let is_duration = digits > 0
        && (word.ends_with("ms") || word.ends_with('s'))
        && word
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'm' | 's' | 'µ'));
    if is_duration {
        return "<duration>".into();
    }
    word.to_owned()
}

/// Runs `cargo xtask matrix`: every selected cell, the expectations check,
/// target/matrix/report.json and (unfiltered) docs/compatibility.md.
pub fn run_matrix(root: &Path, opts: &Options) -> Result<()> {
    let started = Instant::now();
    let out_dir = root.join("target/matrix");
    let log_dir = out_dir.join("logs");
    let _ = fs::remove_dir_all(&log_dir);
    fs::create_dir_all(&log_dir)?;
    let expectations = read_expectations(root).unwrap_or_default();
    let selected =
        |id: &str| opts.filter.is_empty() || opts.filter.iter().any(|f| id.contains(f.as_str()));
    let (peers, provider) = prepare(root, selected(provider::ROW_ID))?;
    let pki_dir = out_dir.join("pki");
    pki::write_all(&pki_dir, &MANUAL_KEY_TYPES)?;

    let cells: Vec<Cell> = all_cells()
        .into_iter()
        .filter(|c| selected(&c.id()))
        .collect();
    if cells.is_empty() && provider.is_none() {
        bail!("no cell matches the filter {:?}", opts.filter);
    }
    let total = cells.len();
    eprintln!("matrix: {total} cells, {} at a time", opts.jobs);
    let queue = Arc::new(Mutex::new(
        cells.into_iter().enumerate().collect::<Vec<_>>(),
    ));
    let results = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(Mutex::new(0usize));
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            let (queue, results, done) = (queue.clone(), results.clone(), done.clone());
            let (peers, pki_dir, log_dir, expectations) =
                (&peers, &pki_dir, &log_dir, &expectations);
            scope.spawn(move || {
                loop {
                    let Some((index, cell)) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        return;
                    };
                    let outcome = run_cell(&cell, peers, pki_dir, opts.timeout_ms, log_dir);
                    let verdict = verdict(expectations.get(&cell.id()), outcome.ok);
                    if let Ok(mut n) = done.lock() {
                        *n += 1;
                        eprintln!(
                            "[{:>3}/{total}] {:<40} {:<15} {:>8.1} ms{}",
                            *n,
                            cell.id(),
                            verdict,
                            outcome.wall_ms,
                            outcome
                                .error
                                .as_deref()
                                .filter(|_| verdict.starts_with("UNEXPECTED"))
                                .map(|e| format!("\n          {e}"))
                                .unwrap_or_default()
                        );
                        for line in &outcome.stop_races {
                            eprintln!(
                                "          go-plugin stop race, not counted: {}",
                                host_log::without_timestamp(line)
                            );
                        }
                    }
                    if let Ok(mut r) = results.lock() {
                        r.push((index, cell, outcome));
                    }
                }
            });
        }
    });
    let mut results =
        std::mem::take(&mut *results.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    results.sort_by_key(|(i, _, _)| *i);
    let results: Vec<(Cell, Outcome)> = results.into_iter().map(|(_, c, o)| (c, o)).collect();
    let probe = provider.map(|p| {
        let outcome = provider::probe(&p.cli, &p.executable, opts.timeout_ms, &log_dir);
        eprintln!(
            "[probe] {} ({}) {:<15} {:>8.1} ms{}",
            provider::ROW_ID,
            outcome.version,
            if outcome.ok {
                "pass"
            } else {
                "UNEXPECTED-FAIL"
            },
            outcome.wall_ms,
            outcome
                .error
                .as_deref()
                .map(|e| format!("\n          {e}"))
                .unwrap_or_default()
        );
        outcome
    });

    if opts.write_expectations {
        write_expectations(root, &results, &expectations)?;
        eprintln!("matrix: wrote {EXPECTATIONS}; review every new failure's reason");
    }
    let expectations = read_expectations(root).unwrap_or_default();
    let elapsed = started.elapsed();
    let summary = report(root, &results, probe.as_ref(), &expectations, opts, elapsed)?;
    eprintln!(
        "matrix: {} cells{} in {:.0} s: {} pass, {} expected failures, {} unexpected",
        results.len(),
        if probe.is_some() {
            " and the provider probe"
        } else {
            ""
        },
        elapsed.as_secs_f64(),
        summary.pass,
        summary.expected_fail,
        summary.unexpected
    );
    if summary.unexpected > 0 {
        bail!(
            "{} rows differ from {EXPECTATIONS} or failed (see target/matrix/report.json and target/matrix/logs/)",
            summary.unexpected
        );
    }
    Ok(())
}

fn verdict(expectation: Option<&Expectation>, ok: bool) -> &'static str {
    match (expectation.map(|e| e.pass), ok) {
        (Some(true), true) => "pass",
        (Some(false), false) => "expected-fail",
        (Some(false), true) => "UNEXPECTED-PASS",
        (Some(true), false) => "UNEXPECTED-FAIL",
        (None, true) => "UNEXPECTED-NEW-pass",
        (None, false) => "UNEXPECTED-NEW-fail",
    }
}

fn report(
    root: &Path,
    results: &[(Cell, Outcome)],
    probe: Option<&provider::ProbeOutcome>,
    expectations: &BTreeMap<String, Expectation>,
    opts: &Options,
    elapsed: Duration,
) -> Result<MatrixSummary> {
    let mut summary = MatrixSummary::default();
    let mut cells_json = Vec::new();
    for (cell, outcome) in results {
        let expectation = expectations.get(&cell.id());
        let verdict = verdict(expectation, outcome.ok);
        match verdict {
            "pass" => summary.pass += 1,
            "expected-fail" => summary.expected_fail += 1,
            _ => summary.unexpected += 1,
        }
        cells_json.push(MatrixCell {
            id: cell.id(),
            client: cell.client.to_string(),
            server: cell.server.to_string(),
            transport: cell.transport.to_owned(),
            tls: cell.tls.to_string(),
            mux: format!("{:?}", cell.mux).to_lowercase(),
            verdict: verdict.to_owned(),
            expected_pass: expectation.map(|e| e.pass),
            reason: expectation
                .map(|e| e.reason.clone())
                .filter(|r| !r.is_empty()),
            ok: outcome.ok,
            error: outcome.error.clone(),
            wall_ms: outcome.wall_ms,
            host_problems: outcome.host_problems.clone(),
            stop_races: outcome.stop_races.clone(),
            result: outcome.result.clone(),
        });
    }
    let probes: Vec<MatrixProbe> = probe
        .iter()
        .map(|p| {
            if p.ok {
                summary.pass += 1;
            } else {
                summary.unexpected += 1;
            }
            MatrixProbe {
                id: provider::ROW_ID.to_owned(),
                module: provider::MODULE.to_owned(),
                version: p.version.clone(),
                ok: p.ok,
                error: p.error.clone(),
                wall_ms: p.wall_ms,
                host_problems: p.host_problems.clone(),
                report: p.report.clone(),
            }
        })
        .collect();
    let versions = peer_versions(root);
    let report = MatrixReport {
        elapsed_s: crate::units::seconds_tenths(elapsed),
        jobs: opts.jobs,
        filter: opts.filter.clone(),
        versions: versions
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        summary: summary.clone(),
        cells: cells_json,
        probes,
    };
    let out = root.join("target/matrix/report.json");
    report::write(&out, &report)?;
    eprintln!("matrix: wrote {}", out.display());
    if opts.filter.is_empty() {
        let rows: Vec<crate::compat_doc::Row> = results
            .iter()
            .map(|(cell, outcome)| {
                let e = expectations.get(&cell.id());
                crate::compat_doc::Row {
                    id: cell.id(),
                    ok: outcome.ok,
                    expected_pass: e.map(|e| e.pass),
                    reason: e.map(|e| e.reason.clone()).unwrap_or_default(),
                    error: outcome.error.clone(),
                    host_problems: if outcome.result.get("ok").and_then(Value::as_bool)
                        == Some(true)
                    {
                        outcome.host_problems.clone()
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect();
        let probe = probe.map(|p| crate::compat_doc::ProbeRow {
            id: provider::ROW_ID,
            module: provider::MODULE,
            version: p.version.clone(),
            ok: p.ok,
            error: p.error.clone(),
            host_problems: p.host_problems.clone(),
        });
        crate::compat_doc::write(root, &rows, probe.as_ref(), &versions, opts.check)?;
    } else {
        eprintln!("matrix: filtered run; docs/compatibility.md left as it is");
    }
    Ok(summary)
}

/// Versions of the peer libraries, read from their pinned manifests.
fn peer_versions(root: &Path) -> BTreeMap<&'static str, String> {
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap_or_default();
    let go_mod = read("peers/go/go.mod");
    let go_plugin = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("github.com/hashicorp/go-plugin "))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let reqs = read("peers/python/requirements.txt");
    let pyvider = reqs
        .lines()
        .find_map(|l| l.trim().strip_prefix("pyvider-rpcplugin=="))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let grpcio = reqs
        .lines()
        .find_map(|l| l.trim().strip_prefix("grpcio=="))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    BTreeMap::from([
        ("rpcplugin", env!("CARGO_PKG_VERSION").to_owned()),
        ("go-plugin", go_plugin),
        ("pyvider-rpcplugin", pyvider),
        ("grpcio", grpcio),
    ])
}

/// Cell list and ids, for the compatibility document.
pub(crate) fn describe(cell_id: &str) -> Option<(String, String, String, String)> {
    let (pair, rest) = cell_id.split_once(' ')?;
    let (client, server) = pair.split_once("->")?;
    let (transport, tls) = rest.split_once(' ')?;
    Some((client.into(), server.into(), transport.into(), tls.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_ids_are_unique_and_parse_back() {
        let cells = all_cells();
        let ids: std::collections::BTreeSet<String> = cells.iter().map(Cell::id).collect();
        assert_eq!(ids.len(), cells.len());
        for id in &ids {
            assert!(describe(id).is_some(), "{id}");
        }
    }

    #[test]
    fn normalizes_run_specific_text() {
        assert_eq!(
            normalize(
                "cannot connect to /tmp/rpcplugin-abc/plugin123: refused after 15.2s on 127.0.0.1:10000"
            ),
            "cannot connect to <path> refused after <duration> on 127.0.0.1:<port>"
        );
        assert_eq!(normalize("plain words stay"), "plain words stay");
    }
}
