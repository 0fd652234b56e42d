//! The host side: launch a plugin, read its handshake, connect with pinned
//! TLS, relay its logs and stdio, and stop it without leaving anything behind.

use crate::broker::{Broker, BrokerTls};
use crate::conn::{self, MAX_MESSAGE_SIZE, TlsInfo, TlsInfoSlot};
use crate::error::Error;
use crate::logging;
use crate::proto::health::HealthCheckRequest;
use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::health_client::HealthClient;
use crate::proto::plugin::grpc_broker_client::GrpcBrokerClient;
use crate::proto::plugin::grpc_controller_client::GrpcControllerClient;
use crate::proto::plugin::grpc_stdio_client::GrpcStdioClient;
use crate::proto::plugin::stdio_data::Channel as StdioChannel;
use crate::reattach::ReattachConfig;
use crate::services::PLUGIN_HEALTH_SERVICE;
use crate::shutdown::Shutdown;
use rpcplugin_certs::{Identity, KeyType, PeerTrust};
use rpcplugin_handshake::{self as handshake, HandshakeLine, MagicCookie, Protocol, env};
use rpcplugin_transport::{Addr, ListenConfig};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

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

type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// Configures and launches a plugin. Get one from [`Client::builder`].
pub struct ClientBuilder {
    command: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    skip_host_env: bool,
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
    socket_group: Option<String>,
    ports: (u16, u16),
    checksum: Option<Vec<u8>>,
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

/// Where the last stderr lines of a plugin are kept for error messages.
#[derive(Clone, Default)]
struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    const LINES: usize = 20;
    const LINE_BYTES: usize = 512;

