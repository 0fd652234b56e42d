//! [`ClientBuilder`]: what a host sets before launching a plugin, and the
//! start sequence (spawn, handshake, connect, health).

use super::relay::Sink;
use super::runner::Runner;
use crate::channel::ChannelSettings;
use rpcplugin_certs::{Identity, KeyType, PeerTrust};
use rpcplugin_handshake::MagicCookie;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod options;
mod spawn;
mod start;

/// How the host secures the connection to the plugin.
#[derive(Debug)]
pub enum ClientTls {
    /// go-plugin AutoMTLS: a fresh certificate of this key type is handed to
    /// the plugin in `PLUGIN_CLIENT_CERT`, and the plugin's certificate from
    /// the handshake is the only one accepted. The default, with P-256.
    Auto(KeyType),
    /// Certificates distributed out of band: present `identity`, verify the
    /// plugin with `server_trust`.
    Manual {
        /// The host's certificate and key.
        identity: Identity,
        /// How to verify the plugin's certificate.
        server_trust: PeerTrust,
    },
    /// Plaintext HTTP/2 (what go-plugin hosts do with AutoMTLS off).
    Disabled,
}

impl Default for ClientTls {
    fn default() -> Self {
        ClientTls::Auto(KeyType::default())
    }
}

type CommandHook = Box<dyn FnOnce(&mut std::process::Command) + Send>;

/// Configures and launches a plugin. Get one from [`Client::builder`](crate::Client::builder).
pub struct ClientBuilder {
    command: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    skip_host_env: bool,
    current_dir: Option<PathBuf>,
    hook: Option<CommandHook>,
    cookie: Option<MagicCookie>,
    versions: Vec<u32>,
    tls: ClientTls,
    start_timeout: Duration,
    connect_timeout: Duration,
    shutdown_timeout: Duration,
    kill_grace: Duration,
    health_check: bool,
    stdout: Option<Sink>,
    stderr: Option<Sink>,
    raw_stderr: Option<Sink>,
    log_name: Option<String>,
    socket_group: Option<String>,
    socket_base: Option<PathBuf>,
    ports: (u16, u16),
    checksum: Option<Vec<u8>>,
    channel: ChannelSettings,
    broker_timeout: Option<Duration>,
    multiplex: bool,
    runner: Option<Runner>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("versions", &self.versions)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

fn sink(w: impl Write + Send + 'static) -> Sink {
    Arc::new(Mutex::new(Box::new(w)))
}

impl ClientBuilder {
    pub(super) fn new(command: impl AsRef<Path>) -> ClientBuilder {
        ClientBuilder {
            command: command.as_ref().to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            skip_host_env: false,
            current_dir: None,
            hook: None,
            cookie: None,
            versions: vec![1],
            tls: ClientTls::default(),
            start_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(1),
            kill_grace: Duration::from_secs(2),
            health_check: true,
            stdout: None,
            stderr: None,
            raw_stderr: None,
            log_name: None,
            socket_group: None,
            socket_base: None,
            ports: (10000, 25000),
            checksum: None,
            channel: ChannelSettings::default(),
            broker_timeout: None,
            multiplex: false,
            runner: None,
        }
    }

    /// Adds an argument for the plugin process.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Sets an environment variable for the plugin. As in go-plugin, a
    /// variable of the host's own environment with the same name wins over
    /// it (unless [`ClientBuilder::skip_host_env`]), and the go-plugin
    /// variables win over both.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Does not pass the host's environment to the plugin.
    pub fn skip_host_env(mut self, skip: bool) -> Self {
        self.skip_host_env = skip;
        self
    }

    /// The plugin's working directory (default: the host's).
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.current_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Adjusts the plugin's [`std::process::Command`] right before it is
    /// spawned, after everything else was set (go-plugin takes a whole
    /// `exec.Cmd`). What the protocol needs (stdio pipes, the go-plugin
    /// variables) is set again after the hook would break it.
    ///
    /// ```
    /// let builder = rpcplugin_runtime::Client::builder("./plugin")
    ///     .configure(|cmd| { cmd.env("RUST_BACKTRACE", "1"); });
    /// ```
    pub fn configure(
        mut self,
        hook: impl FnOnce(&mut std::process::Command) + Send + 'static,
    ) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// The magic cookie the plugin checks.
    pub fn cookie(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.cookie = Some(MagicCookie::new(key, value));
        self
    }

