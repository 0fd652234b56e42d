//! Getting ready to serve: negotiate the version with what the host
//! offered, bind, set up TLS and the services. The host's offer is a value
//! (read from the environment by `serve`, given directly in process), so
//! this step reads no environment.

use super::{INFRA_MAX_MESSAGE_SIZE, PluginContext, PluginServer};
use crate::broker::{Broker, BrokerService, BrokerTls};
use crate::error::Error;
use crate::mux::{Muxer, Role};
use crate::proto::health::health_server::HealthServer;
use crate::proto::plugin::grpc_broker_server::GrpcBrokerServer;
use crate::proto::plugin::grpc_controller_server::GrpcControllerServer;
use crate::proto::plugin::grpc_stdio_server::GrpcStdioServer;
use crate::services::{ControllerService, HealthReporter, HealthService};
use crate::shutdown::Shutdown;
use crate::stdio::StdioService;
use rpcplugin_certs::{Identity, PeerTrust};
use rpcplugin_handshake::{self as handshake, HandshakeLine, Protocol, env};
use rpcplugin_transport::{ListenConfig, Listener, Network};
use std::sync::Mutex;

/// What the host asked for, as go-plugin passes it in the environment.
pub(crate) struct HostOffer {
    /// `PLUGIN_PROTOCOL_VERSIONS`, unparsed.
    pub(crate) versions: String,
    /// `PLUGIN_CLIENT_CERT`: the host's AutoMTLS certificate, PEM.
    pub(crate) client_cert_pem: Option<String>,
    /// Where to listen (`PLUGIN_UNIX_SOCKET_DIR`, ports, group).
    pub(crate) listen: ListenConfig,
    /// Whether stdio is redirected into `plugin.GRPCStdio`.
    pub(crate) capture_stdio: bool,
    /// `PLUGIN_MULTIPLEX_GRPC` is true: the host will make one connection
    /// and multiplex the main and brokered connections over it.
    pub(crate) multiplex: bool,
}

impl HostOffer {
    pub(crate) fn from_env(transport: Network, capture_stdio: bool) -> Result<HostOffer, Error> {
        Ok(HostOffer {
            versions: std::env::var(env::PLUGIN_PROTOCOL_VERSIONS).unwrap_or_default(),
            client_cert_pem: super::serve::non_empty_env(env::PLUGIN_CLIENT_CERT),
            listen: ListenConfig::from_env(transport)?,
            capture_stdio,
            multiplex: super::serve::non_empty_env(env::PLUGIN_MULTIPLEX_GRPC)
                .and_then(|v| handshake::parse_go_bool(&v))
                .unwrap_or(false),
        })
    }
}

/// Everything bound and configured, ready to announce and serve.
pub(crate) struct Prepared {
    pub(crate) listener: Listener,
    pub(crate) version: u32,
    pub(crate) cert: Option<Vec<u8>>,
    pub(crate) server_tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    pub(crate) router: tonic::transport::server::Router,
    pub(crate) shutdown: Shutdown,
    pub(crate) stdio: Option<crate::stdio::Saved>,
    /// Set when the host multiplexes: the session over its one connection.
    pub(crate) mux: Option<Muxer>,
}

impl Prepared {
    /// The line that tells a host where and how to connect.
    pub(crate) fn handshake_line(&self, multiplex: Option<bool>) -> HandshakeLine {
        HandshakeLine {
            core_version: handshake::CORE_PROTOCOL_VERSION,
            app_version: self.version,
            network: self.listener.local_addr().network(),
            address: self.listener.local_addr().to_string(),
            protocol: Protocol::Grpc,
            server_cert: self.cert.clone(),
            multiplex,
        }
    }
}

impl PluginServer {
    /// Negotiates with what the host offered, binds, sets up TLS and the
    /// services. Nothing here reads the environment.
    pub(super) fn prepare(mut self, offer: HostOffer) -> Result<Prepared, Error> {
        // Logging first: generating the AutoMTLS certificate may log (a slow
        // first random draw names its fix).
        if let Some(module) = &self.logging {
            crate::logging::init_plugin_logging(module);
        }
        crate::rlimit::raise_nofile_limit();
        if self.versions.is_empty() {
            return Err(Error::Config(
                "no protocol version was offered: call .version(..) at least once".into(),
            ));
        }
        let requested = handshake::parse_protocol_versions(&offer.versions);
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

        let listen = offer.listen;
        let listener = Listener::bind(&listen)?;

        let (cert, tls) = match self.manual_tls.take() {
            Some(manual) => {
                let server =
                    rpcplugin_certs::server_config(&manual.identity, manual.client_trust.clone())?;
                let client =
                    rpcplugin_certs::client_config(Some(&manual.identity), manual.client_trust)?;
                (None, Some(BrokerTls { server, client }))
            }
            None => match offer.client_cert_pem {
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

        let (stdio, stdio_rx) = if offer.capture_stdio {
            let (saved, rx) = crate::stdio::capture()?;
            if let Ok(log) = saved.stderr.try_clone() {
                crate::logging::set_log_sink(log);
            }
            super::serve::install_panic_hook(self.logging.as_deref().unwrap_or("plugin"));
            (Some(saved), Some(rx))
        } else {
            (None, None)
        };

        let shutdown = Shutdown::new();
        let mux = offer.multiplex.then(|| Muxer::new(Role::Plugin));
        let mut broker = Broker::new(tls.clone(), listen, shutdown.clone());
        if let Some(timeout) = self.options.broker_timeout {
            broker.set_timeout(timeout);
        }
        if let Some(mux) = &mux {
            broker = broker.multiplexed(mux.clone());
        }
        let health = HealthReporter::new();
        let ctx = PluginContext {
            broker: broker.clone(),
            health: health.clone(),
            version,
        };
        let routes = self.options.wrap(factory(&ctx));
        let router = self
            .options
            .server()
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
            mux,
        })
    }
}