    fn push(&self, line: &str) {
        if let Ok(mut lines) = self.0.lock() {
            let mut line = line.trim_end().to_owned();
            if line.len() > Self::LINE_BYTES {
                let mut cut = Self::LINE_BYTES;
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line.truncate(cut);
                line.push('…');
            }
            if lines.len() == Self::LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    fn text(&self) -> String {
        self.0
            .lock()
            .map(|lines| lines.iter().map(|l| format!("  {l}\n")).collect())
            .unwrap_or_default()
    }
}

impl ClientBuilder {
    fn new(command: impl AsRef<Path>) -> ClientBuilder {
        ClientBuilder {
            command: command.as_ref().to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            skip_host_env: false,
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
            socket_group: None,
            ports: (10000, 25000),
            checksum: None,
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

    /// Receives what the plugin writes to its stdout after the handshake.
    pub fn stdout(mut self, sink: impl Write + Send + 'static) -> Self {
        self.stdout = Some(Arc::new(Mutex::new(Box::new(sink))));
        self
    }

    /// Receives what the plugin writes to its (redirected) stderr.
    pub fn stderr(mut self, sink: impl Write + Send + 'static) -> Self {
        self.stderr = Some(Arc::new(Mutex::new(Box::new(sink))));
        self
    }

    /// Group allowed to use the plugin's sockets (`PLUGIN_UNIX_SOCKET_GROUP`).
    pub fn socket_group(mut self, group: impl Into<String>) -> Self {
        self.socket_group = Some(group.into());
        self
    }

    /// Port range for plugins that listen on TCP (default 10000-25000).
    pub fn port_range(mut self, min: u16, max: u16) -> Self {
        self.ports = (min, max);
        self
    }

    /// Refuses to run the executable unless its SHA-256 is `sha256`
    /// (go-plugin's `SecureConfig`).
    pub fn checksum_sha256(mut self, sha256: impl Into<Vec<u8>>) -> Self {
        self.checksum = Some(sha256.into());
        self
    }

    /// Launches the plugin and connects to it.
    pub async fn start(self) -> Result<Client, Error> {
        let started = Instant::now();
        let cookie = self.cookie.clone().ok_or_else(|| {
            Error::Config("the host has no magic cookie: call .cookie(key, value)".into())
        })?;
        if self.versions.is_empty() {
            return Err(Error::Config("the host offers no protocol version".into()));
        }
        if let Some(expected) = &self.checksum {
            verify_checksum(&self.command, expected)?;
        }
        let identity = match &self.tls {
            ClientTls::Auto(key_type) => Some(Identity::generate(*key_type)?),
            _ => None,
        };
        let socket_dir = rpcplugin_transport::private_dir(self.socket_group.as_deref())?;
        let shutdown = Shutdown::new();
        let mut child = self.spawn(&cookie, identity.as_ref(), socket_dir.path())?;
        // Its process group, still needed after the child has been reaped.
        let leader = child.id();
        let name = self
            .command
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into());
        let tail = Tail::default();
        let mut tasks = Vec::new();
        let stderr_task = child
            .stderr
            .take()
            .map(|stderr| tokio::spawn(relay_stderr(stderr, name.clone(), tail.clone())));
        let Some(stdout) = child.stdout.take() else {
            return Err(Error::io("reading the plugin's stdout")(
                std::io::Error::other("no stdout pipe"),
            ));
        };
        let mut stdout = BufReader::new(stdout);
        let line = read_handshake(
            &mut child,
            leader,
            &mut stdout,
            self.start_timeout,
            &tail,
            stderr_task,
        )
        .await;
        let mut partial = Partial {
            child: Some(child),
            leader,
            kill_grace: self.kill_grace,
        };
        let line = match line {
            Ok((line, stderr_task)) => {
                tasks.extend(stderr_task);
                line
            }
            Err(err) => {
                partial.abort().await;
                return Err(err);
            }
        };
        tasks.push(tokio::spawn(drain(stdout)));
        tracing::debug!(plugin = %name, line = %line.trim_end(), "handshake received");

        let connected = self.connect(&line, identity, shutdown.clone(), &tail).await;
        let Connected {
            handshake,
            addr,
            channel,
            broker,
            tls_info,
        } = match connected {
            Ok(c) => c,
            Err(err) => {
                tasks.iter().for_each(JoinHandle::abort);
                partial.abort().await;
                return Err(err);
            }
        };
        tasks.push(tokio::spawn(run_broker_stream(
            channel.clone(),
            broker.clone(),
        )));
        tasks.push(tokio::spawn(run_stdio_stream(
            channel.clone(),
            self.stdout.clone(),
            self.stderr.clone(),
            shutdown.clone(),
        )));
        let client = Client {
            child: partial.child.take(),
            pid: None,
            addr,
            version: handshake.app_version,
            channel,
            broker,
            tls_info,
            tail,
            tasks,
            _socket_dir: Some(socket_dir),
            shutdown,
            shutdown_timeout: self.shutdown_timeout,
            kill_grace: self.kill_grace,
            test_reattach: false,
            handshake: Some(handshake),
        };
        if self.health_check
            && let Err(err) = client.ping_with_timeout(self.connect_timeout).await
        {
            let mut client = client;
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
        tracing::debug!(plugin = %name, elapsed = ?started.elapsed(), "plugin started");
        Ok(client)
    }

    fn spawn(
        &self,
        cookie: &MagicCookie,
        identity: Option<&Identity>,
        socket_dir: &Path,
    ) -> Result<Child, Error> {
        let mut cmd = Command::new(&self.command);
        cmd.args(&self.args)
            .env_clear()
            .stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // go-plugin's precedence: caller's vars, then the host's environment,
        // then the protocol's own variables.
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if !self.skip_host_env {
            cmd.envs(std::env::vars_os());
        }
        cmd.env(&cookie.key, &cookie.value)
            .env(env::PLUGIN_MIN_PORT, self.ports.0.to_string())
            .env(env::PLUGIN_MAX_PORT, self.ports.1.to_string())
            .env(
                env::PLUGIN_PROTOCOL_VERSIONS,
                handshake::format_protocol_versions(&self.versions),
            )
            .env(env::PLUGIN_UNIX_SOCKET_DIR, socket_dir)
            .env_remove(env::PLUGIN_MULTIPLEX_GRPC);
        match identity {
            Some(identity) => cmd.env(env::PLUGIN_CLIENT_CERT, identity.cert_pem()),
            None => cmd.env_remove(env::PLUGIN_CLIENT_CERT),
        };
        match &self.socket_group {
            Some(group) => cmd.env(env::PLUGIN_UNIX_SOCKET_GROUP, group),
            None => cmd.env_remove(env::PLUGIN_UNIX_SOCKET_GROUP),
        };
        crate::process::die_with_parent(&mut cmd);
        crate::process::own_process_group(&mut cmd);
        cmd.spawn().map_err(|source| Error::Spawn {
            command: self.command.clone(),
            source,
        })
    }

    async fn connect(
        &self,
        line: &str,
        identity: Option<Identity>,
        shutdown: Shutdown,
        tail: &Tail,
    ) -> Result<Connected, Error> {
        let hs =
            HandshakeLine::parse(line.as_bytes()).map_err(|source| Error::InvalidHandshake {
                source,
                stderr_tail: tail.text(),
            })?;
        if hs.core_version != handshake::CORE_PROTOCOL_VERSION {
            return Err(Error::IncompatibleCoreVersion {
                plugin: hs.core_version,
                host: handshake::CORE_PROTOCOL_VERSION,
            });
        }
        if !self.versions.contains(&hs.app_version) {
            return Err(Error::IncompatibleVersion {
                plugin: hs.app_version,
                host: self.versions.clone(),
            });
        }
        if hs.protocol != Protocol::Grpc {
            return Err(Error::UnsupportedProtocol {
                protocol: hs.protocol.to_string(),
            });
        }
        let addr = Addr::parse(hs.network, &hs.address)?;
        let tls = match (&self.tls, identity, hs.server_cert.clone()) {
            (ClientTls::Auto(_), Some(identity), Some(cert)) => {
                let pinned = PeerTrust::Pinned(cert.into());
                Some(BrokerTls {
                    client: rpcplugin_certs::client_config(Some(&identity), pinned.clone())?,
                    server: rpcplugin_certs::server_config(&identity, pinned)?,
                })
            }
            (ClientTls::Auto(_), _, None) => return Err(Error::MissingServerCert),
            (
                ClientTls::Manual {
                    identity,
                    server_trust,
                },
                _,
                _,
            ) => Some(BrokerTls {
                client: rpcplugin_certs::client_config(Some(identity), server_trust.clone())?,
                server: rpcplugin_certs::server_config(identity, server_trust.clone())?,
            }),
            (ClientTls::Disabled, _, Some(_)) => return Err(Error::UnexpectedServerCert),
            _ => None,
        };
        let info = TlsInfoSlot::default();
        let channel = conn::connect(
            addr.clone(),
            tls.as_ref().map(|t| t.client.clone()),
            info.clone(),
            self.connect_timeout,
        )
        .await?;
        let tls_info = info.lock().ok().and_then(|i| i.clone());
        let listen = ListenConfig {
            socket_group: self.socket_group.clone(),
            ..ListenConfig::default()
        };
        let broker = Broker::new(tls, listen, shutdown);
        Ok(Connected {
            handshake: hs,
            addr,
            channel,
            broker,
            tls_info,
        })
    }
}

/// What `connect` set up.
struct Connected {
    handshake: HandshakeLine,
    addr: Addr,
    channel: Channel,
    broker: Broker,
    tls_info: Option<TlsInfo>,
}

/// A child that has not become a [`Client`] yet; killed on failure.
struct Partial {
    child: Option<Child>,
    leader: Option<u32>,
    kill_grace: Duration,
}

impl Partial {
    async fn abort(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::process::kill_group(self.leader);
            let _ = child.start_kill();
            let _ = tokio::time::timeout(self.kill_grace, child.wait()).await;
        }
    }
}

fn verify_checksum(path: &Path, expected: &[u8]) -> Result<(), Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Spawn {
        command: path.to_path_buf(),
        source,
    })?;
    let actual = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    // Not secret, but compare in constant time as go-plugin does.
    if aws_lc_rs::constant_time::verify_slices_are_equal(actual.as_ref(), expected).is_err() {
        return Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: hex(expected),
            actual: hex(actual.as_ref()),
        });
    }
    Ok(())
}

