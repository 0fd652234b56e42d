//! The plugin side: check the cookie, negotiate, bind, print the handshake,
//! serve until the host says stop.
//!
//! [`PluginServer`] is the builder (this file); `prepare` negotiates and
//! binds from the host's offer; `serve` announces and runs the server loop;
//! `debug` is reattach mode with a handle to stop it; `in_process` serves a
//! plugin inside a test process with a real [`crate::Client`] attached.

mod debug;
mod in_process;
mod prepare;
mod serve;

pub use debug::{DebugServer, DebugStop};

use crate::broker::Broker;
use crate::error::Error;
use crate::reattach::ReattachConfig;
use crate::services::HealthReporter;
use prepare::HostOffer;
use rpcplugin_certs::{Identity, KeyType, PeerTrust};
use rpcplugin_handshake::{MagicCookie, env};
use rpcplugin_transport::Network;
use serve::{announce, ignore_sigint, non_empty_env, run_server};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;
use tonic::service::Routes;

/// How long in-flight calls may take to finish after Shutdown or SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Largest request message go-plugin's own services (health, controller,
/// stdio, broker) accept: grpc-go's default, which go-plugin's plugin side
/// keeps. Their messages are a few bytes; a larger limit would only let
/// anyone who reaches the socket make tonic reserve what a length prefix
/// declares. Application services set their own limits.
const INFRA_MAX_MESSAGE_SIZE: usize = 4 << 20;

/// What a service factory gets: the plugin's broker and health reporter.
#[derive(Debug, Clone)]
pub struct PluginContext {
    broker: Broker,
    health: HealthReporter,
    version: u32,
}

impl PluginContext {
    /// The broker, for serving or reaching extra gRPC servers.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The health reporter behind `grpc.health.v1.Health`.
    pub fn health(&self) -> &HealthReporter {
        &self.health
    }

    /// The negotiated app protocol version.
    pub fn version(&self) -> u32 {
        self.version
    }
}

type ServiceFactory = Box<dyn FnOnce(&PluginContext) -> Routes + Send>;

/// Manual TLS for the plugin's listener.
struct ManualTls {
    identity: Identity,
    client_trust: PeerTrust,
}

/// Builds and runs a plugin: the subprocess a go-plugin host launches.
///
/// ```no_run
/// use rpcplugin_runtime::PluginServer;
/// use tonic::service::Routes;
/// # fn kv_service() -> Routes { Routes::default() }
///
/// fn main() -> std::process::ExitCode {
///     PluginServer::new("BASIC_PLUGIN", "hello")
///         .version(1, |_ctx| kv_service())
///         .run()
/// }
/// ```
pub struct PluginServer {
    cookie: MagicCookie,
    versions: BTreeMap<u32, ServiceFactory>,
    transport: Network,
    key_type: KeyType,
    manual_tls: Option<ManualTls>,
    capture_stdio: bool,
    logging: Option<String>,
}

impl std::fmt::Debug for PluginServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginServer")
            .field("versions", &self.versions.keys().collect::<Vec<_>>())
            .field("transport", &self.transport)
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

impl PluginServer {
    /// A plugin that requires the host to set `cookie_key=cookie_value`.
    pub fn new(cookie_key: impl Into<String>, cookie_value: impl Into<String>) -> PluginServer {
        PluginServer {
            cookie: MagicCookie::new(cookie_key, cookie_value),
            versions: BTreeMap::new(),
            transport: Network::default(),
            key_type: KeyType::default(),
            manual_tls: None,
            capture_stdio: true,
            logging: Some("plugin".into()),
        }
    }

    /// Offers app protocol `version`, served by the routes `factory` builds.
    /// The highest version the host also offers is chosen; when none is in
    /// common the lowest is announced (and a modern host refuses it).
    pub fn version<F>(mut self, version: u32, factory: F) -> Self
    where
        F: FnOnce(&PluginContext) -> Routes + Send + 'static,
    {
        self.versions.insert(version, Box::new(factory));
        self
    }

    /// Unix socket (default) or TCP on 127.0.0.1.
    pub fn transport(mut self, transport: Network) -> Self {
        self.transport = transport;
        self
    }

