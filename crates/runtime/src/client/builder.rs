//! [`ClientBuilder`]: what a host sets before launching a plugin, and the
//! start sequence (spawn, handshake, connect, health).

use super::connect::{self, Offer};
use super::exit::{ExitWatch, WatchLabel};
use super::launch::{self, Program};
use super::relay::{self, Sink, Tail};
use super::runner::Runner;
use super::{Client, Launched};
use crate::channel::ChannelSettings;
use crate::error::Error;
use crate::shutdown::Shutdown;
use rpcplugin_certs::{Identity, KeyType, PeerTrust};
use rpcplugin_handshake::{HandshakeLine, MagicCookie, ParseOptions};
use rpcplugin_transport::ListenConfig;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::BufReader;
use tracing::Instrument;

mod options;
mod spawn;

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

/// Configures and launches a plugin. Get one from [`Client::builder`].
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

    /// How long [`Client::kill`] waits for the Shutdown call (default 1 s)
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

    /// Launches the plugin and connects to it.
    pub async fn start(self) -> Result<Client, Error> {
        let name = self.log_name.clone().unwrap_or_else(|| {
            self.command
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "plugin".into())
        });
        let span = tracing::debug_span!("plugin_start", plugin = %name);
        self.start_named(name).instrument(span).await
    }

    async fn start_named(mut self, name: String) -> Result<Client, Error> {
        let started = Instant::now();
        let cookie = self.cookie.clone().ok_or_else(|| {
            Error::Config("the host has no magic cookie: call .cookie(key, value)".into())
        })?;
        if self.versions.is_empty() {
            return Err(Error::Config("the host offers no protocol version".into()));
        }
        if self.runner.is_some() && self.checksum.is_some() {
            return Err(Error::Config(
                "a runner executes the plugin itself, so its checksum cannot be enforced: \
                 use either runner or checksum_sha256"
                    .into(),
            ));
        }
        let program = match &self.checksum {
            Some(expected) => {
                let path = launch::child_path(&self.env, self.skip_host_env);
                Program::verified(&self.command, path.as_deref(), expected)?
            }
            None => Program::unchecked(&self.command),
        };
        // One span per start step (keygen, spawn, handshake, connect,
        // health_check), so a subscriber can time the real launch path.
        let identity = match &self.tls {
            ClientTls::Auto(key_type) => {
                let _step = tracing::debug_span!("keygen").entered();
                Some(Identity::generate(*key_type)?)
            }
            _ => None,
        };
        let socket_dir = match &self.socket_base {
            Some(base) => rpcplugin_transport::private_dir_in(base, self.socket_group.as_deref())?,
            None => rpcplugin_transport::private_dir(self.socket_group.as_deref())?,
        };
        let shutdown = Shutdown::new();
        let mut child = {
            let _step = tracing::debug_span!("spawn").entered();
            self.spawn(&program, &cookie, identity.as_ref(), socket_dir.path())?
        };
        drop(program);
        let pid = child.id();
        tracing::debug!(
            pid,
            runner = self.runner.as_ref().map(Runner::name),
            "spawned"
        );
        let tail = Tail::default();
        let mut tasks = Vec::new();
        let stderr_task = child.stderr.take().map(|stderr| {
            tokio::spawn(relay::relay_stderr(
                stderr,
                name.clone(),
                tail.clone(),
                self.raw_stderr.clone(),
            ))
        });
        let stdout = child.stdout.take();
        let watch = ExitWatch::child(
            child,
            WatchLabel {
                plugin: name.clone(),
                tail: tail.clone(),
            },
        );
        let Some(stdout) = stdout else {
            watch.kill(super::exit::KILL_BOUND).await;
            return Err(Error::io("reading the plugin's stdout")(
                std::io::Error::other("no stdout pipe"),
            ));
        };
        let mut stdout = BufReader::new(stdout);
        let (line, stderr_task) =
            launch::read_handshake(&watch, &mut stdout, self.start_timeout, &tail, stderr_task)
                .instrument(tracing::debug_span!("handshake"))
                .await?;
        tasks.extend(stderr_task);
        tasks.push(tokio::spawn(relay::drain(stdout)));
        tracing::debug!(line = %abbreviate(line.trim_end()), "handshake received");

        let socket_dir_path = socket_dir.path().to_path_buf();
        let launched = Launched {
            watch,
            _socket_dir: socket_dir,
        };
        let parse = ParseOptions::new().multiplex_requested(self.multiplex);
        let hs = match HandshakeLine::parse_with(line.as_bytes(), parse) {
            Ok(hs) => hs,
            Err(source) => {
                let err = Error::InvalidHandshake {
                    source,
                    stderr_tail: tail.text(),
                };
                return Err(launched.fail(tasks, err).await);
            }
        };
        let offer = Offer {
            versions: &self.versions,
            tls: &self.tls,
            identity,
            connect_timeout: self.connect_timeout,
            listen: ListenConfig {
                socket_group: self.socket_group.clone(),
                socket_dir: Some(socket_dir_path.clone()),
                ..ListenConfig::default()
            },
            multiplex: self.multiplex,
            runner: self.runner.clone().map(|runner| (runner, pid)),
        };
        let connected = match connect::connect(hs, offer, shutdown.clone())
            .instrument(tracing::debug_span!("connect"))
            .await
        {
            Ok(connected) => connected,
            Err(err) => return Err(launched.fail(tasks, err).await),
        };
        tracing::debug!(addr = %connected.addr, version = connected.handshake.app_version, "connected");
        let client = Client::assemble(
            connected,
            (launched.watch, Some(launched._socket_dir)),
            tail,
            tasks,
            shutdown,
            super::Stops {
                shutdown_timeout: self.shutdown_timeout,
                kill_grace: self.kill_grace,
                keep_running: false,
            },
            (self.stdout.take(), self.stderr.take()),
        );
        let mut client = client;
        if let Some(timeout) = self.broker_timeout {
            client.broker.set_timeout(timeout);
        }
        client.channel = self.channel.apply(&client.channel);
        if self.health_check
            && let Err(err) = client
                .ping_with_timeout(self.connect_timeout)
                .instrument(tracing::debug_span!("health_check"))
                .await
        {
            if matches!(err, Error::Unhealthy(_)) {
                // It answers: it can take the Shutdown call and exit.
                let _ = client.kill().await;
            } else {
                // Unreachable (e.g. it refused our certificate): a Shutdown
                // call cannot arrive, so waiting for a graceful exit only
                // delays the error.
                client.abort().await;
            }
            return Err(err);
        }
        tracing::debug!(elapsed = ?started.elapsed(), "plugin started");
        Ok(client)
    }
}

/// The handshake line for a debug log: the certificate field shortened.
fn abbreviate(line: &str) -> String {
    let mut fields: Vec<String> = line.split('|').map(str::to_owned).collect();
    if let Some(cert) = fields.get_mut(5)
        && cert.len() > 24
    {
        *cert = format!(
            "{}…({} chars)",
            cert.get(..16).unwrap_or_default(),
            cert.len()
        );
    }
    fields.join("|")
}