/// Reads the first stdout line within `timeout`, watching for an early exit.
async fn read_handshake<R: AsyncRead + Unpin>(
    child: &mut Child,
    leader: Option<u32>,
    stdout: &mut BufReader<R>,
    timeout: Duration,
    tail: &Tail,
    stderr_task: Option<JoinHandle<()>>,
) -> Result<(String, Option<JoinHandle<()>>), Error> {
    // The limit excludes the line terminator, which may be "\r\n".
    let limit = handshake::MAX_LINE_LEN as u64 + 2;
    let mut buf = Vec::new();
    let outcome = {
        let read = async {
            let mut limited = (&mut *stdout).take(limit);
            limited.read_until(b'\n', &mut buf).await
        };
        tokio::pin!(read);
        tokio::select! {
            read = &mut read => Some(read),
            () = tokio::time::sleep(timeout) => None,
            _ = child.wait() => {
                // Exited. What it wrote is in the pipe already; do not wait
                // for EOF, which never comes while a grandchild holds the
                // pipe open.
                match tokio::time::timeout(Duration::from_millis(100), &mut read).await {
                    Ok(read) => Some(read),
                    Err(_) => Some(Ok(0)),
                }
            }
        }
    };
    // The relay ends at EOF, which a grandchild holding the pipe delays.
    let finish_stderr = |task: Option<JoinHandle<()>>| async move {
        if let Some(mut task) = task
            && tokio::time::timeout(Duration::from_millis(500), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    };
    match outcome {
        None => {
            crate::process::kill_group(leader);
            let _ = child.start_kill();
            finish_stderr(stderr_task).await;
            Err(Error::StartTimeout {
                timeout,
                stderr_tail: tail.text(),
            })
        }
        Some(Ok(n)) if n > 0 && buf.ends_with(b"\n") => {
            Ok((String::from_utf8_lossy(&buf).into_owned(), stderr_task))
        }
        Some(Ok(n)) if n as u64 >= limit => {
            crate::process::kill_group(leader);
            let _ = child.start_kill();
            finish_stderr(stderr_task).await;
            Err(match HandshakeLine::parse(&buf) {
                Err(source) => Error::InvalidHandshake {
                    source,
                    stderr_tail: tail.text(),
                },
                Ok(_) => Error::Config("handshake line over the length limit".into()),
            })
        }
        Some(Ok(_)) | Some(Err(_)) => {
            // EOF: the plugin exited, or closed stdout without a line.
            let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
            // What it started goes too, so the stderr relay sees EOF.
            crate::process::kill_group(leader);
            finish_stderr(stderr_task).await;
            let stderr_tail = tail.text();
            let status = match status {
                Ok(Ok(status)) => describe(status),
                _ => "closed its stdout without a handshake line".into(),
            };
            if !buf.is_empty() {
                // A last line without '\n' before exit: judge it as a handshake.
                return Err(match HandshakeLine::parse(&buf) {
                    Ok(_) => Error::PluginExited {
                        status,
                        stderr_tail,
                    },
                    Err(source) => Error::InvalidHandshake {
                        source,
                        stderr_tail,
                    },
                });
            }
            let lower = stderr_tail.to_ascii_lowercase();
            if lower.contains("magic cookie") || lower.contains("is a plugin") {
                return Err(Error::CookieRejected { stderr_tail });
            }
            Err(Error::PluginExited {
                status,
                stderr_tail,
            })
        }
    }
}

fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    status.to_string()
}

