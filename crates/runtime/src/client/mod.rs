//! The host side: launch a plugin, read its handshake, connect with pinned
//! TLS, relay its logs and stdio, watch the process, and stop it without
//! leaving anything behind.
//!
//! One file per step: [`builder`] (options and the start sequence),
//! `launch` (spawn, checksum, handshake read), `connect` (checks and the
//! dial), `relay` (logs, stdio, broker streams), `exit` (the process
//! watcher that reaps and reports the exit).

mod assemble;
mod attach;
mod builder;
mod connect;
mod exit;
mod launch;
mod relay;
mod runner;
mod stop;

pub use builder::{ClientBuilder, ClientTls};
pub use exit::PluginExit;
pub use runner::Runner;
pub use stop::{ClientSet, StopHandle};

use crate::broker::Broker;
use crate::channel::PluginChannel;
use crate::conn::TlsInfo;
use crate::error::Error;
use crate::proto::health::HealthCheckRequest;
use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::health_client::HealthClient;
use crate::reattach::ReattachConfig;
use crate::services::PLUGIN_HEALTH_SERVICE;
use crate::shutdown::Shutdown;
use exit::{ExitWatch, KILL_BOUND, WatchLabel};
use relay::Tail;
use rpcplugin_handshake::HandshakeLine;
use rpcplugin_transport::{Addr, ListenConfig};
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A launched child between spawn and a finished start: failing here kills
/// and reaps it.
pub(crate) struct Launched {
    watch: ExitWatch,
    _socket_dir: tempfile::TempDir,
}

impl Launched {
    /// Stops what was started and hands back `err`.
    async fn fail(self, tasks: Vec<JoinHandle<()>>, err: Error) -> Error {
        tasks.iter().for_each(JoinHandle::abort);
        self.watch.kill(KILL_BOUND).await;
        err
    }
}