    /// Key type of the AutoMTLS certificate (default P-256, which every
    /// peer library can verify).
    pub fn key_type(mut self, key_type: KeyType) -> Self {
        self.key_type = key_type;
        self
    }

    /// Serves with this certificate and verifies host certificates against
    /// `client_trust`, instead of AutoMTLS. The handshake then carries no
    /// certificate.
    pub fn manual_tls(mut self, identity: Identity, client_trust: PeerTrust) -> Self {
        self.manual_tls = Some(ManualTls {
            identity,
            client_trust,
        });
        self
    }

    /// Whether to redirect fd 1 (stdout) into `plugin.GRPCStdio` after the
    /// handshake (default true); fd 2 stays the real stderr, which the host
    /// logs. Turn it off when embedding the server in a process that owns
    /// its stdio.
    pub fn capture_stdio(mut self, capture: bool) -> Self {
        self.capture_stdio = capture;
        self
    }

    /// Installs the hclog JSON `tracing` subscriber with this `@module` name
    /// (default `plugin`); `None` leaves logging to you.
    pub fn logging(mut self, module: Option<&str>) -> Self {
        self.logging = module.map(str::to_owned);
        self
    }

    /// Runs the plugin on a new tokio runtime and returns the process exit
    /// code: 0 after a clean shutdown, 1 (with the reason on stderr) when the
    /// cookie is wrong or serving failed.
    pub fn run(self) -> ExitCode {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(err) => {
                eprintln!("cannot start the async runtime: {err}");
                return ExitCode::FAILURE;
            }
        };
        match runtime.block_on(self.serve()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                crate::logging::write_log_line(format!("{err}\n").as_bytes());
                ExitCode::FAILURE
            }
        }
    }

    /// Serves as a go-plugin plugin until the host calls Shutdown, SIGTERM
    /// arrives, the host process dies (checked every 500 ms), or the
    /// listener fails. SIGINT is ignored, as go-plugin does.
    pub async fn serve(self) -> Result<(), Error> {
        let parent = crate::parent::Parent::now();
        self.cookie
            .check(std::env::var(self.cookie.key.as_str()).ok().as_deref())?;
        let offer = HostOffer::from_env(self.transport, self.capture_stdio)?;
        let prepared = self.prepare(offer)?;
        // The field is present iff the host asked; we never multiplex.
        let line =
            prepared.handshake_line(non_empty_env(env::PLUGIN_MULTIPLEX_GRPC).map(|_| false));
        announce(&line, prepared.stdio.as_ref().map(|s| &s.stdout))?;
        ignore_sigint();
        crate::parent::follow_parent(parent, prepared.shutdown.clone());
        run_server(prepared).await
    }

    /// Debug (reattach) mode: serves without a host, no cookie check and no
    /// handshake line, stdio left alone; `on_ready` gets the reattach
    /// configuration to hand a host (for Terraform, via
    /// `TF_REATTACH_PROVIDERS`). Stops on Ctrl-C, SIGTERM or Shutdown. To
    /// stop it from code, use [`PluginServer::start_debug`].
    pub async fn serve_debug(self, on_ready: impl FnOnce(&ReattachConfig)) -> Result<(), Error> {
        let server = self.start_debug()?;
        on_ready(server.reattach_config());
        let stop = server.stop_handle();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.trigger();
            }
        });
        server.wait().await
    }

    /// Starts debug (reattach) mode and returns a handle: its reattach
    /// configuration, a way to stop it, and its outcome. No cookie check, no
    /// handshake line, stdio left alone. Call from within a tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo(server: rpcplugin_runtime::PluginServer) -> Result<(), rpcplugin_runtime::Error> {
    /// let debug = server.start_debug()?;
    /// println!("{}", debug.reattach_config().tf_reattach_providers("example/name"));
    /// // ... later:
    /// debug.stop().await?;
    /// # Ok(()) }
    /// ```
    pub fn start_debug(self) -> Result<DebugServer, Error> {
        let offer = HostOffer::from_env(self.transport, false)?;
        let prepared = self.prepare(offer)?;
        let config = ReattachConfig::new(
            prepared.version,
            prepared.listener.local_addr(),
            std::process::id(),
            true,
        );
        Ok(DebugServer::spawn(prepared, config))
    }
}