/// Reads the plugin's stderr as log lines, however long they are.
async fn relay_stderr<R: AsyncRead + Unpin>(stderr: R, plugin: String, tail: Tail) {
    /// Lines longer than this are logged in pieces instead of buffered whole.
    const MAX_LOG_LINE: u64 = 1 << 20;
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    let mut in_panic = false;
    loop {
        buf.clear();
        match (&mut reader)
            .take(MAX_LOG_LINE)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                tail.push(&text);
                let line = logging::parse_stderr_line(&text, in_panic);
                in_panic |= line.starts_panic;
                logging::emit(&plugin, &line);
            }
        }
    }
}

/// Keeps the plugin's stdout pipe empty after the handshake.
async fn drain<R: AsyncRead + Unpin>(mut stdout: R) {
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = stdout.read(&mut buf).await {
        if n == 0 {
            return;
        }
        tracing::trace!(bytes = n, "discarded plugin stdout after the handshake");
    }
}

async fn run_broker_stream(channel: Channel, broker: Broker) {
    let Some(outgoing) = broker.take_outgoing() else {
        return;
    };
    let mut client = GrpcBrokerClient::new(channel).max_decoding_message_size(MAX_MESSAGE_SIZE);
    let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(outgoing);
    match client.start_stream(stream).await {
        Ok(response) => broker.pump(response.into_inner()).await,
        Err(status) => tracing::debug!(%status, "plugin broker stream unavailable"),
    }
}