    /// The app protocol versions this host speaks (default `[1]`).
    pub fn versions(mut self, versions: impl IntoIterator<Item = u32>) -> Self {
        self.versions = versions.into_iter().collect();
        self.versions.sort_unstable();
        self.versions.dedup();
        self
    }

    /// TLS mode (default AutoMTLS with a P-256 certificate).
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = tls;
        self
    }

    /// How long to wait for the handshake line (default 60 s, as go-plugin).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// How long dialling and the TLS handshake may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long [`Client::kill`](crate::Client::kill) waits for the Shutdown call (default 1 s)
    /// and then for the process to exit (default 2 s) before SIGKILL.
    pub fn kill_timeouts(mut self, shutdown_call: Duration, exit_grace: Duration) -> Self {
        self.shutdown_timeout = shutdown_call;
        self.kill_grace = exit_grace;
        self
    }

    /// Whether `start` checks the plugin's health service (default true),
    /// which also surfaces a refused client certificate at start.
    pub fn health_check(mut self, check: bool) -> Self {
        self.health_check = check;
        self
    }

    /// Receives what the plugin sends as stdout through `plugin.GRPCStdio`
    /// (go-plugin's `SyncStdout`). Without a sink it is discarded.
    pub fn stdout(mut self, sink: impl Write + Send + 'static) -> Self {
        self.stdout = Some(self::sink(sink));
        self
    }

    /// Receives what the plugin sends as stderr through `plugin.GRPCStdio`
    /// (go-plugin's `SyncStderr`: a Go plugin's writes to `os.Stderr`).
    /// Without a sink it is discarded. A Rust plugin's own stderr is not
    /// sent this way: it stays the process's stderr, which the host logs
    /// (see [`ClientBuilder::raw_stderr`]).
    pub fn stderr(mut self, sink: impl Write + Send + 'static) -> Self {
        self.stderr = Some(self::sink(sink));
        self
    }

    /// Also receives a raw copy of everything the plugin process writes to
    /// its stderr (go-plugin's `Stderr`), beside the log relay that turns
    /// each line into a `tracing` event.
    pub fn raw_stderr(mut self, sink: impl Write + Send + 'static) -> Self {
        self.raw_stderr = Some(self::sink(sink));
        self
    }

    /// The name the plugin's log lines and exit notices carry (default: the
    /// executable's file name).
    pub fn log_name(mut self, name: impl Into<String>) -> Self {
        self.log_name = Some(name.into());
        self
    }

    /// Group allowed to use the plugin's sockets (`PLUGIN_UNIX_SOCKET_GROUP`).
    pub fn socket_group(mut self, group: impl Into<String>) -> Self {
        self.socket_group = Some(group.into());
        self
    }

    /// Where the private directory for the plugin's socket (and this host's
    /// brokered sockets) is created (default: the OS temp directory;
    /// go-plugin's `UnixSocketConfig.TempDir`). Short paths matter: a unix
    /// socket path is limited to about 100 bytes.
    pub fn socket_dir(mut self, base: impl AsRef<Path>) -> Self {
        self.socket_base = Some(base.as_ref().to_path_buf());
        self
    }

    /// Port range for plugins that listen on TCP (default 10000-25000).
    pub fn port_range(mut self, min: u16, max: u16) -> Self {
        self.ports = (min, max);
        self
    }

    /// Refuses to run the executable unless its SHA-256 is `sha256`
    /// (go-plugin's `SecureConfig`). The command is resolved once with the
    /// plugin's `PATH`, and the file that was hashed is the one executed
    /// (on Linux through its open descriptor).
    pub fn checksum_sha256(mut self, sha256: impl Into<Vec<u8>>) -> Self {
        self.checksum = Some(sha256.into());
        self
    }
}
