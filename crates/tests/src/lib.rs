//! Names shared by the end-to-end test plugin (`rpcplugin-test-plugin`) and
//! the tests that launch it (`tests/e2e.rs`).
//!
//! The plugin serves the KV service. A few keys are commands instead of
//! data, so a test can make the running plugin do something observable
//! (write to stdout, log, use the broker, change its health, exit).

/// Magic cookie key the test plugin checks.
pub const COOKIE_KEY: &str = "RPCPLUGIN_TEST_COOKIE";
/// Magic cookie value the test plugin checks.
pub const COOKIE_VALUE: &str = "e2e-4b1d6a";

/// Environment variable choosing the plugin's behaviour; see [`mode`].
pub const MODE_ENV: &str = "RPCPLUGIN_TEST_MODE";
/// Environment variable naming a file where the plugin writes its pid and
/// socket directory as soon as it starts (see [`Report`]).
pub const REPORT_ENV: &str = "RPCPLUGIN_TEST_REPORT";
/// Transport knob, as in the `kv-plugin` example: `unix` or `tcp`.
pub const TRANSPORT_ENV: &str = "RPCPLUGIN_KV_TRANSPORT";
/// AutoMTLS key type knob, as in the `kv-plugin` example.
pub const KEY_TYPE_ENV: &str = "RPCPLUGIN_KV_SERVER_KEY_TYPE";
/// Manual TLS: the plugin's certificate (PEM file).
pub const TLS_CERT_ENV: &str = "RPCPLUGIN_KV_TLS_CERT";
/// Manual TLS: the plugin's private key (PEM file).
pub const TLS_KEY_ENV: &str = "RPCPLUGIN_KV_TLS_KEY";
/// Manual TLS: the CA that signed the host's certificate (PEM file).
pub const TLS_CA_ENV: &str = "RPCPLUGIN_KV_TLS_CA";
/// The test plugin's broker timeout in milliseconds (`PluginServer::broker_timeout`).
pub const BROKER_TIMEOUT_ENV: &str = "RPCPLUGIN_TEST_BROKER_TIMEOUT_MS";

pub mod broker_calls;

/// The values of [`MODE_ENV`].
pub mod mode {
    /// Serve KV (the default when the variable is unset).
    pub const NORMAL: &str = "normal";
    /// Serve KV with the health service reporting NOT_SERVING.
    pub const UNHEALTHY: &str = "unhealthy";
    /// Debug mode: serve without a host and print the reattach
    /// configuration as one JSON line on stdout.
    pub const DEBUG: &str = "debug";
    /// Write a line to stderr and exit with status 3 before the handshake.
    pub const EXIT_EARLY: &str = "exit-early";
    /// Print a line that is not a handshake, then hang.
    pub const GARBAGE: &str = "garbage";
    /// Announce core protocol version 2, then hang.
    pub const CORE_VERSION: &str = "core-version";
    /// Announce network `udp`, then hang.
    pub const UNKNOWN_NETWORK: &str = "unknown-network";
    /// Announce protocol `netrpc`, then hang.
    pub const NETRPC: &str = "netrpc";
    /// Announce a certificate field that is not base64, then hang.
    pub const BAD_CERT: &str = "bad-cert";
    /// Serve KV for real, but as if `PLUGIN_CLIENT_CERT` had not been set
    /// (so the handshake carries no certificate).
    pub const IGNORE_CLIENT_CERT: &str = "ignore-client-cert";
    /// Serve KV for real with AutoMTLS although the host did not ask for it
    /// (a `PLUGIN_CLIENT_CERT` of the plugin's own making).
    pub const INJECT_CLIENT_CERT: &str = "inject-client-cert";
    /// Serve KV for real, but trust some other host certificate than the
    /// one in `PLUGIN_CLIENT_CERT`.
    pub const PIN_OTHER_HOST: &str = "pin-other-host";
    /// Serve TLS with one certificate while announcing another in the
    /// handshake.
    pub const WRONG_CERT: &str = "wrong-cert";
    /// Print nothing and hang.
    pub const SILENT: &str = "silent";
    /// Print a 10 MB line on stdout, then hang.
    pub const HUGE_LINE: &str = "huge-line";
    /// Bind a real listener, announce it in a valid handshake line, then
    /// exit with status 4 without serving.
    pub const EXIT_AFTER_HANDSHAKE: &str = "exit-after-handshake";
    /// Print a line to stdout before the handshake (as a stray `println!`
    /// in a plugin's start-up code would), then serve KV normally.
    pub const STDOUT_BEFORE_HANDSHAKE: &str = "stdout-before-handshake";
    /// Announce a certificate field that is valid base64 but not DER, then
    /// hang.
    pub const BAD_DER_CERT: &str = "bad-der-cert";
    /// Serve KV normally, but do not exit when serving ends (after the
    /// host's Shutdown): the host has to kill the process.
    pub const IGNORE_SHUTDOWN: &str = "ignore-shutdown";
    /// Serve KV normally while flooding, from the moment the handshake is
    /// out: the host's stdout pipe (raw), its stderr pipe (raw text and
    /// hclog lines) and both `plugin.GRPCStdio` channels.
    pub const FLOOD: &str = "flood";
    /// Start a grandchild (this executable in [`SILENT`] mode, reporting to
    /// the report path plus [`GRANDCHILD_REPORT_SUFFIX`](crate::GRANDCHILD_REPORT_SUFFIX)) that inherits
    /// stdout and stderr, then serve KV normally.
    pub const GRANDCHILD: &str = "grandchild";
    /// Start a grandchild as [`GRANDCHILD`] does, then exit with status 5
    /// before the handshake, leaving the grandchild holding the pipes.
    pub const GRANDCHILD_EXIT_EARLY: &str = "grandchild-exit-early";
}