async fn run_stdio_stream(
    channel: Channel,
    stdout: Option<Sink>,
    stderr: Option<Sink>,
    shutdown: Shutdown,
) {
    let mut client = GrpcStdioClient::new(channel).max_decoding_message_size(MAX_MESSAGE_SIZE);
    let mut stream = match client.stream_stdio(()).await {
        Ok(response) => response.into_inner(),
        Err(status) if shutdown.is_triggered() => {
            tracing::debug!(%status, "stdio stream not opened before shutdown");
            return;
        }
        Err(status) => {
            tracing::warn!(%status, "plugin stdio syncing unavailable");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            msg = stream.message() => msg,
            () = shutdown.wait() => return,
        };
        let Ok(Some(data)) = msg else { return };
        let sink = match StdioChannel::try_from(data.channel) {
            Ok(StdioChannel::Stdout) => &stdout,
            Ok(StdioChannel::Stderr) => &stderr,
            _ => {
                tracing::warn!(channel = data.channel, "unknown stdio channel from plugin");
                continue;
            }
        };
        if let Some(sink) = sink
            && let Ok(mut sink) = sink.lock()
        {
            let _ = sink.write_all(&data.data).and_then(|()| sink.flush());
        }
    }
}

/// A running plugin and the gRPC channel to it.
///
/// ```no_run
/// # async fn demo() -> Result<(), rpcplugin_runtime::Error> {
/// use rpcplugin_runtime::Client;
/// let mut client = Client::builder("./kv-plugin")
///     .cookie("BASIC_PLUGIN", "hello")
///     .versions([1])
///     .start()
///     .await?;
/// let channel = client.channel(); // hand this to a generated gRPC client
/// client.ping().await?;
/// client.kill().await?;
/// # Ok(()) }
/// ```
pub struct Client {
    child: Option<Child>,
    pid: Option<u32>,
    addr: Addr,
    version: u32,
    channel: Channel,
    broker: Broker,
    tls_info: Option<TlsInfo>,
    tail: Tail,
    tasks: Vec<JoinHandle<()>>,
    _socket_dir: Option<tempfile::TempDir>,
    shutdown: Shutdown,
    shutdown_timeout: Duration,
    kill_grace: Duration,
    test_reattach: bool,
    handshake: Option<HandshakeLine>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("version", &self.version)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts configuring a plugin launch.
    pub fn builder(command: impl AsRef<Path>) -> ClientBuilder {
        ClientBuilder::new(command)
    }

    /// Connects to a plugin that is already running (started in debug mode,
    /// or by another host). Without `tls` the connection is plaintext, as in
    /// go-plugin. When `config.test` is true, [`Client::kill`] leaves the
    /// plugin running.
    pub async fn reattach(config: &ReattachConfig, tls: ClientTls) -> Result<Client, Error> {
        if config.protocol != "grpc" {
            return Err(Error::UnsupportedProtocol {
                protocol: config.protocol.clone(),
            });
        }
        let addr = config.addr()?;
        let tls = match tls {
            ClientTls::Manual {
                identity,
                server_trust,
            } => Some(BrokerTls {
                client: rpcplugin_certs::client_config(Some(&identity), server_trust.clone())?,
                server: rpcplugin_certs::server_config(&identity, server_trust)?,
            }),
            ClientTls::Disabled | ClientTls::Auto(_) => None,
        };
        let info = TlsInfoSlot::default();
        let timeout = Duration::from_secs(10);
        let channel = conn::connect(
            addr.clone(),
            tls.as_ref().map(|t| t.client.clone()),
            info.clone(),
            timeout,
        )
        .await
        .map_err(|err| {
            Error::Reattach(format!("{err} (is process {} still running?)", config.pid))
        })?;
        let shutdown = Shutdown::new();
        let broker = Broker::new(tls, ListenConfig::default(), shutdown.clone());
        let tasks = vec![
            tokio::spawn(run_broker_stream(channel.clone(), broker.clone())),
            tokio::spawn(run_stdio_stream(
                channel.clone(),
                None,
                None,
                shutdown.clone(),
            )),
        ];
        Ok(Client {
            child: None,
            pid: Some(config.pid),
            addr,
            version: config.protocol_version,
            channel,
            broker,
            tls_info: info.lock().ok().and_then(|i| i.clone()),
            tail: Tail::default(),
            tasks,
            _socket_dir: None,
            shutdown,
            shutdown_timeout: Duration::from_secs(1),
            kill_grace: Duration::from_secs(2),
            test_reattach: config.test,
            handshake: None,
        })
    }