/// How a client stops its plugin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stops {
    pub(crate) shutdown_timeout: Duration,
    pub(crate) kill_grace: Duration,
    /// A reattached test plugin (`ReattachConfig::test`): never stopped.
    pub(crate) keep_running: bool,
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
    watch: ExitWatch,
    /// Launched by this host (not reattached).
    launched: bool,
    socket_dir: Option<tempfile::TempDir>,
    stopped: bool,
    addr: Addr,
    version: u32,
    channel: PluginChannel,
    broker: Broker,
    tls_info: Option<TlsInfo>,
    tail: Tail,
    tasks: Vec<JoinHandle<()>>,
    shutdown: Shutdown,
    stops: Stops,
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

    /// The host half of [`crate::PluginServer::start_in_process`].
    pub(crate) async fn in_process(
        line: HandshakeLine,
        identity: rpcplugin_certs::Identity,
        server_shutdown: Shutdown,
        task: JoinHandle<Result<(), Error>>,
    ) -> Result<Client, Error> {
        let tail = Tail::default();
        let watch = ExitWatch::task(
            task,
            server_shutdown,
            WatchLabel {
                plugin: "in-process plugin".into(),
                tail: tail.clone(),
            },
        );
        let tls = ClientTls::Auto(identity.key_type());
        let offer = connect::Offer {
            versions: &[line.app_version],
            tls: &tls,
            identity: Some(identity),
            connect_timeout: Duration::from_secs(10),
            listen: ListenConfig::default(),
            multiplex: false,
            runner: None,
        };
        let shutdown = Shutdown::new();
        let connected = match connect::connect(line, offer, shutdown.clone()).await {
            Ok(connected) => connected,
            Err(err) => {
                watch.kill(KILL_BOUND).await;
                return Err(err);
            }
        };
        let stops = Stops {
            shutdown_timeout: Duration::from_secs(1),
            kill_grace: Duration::from_secs(2),
            keep_running: false,
        };
        let client = Client::assemble(
            connected,
            (watch, None),
            tail,
            Vec::new(),
            shutdown,
            stops,
            (None, None),
        );
        Ok(client)
    }

    /// The gRPC channel to the plugin (cheap to clone).
    pub fn channel(&self) -> PluginChannel {
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
        self.watch.pid_of()
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

    /// How the plugin process ended, once it has (go-plugin's `Exited()`).
    /// The process is reaped as soon as it exits, whatever the host is doing.
    pub fn exit(&self) -> Option<PluginExit> {
        self.watch.exit()
    }

    /// Resolves when the plugin process ends, with how it ended. The future
    /// does not borrow the client.
    ///
    /// ```no_run
    /// # async fn demo(client: rpcplugin_runtime::Client) {
    /// let exited = client.exited();
    /// tokio::spawn(async move {
    ///     let exit = exited.await;
    ///     eprintln!("plugin stopped: {exit}");
    /// });
    /// # }
    /// ```
    pub fn exited(&self) -> impl Future<Output = PluginExit> + Send + 'static {
        self.watch.wait()
    }

    /// Turns a failed call's status into an [`Error`] that names the cause:
    /// when the plugin process has exited (or does within a moment of the
    /// failure), [`Error::PluginGone`] with the exit and the stderr tail;
    /// otherwise [`Error::Rpc`].
    ///
    /// ```no_run
    /// # async fn demo(client: rpcplugin_runtime::Client, status: tonic::Status) {
    /// let err = client.explain(status).await;
    /// eprintln!("{err}");
    /// # }
    /// ```
    pub async fn explain(&self, status: tonic::Status) -> Error {
        /// A call fails as the connection drops, a moment before the
        /// process is reaped.
        const REAP_WAIT: Duration = Duration::from_millis(200);
        let transport_failure = matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        );
        let exit = match self.watch.exit() {
            Some(exit) => Some(exit),
            None if transport_failure => tokio::time::timeout(REAP_WAIT, self.watch.wait())
                .await
                .ok(),
            None => None,
        };
        match exit {
            Some(exit) => Error::PluginGone {
                exit,
                stderr_tail: self.tail.text(),
                status: Some(Box::new(status)),
            },
            None => Error::from_status(status),
        }
    }

    /// A reattach configuration for this plugin (as go-plugin's
    /// `ReattachConfig()`, with the version filled in).
    pub fn reattach_config(&self) -> Option<ReattachConfig> {
        self.pid()
            .map(|pid| ReattachConfig::new(self.version, &self.addr, pid, self.stops.keep_running))
    }

    /// Checks the plugin's health service (`plugin` must be SERVING).
    pub async fn ping(&self) -> Result<(), Error> {
        self.ping_with_timeout(Duration::from_secs(10)).await
    }

    async fn ping_with_timeout(&self, timeout: Duration) -> Result<(), Error> {
        if let Some(exit) = self.watch.exit() {
            return Err(Error::PluginGone {
                exit,
                stderr_tail: self.tail.text(),
                status: None,
            });
        }
        let mut health = HealthClient::new(self.channel.clone());
        let request = HealthCheckRequest {
            service: PLUGIN_HEALTH_SERVICE.into(),
        };
        let response = match tokio::time::timeout(timeout, health.check(request)).await {
            Err(_) => return Err(Error::Unhealthy(format!("no answer within {timeout:?}"))),
            Ok(Err(status)) => return Err(self.explain(status).await),
            Ok(Ok(response)) => response,
        };
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
    /// period for the process to exit, then SIGKILL. The process is reaped
    /// and its socket directory removed before this returns. Safe to call
    /// more than once. Returns the exit status the first time, when this
    /// client launched the process.
    ///
    /// Dropping a `Client` without `kill` SIGKILLs the plugin at once (no
    /// Shutdown call) and the process is reaped in the background by the
    /// runtime the client was started on.
    pub async fn kill(&mut self) -> Result<Option<ExitStatus>, Error> {
        if self.stops.keep_running {
            self.stop_tasks();
            self.broker.stop_servers().await;
            return Ok(None);
        }
        if self.stopped {
            return Ok(None);
        }
        // The relays keep running until the plugin is gone, so what it
        // flushes on its way out still arrives.
        let exit = self.stop_handle().stop().await;
        self.stop_tasks();
        self.broker.stop_servers().await;
        self.stopped = true;
        self.socket_dir = None;
        Ok(match exit {
            Some(PluginExit::Status(status)) if self.launched => Some(status),
            _ => None,
        })
    }

    /// A handle that stops this plugin gracefully from elsewhere (another
    /// task, a [`ClientSet`]), while this client stays usable.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            watch: self.watch.clone(),
            channel: self.channel.clone(),
            stops: self.stops,
        }
    }

    /// Stops a plugin that cannot be reached: SIGKILL at once, reap it,
    /// remove its socket directory.
    async fn abort(&mut self) {
        self.stop_tasks();
        self.watch.kill(KILL_BOUND).await;
        self.stopped = true;
        self.socket_dir = None;
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
        // The watcher SIGKILLs a launched plugin and reaps it; a reattached
        // one is left alone.
        if self.launched && !self.stopped {
            self.watch.kill_now();
        }
    }
}
