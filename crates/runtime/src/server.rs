//! The plugin side: check the cookie, negotiate, bind, print the handshake,
//! serve until the host says stop.

use crate::broker::{Broker, BrokerService, BrokerTls};
use crate::error::Error;
use crate::proto::health::health_server::HealthServer;
use crate::proto::plugin::grpc_broker_server::GrpcBrokerServer;
use crate::proto::plugin::grpc_controller_server::GrpcControllerServer;
use crate::proto::plugin::grpc_stdio_server::GrpcStdioServer;
use crate::reattach::ReattachConfig;
use crate::services::{ControllerService, HealthReporter, HealthService};
use crate::shutdown::Shutdown;
use crate::stdio::StdioService;
use rpcplugin_certs::{Identity, KeyType, PeerTrust};
use rpcplugin_handshake::{self as handshake, HandshakeLine, MagicCookie, Protocol, env};
use rpcplugin_transport::{ListenConfig, Listener, Transport};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;
use tonic::service::Routes;
use tonic::transport::Server;

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
    transport: Transport,
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

/// Everything bound and configured, ready to announce and serve.
struct Prepared {
    listener: Listener,
    version: u32,
    cert: Option<Vec<u8>>,
    server_tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    router: tonic::transport::server::Router,
    shutdown: Shutdown,
    stdio: Option<crate::stdio::Saved>,
}

impl PluginServer {
    /// A plugin that requires the host to set `cookie_key=cookie_value`.
    pub fn new(cookie_key: impl Into<String>, cookie_value: impl Into<String>) -> PluginServer {
        PluginServer {
            cookie: MagicCookie::new(cookie_key, cookie_value),
            versions: BTreeMap::new(),
            transport: Transport::default(),
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
    pub fn transport(mut self, transport: Transport) -> Self {
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

    /// Whether to redirect fds 1 and 2 into `plugin.GRPCStdio` after the
    /// handshake (default true). Turn it off when embedding the server in a
    /// process that owns its stdio.
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
        let prepared = self.prepare()?;
        let line = HandshakeLine {
            core_version: handshake::CORE_PROTOCOL_VERSION,
            app_version: prepared.version,
            network: prepared.listener.local_addr().network(),
            address: prepared.listener.local_addr().to_string(),
            protocol: Protocol::Grpc,
            server_cert: prepared.cert.clone(),
            // The field is present iff the host asked; we never multiplex.
            multiplex: non_empty_env(env::PLUGIN_MULTIPLEX_GRPC).map(|_| false),
        };
        announce(&line, prepared.stdio.as_ref().map(|s| &s.stdout))?;
        ignore_sigint();
        crate::parent::follow_parent(parent, prepared.shutdown.clone());
        run_server(prepared).await
    }

    /// Debug (reattach) mode: serves without a host, no cookie check and no
    /// handshake line; `on_ready` gets the reattach configuration to hand a
    /// host (for Terraform, via `TF_REATTACH_PROVIDERS`). Stops on SIGINT,
    /// SIGTERM or Shutdown.
    pub async fn serve_debug(
        mut self,
        on_ready: impl FnOnce(&ReattachConfig),
    ) -> Result<(), Error> {
        self.capture_stdio = false;
        let prepared = self.prepare()?;
        let config = ReattachConfig::new(
            prepared.version,
            prepared.listener.local_addr(),
            std::process::id(),
            true,
        );
        on_ready(&config);
        let shutdown = prepared.shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.trigger();
        });
        run_server(prepared).await
    }