/// Appended to [`REPORT_ENV`]'s path for the report of a grandchild
/// started by [`mode::GRANDCHILD`] or [`mode::GRANDCHILD_EXIT_EARLY`].
pub const GRANDCHILD_REPORT_SUFFIX: &str = ".grandchild";

/// KV keys with a side effect. Other keys are stored and read normally.
pub mod keys {
    /// Put: the value is written to the plugin's stdout (after the handshake,
    /// so it travels through `plugin.GRPCStdio`).
    pub const STDOUT: &str = "stdout";
    /// Put: the value is written to the plugin's stderr.
    pub const STDERR: &str = "stderr";
    /// Put: the value is logged with `tracing::info!`.
    pub const LOG_INFO: &str = "log:info";
    /// Put: the value is logged with `tracing::warn!`.
    pub const LOG_WARN: &str = "log:warn";
    /// Put: the value is logged with `tracing::error!`.
    pub const LOG_ERROR: &str = "log:error";
    /// Put: logs a 10 MB message at info level, then the value at warn level.
    pub const LOG_HUGE: &str = "log:huge";
    /// Put: value `serving` or `not-serving` sets the `plugin` health status.
    pub const HEALTH: &str = "health";
    /// Put: the plugin exits at once with the status given as the value.
    pub const EXIT: &str = "exit";
    /// Put with key `broker:<id>`: the plugin dials the host's brokered
    /// server `<id>` (a KV server) and puts [`FROM_PLUGIN`] = the value there.
    pub const BROKER_DIAL_PREFIX: &str = "broker:";
    /// The key the plugin writes into the host's brokered KV server.
    pub const FROM_PLUGIN: &str = "from-plugin";
    /// Get: the plugin starts a brokered KV server holding
    /// [`BROKERED_GREETING`] and answers with its broker id (decimal).
    pub const SERVE_BROKER: &str = "serve-broker";
    /// The key a plugin-side brokered KV server holds.
    pub const BROKERED_GREETING: &str = "greeting";
    /// The value under [`BROKERED_GREETING`].
    pub const BROKERED_GREETING_VALUE: &str = "hello from the plugin's brokered server";
    /// Get: the plugin's process id (decimal).
    pub const PID: &str = "pid";
    /// Put: the plugin aborts at once (SIGABRT), in the middle of the call.
    pub const ABORT: &str = "abort";
    /// Put: the call never returns (the plugin stays up otherwise).
    pub const HANG: &str = "hang";
    /// Put: the plugin dies of an allocation failure, as Rust reports it:
    /// `memory allocation of N bytes failed` on fd 2, then SIGABRT.
    pub const ALLOC_FAILURE: &str = "alloc-failure";
    /// Put: the handler panics with the value as its message (the plugin
    /// keeps serving; the call fails).
    pub const PANIC: &str = "panic";
}

/// What the plugin reports about itself when it starts, so a test can check
/// afterwards that the process and its socket directory are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The plugin's process id.
    pub pid: u32,
    /// `PLUGIN_UNIX_SOCKET_DIR` as the plugin saw it (empty when unset).
    pub socket_dir: String,
}

impl Report {
    /// The file format: `pid` and `socket_dir`, one per line.
    pub fn to_text(&self) -> String {
        format!("{}\n{}\n", self.pid, self.socket_dir)
    }

    /// Reads what [`Report::to_text`] wrote.
    ///
    /// ```
    /// use rpcplugin_tests::Report;
    /// let report = Report { pid: 42, socket_dir: "/tmp/rpcplugin-x".into() };
    /// assert_eq!(Report::parse(&report.to_text()), Some(report));
    /// ```
    pub fn parse(text: &str) -> Option<Report> {
        let mut lines = text.lines();
        let pid = lines.next()?.trim().parse().ok()?;
        let socket_dir = lines.next().unwrap_or_default().to_owned();
        Some(Report { pid, socket_dir })
    }
}

/// `(pid, state, ppid)` of every process in `/proc` (state is the one-letter
/// code, `Z` for a zombie). Shared by the test suites' leak checks.
pub fn processes() -> Vec<(u32, String, u32)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the command name (which may hold spaces): state, ppid.
        let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let mut fields = after_comm.split_whitespace();
        let state = fields.next().unwrap_or("").to_owned();
        let ppid = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        found.push((pid, state, ppid));
    }
    found
}

/// The log setup of the matrix's Rust test hosts (`rpcplugin-broker-host`,
/// `rpcplugin-mux-host`): `RUST_LOG` or info, to stderr, no colour (the
/// matrix reads their stderr for warnings and errors).
pub fn init_host_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