    /// The gRPC channel to the plugin (cheap to clone).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The plugin's handshake line (`None` for a reattached plugin, which
    /// sends none).
    pub fn handshake(&self) -> Option<&HandshakeLine> {
        self.handshake.as_ref()
    }

    /// The negotiated app protocol version.
    pub fn protocol_version(&self) -> u32 {
        self.version
    }

    /// Where the plugin listens.
    pub fn addr(&self) -> &Addr {
        &self.addr
    }

    /// The plugin's process id, when known.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id).or(self.pid)
    }

    /// What TLS negotiated, when TLS is on.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls_info.as_ref()
    }

    /// The host-side broker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The last lines the plugin wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.tail.text()
    }

    /// A reattach configuration for this plugin (as go-plugin's
    /// `ReattachConfig()`, with the version filled in).
    pub fn reattach_config(&self) -> Option<ReattachConfig> {
        self.pid()
            .map(|pid| ReattachConfig::new(self.version, &self.addr, pid, self.test_reattach))
    }

    /// Checks the plugin's health service (`plugin` must be SERVING).
    pub async fn ping(&self) -> Result<(), Error> {
        self.ping_with_timeout(Duration::from_secs(10)).await
    }

    async fn ping_with_timeout(&self, timeout: Duration) -> Result<(), Error> {
        let mut health = HealthClient::new(self.channel.clone());
        let request = HealthCheckRequest {
            service: PLUGIN_HEALTH_SERVICE.into(),
        };
        let response = tokio::time::timeout(timeout, health.check(request))
            .await
            .map_err(|_| Error::Unhealthy(format!("no answer within {timeout:?}")))?
            .map_err(Error::from_status)?;
        match ServingStatus::try_from(response.into_inner().status) {
            Ok(ServingStatus::Serving) => Ok(()),
            Ok(other) => Err(Error::Unhealthy(format!(
                "service \"plugin\" reports {}",
                other.as_str_name()
            ))),
            Err(_) => Err(Error::Unhealthy("unknown status value".into())),
        }
    }

    /// Stops the plugin: the Shutdown call (bounded), up to the exit grace
    /// period for the process to exit, then SIGKILL. Reaps the process and
    /// removes its socket directory. Safe to call more than once. Returns
    /// the exit status when this client launched the process.
    pub async fn kill(&mut self) -> Result<Option<ExitStatus>, Error> {
        if self.test_reattach {
            self.stop_tasks();
            self.broker.stop_servers().await;
            return Ok(None);
        }
        if !self.shutdown.is_triggered() {
            let mut controller = GrpcControllerClient::new(self.channel.clone());
            let call = controller.shutdown(crate::proto::plugin::Empty {});
            if let Err(err) = tokio::time::timeout(self.shutdown_timeout, call).await {
                tracing::debug!(%err, "Shutdown call did not answer in time");
            }
        }
        self.stop_tasks();
        self.broker.stop_servers().await;
        let status = match self.child.as_mut() {
            Some(child) => Some(crate::process::stop_child(child, self.kill_grace).await),
            None => {
                if let Some(pid) = self.pid {
                    crate::process::stop_pid(pid, self.kill_grace).await;
                }
                None
            }
        };
        self.child = None;
        self._socket_dir = None;
        Ok(status.flatten())
    }

    /// Stops a plugin that cannot be reached: SIGKILL at once, reap it,
    /// remove its socket directory.
    async fn abort(&mut self) {
        self.stop_tasks();
        if let Some(mut child) = self.child.take() {
            crate::process::kill_now(&mut child);
            let _ = child.wait().await;
        }
        self._socket_dir = None;
    }

    fn stop_tasks(&mut self) {
        self.shutdown.trigger();
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shutdown.trigger();
        for task in &self.tasks {
            task.abort();
        }
        if let Some(child) = self.child.as_mut() {
            // No async here: kill at once. tokio reaps the process.
            crate::process::kill_now(child);
        }
    }
}
