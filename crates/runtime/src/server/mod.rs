//! The plugin side: check the cookie, negotiate, bind, print the handshake,
//! serve until the host says stop.
//!
//! [`PluginServer`] is the builder (this file); `prepare` negotiates and
//! binds from the host's offer; `serve` announces and runs the server loop;
//! `debug` is reattach mode with a handle to stop it; `in_process` serves a
//! plugin inside a test process with a real [`crate::Client`] attached.

mod debug;
mod in_process;
mod options;
mod prepare;
mod serve;

pub use debug::{DebugServer, DebugStop};

use crate::broker::Broker;
use crate::error::Error;
use crate::reattach::ReattachConfig;
use crate::services::HealthReporter;
use options::ServerOptions;
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
    options: ServerOptions,
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
            options: ServerOptions::default(),
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

    /// Wraps the plugin's own services in a tower layer (go-plugin:
    /// `GRPCServer` options such as interceptors), as tonic's
    /// `Server::builder().layer(..)` does: the first layer added is the
    /// outermost. go-plugin's services (health, controller, stdio, broker)
    /// are not wrapped. An interceptor is a layer too:
    /// `tonic::service::InterceptorLayer::new(f)`.
    ///
    /// The wrapped service must answer every call (its error type converts
    /// into `Infallible`): refuse a call with a gRPC status, as an
    /// interceptor does. For a deadline use [`PluginServer::timeout`].
    ///
    /// ```
    /// use rpcplugin_runtime::PluginServer;
    /// use tonic::service::{InterceptorLayer, Routes};
    ///
    /// let server = PluginServer::new("BASIC_PLUGIN", "hello")
    ///     .layer(InterceptorLayer::new(|req: tonic::Request<()>| {
    ///         match req.metadata().get("authorization") {
    ///             Some(_) => Ok(req),
    ///             None => Err(tonic::Status::unauthenticated("no token")),
    ///         }
    ///     }))
    ///     .version(1, |_ctx| Routes::default());
    /// ```
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<http::Request<axum::body::Body>> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<http::Request<axum::body::Body>>>::Response:
            axum::response::IntoResponse + 'static,
        <L::Service as tower::Service<http::Request<axum::body::Body>>>::Error:
            Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<http::Request<axum::body::Body>>>::Future: Send + 'static,
    {
        self.options
            .layers
            .push(Box::new(move |router: axum::Router| router.layer(layer)));
        self
    }

    /// Largest request message the plugin's own services accept, checked
    /// on the length a message declares before it is read (go-plugin:
    /// `grpc.MaxRecvMsgSize`); a larger one fails its call with
    /// `ResourceExhausted`. The limit a generated server sets for itself
    /// (tonic's default is 4 MiB) still applies after this one, so to allow
    /// more, raise it there too. go-plugin's services keep 4 MiB.
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.options.max_decoding_message_size = Some(limit);
        self
    }

    /// A deadline for every call until its response starts; a call that
    /// takes longer fails with `Cancelled` (tonic's `Server::timeout`).
    /// A shorter `grpc-timeout` sent by the host wins.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// At most `limit` calls in progress per connection; more wait
    /// (tonic's `Server::concurrency_limit_per_connection`).
    pub fn concurrency_limit_per_connection(mut self, limit: usize) -> Self {
        self.options.concurrency_limit = Some(limit);
        self
    }

    /// The HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` the plugin announces
    /// (default: no limit; grpc-go's `MaxConcurrentStreams`).
    pub fn max_concurrent_streams(mut self, max: u32) -> Self {
        self.options.max_concurrent_streams = Some(max);
        self
    }

    /// Sends an HTTP/2 PING on each connection after `interval` without
    /// traffic and closes the connection when the answer does not come
    /// within [`PluginServer::http2_keepalive_timeout`] (default 20 s);
    /// off by default (grpc-go's `keepalive.ServerParameters`).
    pub fn http2_keepalive_interval(mut self, interval: Duration) -> Self {
        self.options.keepalive_interval = Some(interval);
        self
    }

    /// How long a keep-alive PING may wait for its answer.
    pub fn http2_keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.options.keepalive_timeout = Some(timeout);
        self
    }

    /// Closes connections older than `age` gracefully (grpc-go's
    /// `MaxConnectionAge`). A host does not reconnect: leave it unset
    /// unless the plugin's host does.
    pub fn max_connection_age(mut self, age: Duration) -> Self {
        self.options.max_connection_age = Some(age);
        self
    }

    /// How long the plugin's broker waits for the host's announcement of
    /// an id in [`Broker::dial`] and for connecting, and how long an
    /// unclaimed announcement is kept (default
    /// [`BROKER_TIMEOUT`](crate::BROKER_TIMEOUT), 5 s, as go-plugin).
    pub fn broker_timeout(mut self, timeout: Duration) -> Self {
        self.options.broker_timeout = Some(timeout);
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
        // The field is present iff the host set the variable (as go-plugin
        // does); it says whether this plugin multiplexes.
        let line = prepared.handshake_line(
            non_empty_env(env::PLUGIN_MULTIPLEX_GRPC).map(|_| prepared.mux.is_some()),
        );
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
        let mut offer = HostOffer::from_env(self.transport, false)?;
        // A reattaching host cannot multiplex (go-plugin refuses it too).
        offer.multiplex = false;
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