    fn prepare(mut self) -> Result<Prepared, Error> {
        crate::rlimit::raise_nofile_limit();
        if self.versions.is_empty() {
            return Err(Error::Config(
                "no protocol version was offered: call .version(..) at least once".into(),
            ));
        }
        let requested = handshake::parse_protocol_versions(
            &std::env::var(env::PLUGIN_PROTOCOL_VERSIONS).unwrap_or_default(),
        );
        for invalid in &requested.invalid {
            crate::logging::write_log_line(
                format!("server sent invalid plugin version {invalid:?}\n").as_bytes(),
            );
        }
        let offered: Vec<u32> = self.versions.keys().copied().collect();
        let version = handshake::negotiate(&requested.versions, &offered)
            .ok_or_else(|| Error::Config("no protocol version was offered".into()))?;
        let factory = self
            .versions
            .remove(&version)
            .ok_or_else(|| Error::Config(format!("version {version} has no services")))?;

        let listen = ListenConfig::from_env(self.transport)?;
        let listener = Listener::bind(&listen)?;

        let (cert, tls) = match self.manual_tls.take() {
            Some(manual) => {
                let server =
                    rpcplugin_certs::server_config(&manual.identity, manual.client_trust.clone())?;
                let client =
                    rpcplugin_certs::client_config(Some(&manual.identity), manual.client_trust)?;
                (None, Some(BrokerTls { server, client }))
            }
            None => match non_empty_env(env::PLUGIN_CLIENT_CERT) {
                Some(pem) => {
                    let host_cert = rpcplugin_certs::parse_cert_pem(pem.as_bytes())
                        .map_err(Error::ClientCertEnv)?;
                    let identity = Identity::generate(self.key_type)?;
                    let server = rpcplugin_certs::server_config(
                        &identity,
                        PeerTrust::Pinned(host_cert.clone()),
                    )?;
                    let client = rpcplugin_certs::client_config(
                        Some(&identity),
                        PeerTrust::Pinned(host_cert),
                    )?;
                    (
                        Some(identity.cert_der().to_vec()),
                        Some(BrokerTls { server, client }),
                    )
                }
                None => (None, None),
            },
        };

        if let Some(module) = &self.logging {
            crate::logging::init_plugin_logging(module);
        }
        let (stdio, stdio_rx) = if self.capture_stdio {
            let (saved, rx) = crate::stdio::capture()?;
            if let Ok(log) = saved.stderr.try_clone() {
                crate::logging::set_log_sink(log);
            }
            install_panic_hook();
            (Some(saved), Some(rx))
        } else {
            (None, None)
        };

        let shutdown = Shutdown::new();
        let broker = Broker::new(tls.clone(), listen, shutdown.clone());
        let health = HealthReporter::new();
        let ctx = PluginContext {
            broker: broker.clone(),
            health: health.clone(),
            version,
        };
        let routes = factory(&ctx);
        let router = Server::builder()
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(8 << 20))
            .add_routes(routes)
            .add_service(
                HealthServer::new(HealthService {
                    reporter: health,
                    shutdown: shutdown.clone(),
                })
                .max_decoding_message_size(INFRA_MAX_MESSAGE_SIZE),
            )
            .add_service(
                GrpcControllerServer::new(ControllerService {
                    shutdown: shutdown.clone(),
                })
                .max_decoding_message_size(INFRA_MAX_MESSAGE_SIZE),
            )
            .add_service(
                GrpcStdioServer::new(StdioService {
                    rx: Mutex::new(stdio_rx),
                    shutdown: shutdown.clone(),
                })
                .max_decoding_message_size(INFRA_MAX_MESSAGE_SIZE),
            )
            .add_service(
                GrpcBrokerServer::new(BrokerService { broker })
                    .max_decoding_message_size(INFRA_MAX_MESSAGE_SIZE),
            );
        tracing::debug!(version, addr = %listener.local_addr(), tls = tls.is_some(), "plugin ready");
        Ok(Prepared {
            listener,
            version,
            cert,
            server_tls: tls.map(|t| t.server),
            router,
            shutdown,
            stdio,
        })
    }
}

/// Writes the handshake line once to the host's stdout and flushes it.
fn announce(line: &HandshakeLine, saved: Option<&std::fs::File>) -> Result<(), Error> {
    let text = line.to_line();
    match saved {
        Some(mut file) => file.write_all(text.as_bytes()).and_then(|()| file.flush()),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
    }
    .map_err(Error::io("writing the handshake line"))
}

async fn run_server(prepared: Prepared) -> Result<(), Error> {
    let Prepared {
        listener,
        server_tls,
        router,
        shutdown,
        stdio,
        ..
    } = prepared;
    // Closing the saved stdout leaves the host's stdout pipe with no writer
    // here: nothing can reach it after the handshake. The log handle stays.
    let _stderr = stdio.map(|s| s.stderr);
    #[cfg(unix)]
    {
        let shutdown = shutdown.clone();
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::spawn(async move {
                if term.recv().await.is_some() {
                    tracing::debug!("SIGTERM: shutting down");
                    shutdown.trigger();
                }
            });
        }
    }
    let incoming = crate::incoming::incoming(listener, server_tls);
    let serve = router.serve_with_incoming_shutdown(incoming, shutdown.wait());
    let deadline = async {
        shutdown.wait().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = serve => served?,
        () = deadline => tracing::debug!("calls still running after the grace period; stopping anyway"),
    }
    Ok(())
}

/// SIGINT goes to the whole process group on Ctrl-C; the host handles it.
fn ignore_sigint() {
    #[cfg(unix)]
    if let Ok(mut int) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
        tokio::spawn(async move {
            let mut count = 0u64;
            while int.recv().await.is_some() {
                count += 1;
                tracing::trace!(count, "ignoring SIGINT");
            }
        });
    }
}

/// Panics go to the real stderr, prefixed `panic: `, so a host logs them at
/// error level (go-plugin does this for Go panics).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let line = format!("panic: {info}\n");
        crate::logging::write_log_line(line.as_bytes());
    }));
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
