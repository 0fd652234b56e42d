//! go-plugin's GRPCBroker (§5.4 of the protocol notes): either side can
//! serve extra gRPC servers on new sockets and tell the other side where
//! they are, keyed by a broker id. When the host asked for multiplexing,
//! brokered connections are streams of the main connection instead
//! (`muxed`).

mod muxed;

mod listener;
mod options;

pub use listener::{BrokerConnection, BrokerListener};
pub use options::DialOptions;

use crate::channel::PluginChannel;
use crate::conn::{self, TlsInfoSlot};
use crate::error::Error;
use crate::mux::Muxer;
use crate::proto::plugin::ConnInfo;
use crate::proto::plugin::conn_info::Knock;
use crate::proto::plugin::grpc_broker_server::GrpcBroker;
use crate::shutdown::Shutdown;
use rpcplugin_transport::{Addr, ListenConfig, Listener, Network};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::{Request, Response, Status, Streaming};

/// How long a dial waits for the peer's connection info, and how long an
/// unclaimed connection info is kept (go-plugin: 5 s each), unless changed
/// with `ClientBuilder::broker_timeout` or `PluginServer::broker_timeout`.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// TLS settings a broker uses for the servers it starts and the dials it makes.
#[derive(Clone)]
pub(crate) struct BrokerTls {
    pub(crate) server: Arc<rustls::ServerConfig>,
    pub(crate) client: Arc<rustls::ClientConfig>,
}

/// Starts and reaches brokered gRPC servers.
///
/// Each side has its own broker. The side that serves calls
/// [`Broker::next_id`], sends the id to the other side inside one of its own
/// messages, and calls [`Broker::accept_and_serve`]; the other side calls
/// [`Broker::dial`] with that id and gets a channel. Brokered servers use the
/// same TLS identities and pinning as the main connection, and stop when the
/// plugin shuts down.
///
/// ```no_run
/// # async fn demo(broker: rpcplugin_runtime::Broker, routes: tonic::service::Routes) -> Result<(), rpcplugin_runtime::Error> {
/// // Serving side:
/// let id = broker.next_id();
/// broker.accept_and_serve(id, routes).await?;
/// // ... send `id` to the peer in a request ...
/// // Dialling side, once it received `id`:
/// let channel = broker.dial(id).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

struct Inner {
    next_id: AtomicU32,
    out_tx: mpsc::UnboundedSender<ConnInfo>,
    out_rx: Mutex<Option<mpsc::UnboundedReceiver<ConnInfo>>>,
    slots: Mutex<HashMap<u32, Slot>>,
    tls: Option<BrokerTls>,
    listen: ListenConfig,
    shutdown: Shutdown,
    /// The brokered servers this side runs.
    servers: Mutex<Vec<JoinHandle<()>>>,
    /// Waits for connection info, and how long unclaimed info is kept.
    timeout: Mutex<Duration>,
    /// Set when brokered connections are multiplexed.
    mux: OnceLock<Muxer>,
}

enum Slot {
    Waiting(oneshot::Sender<ConnInfo>),
    Ready(ConnInfo, Instant),
}

impl Broker {
    pub(crate) fn new(tls: Option<BrokerTls>, listen: ListenConfig, shutdown: Shutdown) -> Broker {
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        Broker {
            inner: Arc::new(Inner {
                next_id: AtomicU32::new(1),
                out_tx,
                out_rx: Mutex::new(Some(out_rx)),
                slots: Mutex::new(HashMap::new()),
                tls,
                listen,
                shutdown,
                servers: Mutex::new(Vec::new()),
                timeout: Mutex::new(BROKER_TIMEOUT),
                mux: OnceLock::new(),
            }),
        }
    }

    /// This broker, with its connections as streams of `mux`.
    pub(crate) fn multiplexed(self, mux: Muxer) -> Broker {
        let _ = self.inner.mux.set(mux);
        self
    }

    /// A fresh id for [`Broker::accept_and_serve`] (1, 2, 3, ...).
    pub fn next_id(&self) -> u32 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// How long [`Broker::dial`] waits for the peer's connection info and
    /// for connecting, and how long an unclaimed connection info is kept.
    pub(crate) fn set_timeout(&self, timeout: Duration) {
        if let Ok(mut current) = self.inner.timeout.lock() {
            *current = timeout;
        }
    }

    fn timeout(&self) -> Duration {
        self.inner
            .timeout
            .lock()
            .map(|t| *t)
            .unwrap_or(BROKER_TIMEOUT)
    }

    /// Opens a new socket, tells the peer where under `id`, and returns its
    /// connections (go-plugin's `Accept`): for serving `id` with a server
    /// of your own. [`Broker::accept_and_serve`] does this and serves
    /// tonic routes on it.
    ///
    /// Not available when the broker is multiplexed: there a brokered
    /// connection is a stream of the main connection, served with
    /// [`Broker::accept_and_serve`].
    pub async fn accept(&self, id: u32) -> Result<BrokerListener, Error> {
        if self.inner.mux.get().is_some() {
            return Err(Error::Config(format!(
                "broker id {id}: a raw listener is not available on a multiplexed broker; use accept_and_serve"
            )));
        }
        // Without a socket directory from the host, the socket gets a
        // private directory that the server task owns, so it is gone as
        // soon as the task ends (not whenever the accept loop notices).
        let mut listen = self.inner.listen.clone();
        let own_dir = match (listen.transport, &listen.socket_dir) {
            (Network::Unix, None) => {
                let dir = rpcplugin_transport::private_dir(listen.socket_group.as_deref())?;
                listen.socket_dir = Some(dir.path().to_path_buf());
                Some(dir)
            }
            _ => None,
        };
        let listener = Listener::bind(&listen)?;
        let addr = listener.local_addr().clone();
        let tls = self.inner.tls.as_ref().map(|t| t.server.clone());
        let incoming = crate::incoming::incoming(listener, tls);
        self.send(ConnInfo {
            service_id: id,
            network: addr.network().to_string(),
            address: addr.to_string(),
            knock: None,
        });
        tracing::debug!(id, %addr, "brokered socket listening");
        Ok(BrokerListener {
            incoming,
            addr,
            _own_dir: own_dir,
        })
    }

    /// Serves `routes` on a new socket and tells the peer where, under `id`.
    /// Returns once the server is listening; it runs until shutdown.
    ///
    /// The server has tonic's default settings; to choose them, use
    /// [`Broker::accept_and_serve_with`].
    pub async fn accept_and_serve(&self, id: u32, routes: Routes) -> Result<(), Error> {
        self.accept_and_serve_with(id, routes, Server::builder())
            .await
    }

    /// [`Broker::accept_and_serve`] on a tonic server you configured:
    /// timeouts, concurrency limits and HTTP/2 settings, as go-plugin's
    /// `AcceptAndServe` lets its caller build the gRPC server. The settings
    /// of [`PluginServer`](crate::PluginServer) do not carry over to
    /// brokered servers; pass them here. Layers go on `routes` (for example
    /// through `Routes::into_axum_router`), since a layered tonic server is
    /// a different type. TLS stays the broker's: the pinned identities of
    /// the main connection. Works on multiplexed brokers too, where
    /// [`Broker::accept`] does not.
    ///
    /// ```no_run
    /// # async fn demo(broker: rpcplugin_runtime::Broker, routes: tonic::service::Routes) -> Result<(), rpcplugin_runtime::Error> {
    /// use std::time::Duration;
    /// use tonic::transport::Server;
    ///
    /// let id = broker.next_id();
    /// let server = Server::builder()
    ///     .timeout(Duration::from_secs(30))
    ///     .concurrency_limit_per_connection(8);
    /// broker.accept_and_serve_with(id, routes, server).await?;
    /// # Ok(()) }
    /// ```
    pub async fn accept_and_serve_with(
        &self,
        id: u32,
        routes: Routes,
        mut server: Server,
    ) -> Result<(), Error> {
        if let Some(mux) = self.inner.mux.get() {
            self.serve_muxed(mux, id, routes, server);
            return Ok(());
        }
        let listener = self.accept(id).await?;
        let shutdown = self.inner.shutdown.clone();
        let server = tokio::spawn(async move {
            let served = server
                .add_routes(routes)
                .serve_with_incoming_shutdown(listener, shutdown.wait())
                .await;
            if let Err(err) = served {
                tracing::warn!(id, %err, "brokered server failed");
            }
        });
        self.track(server);
        Ok(())
    }

    /// Connects to the server the peer announced under `id`, waiting up to
    /// the broker's timeout ([`BROKER_TIMEOUT`] by default) for the
    /// announcement.
    pub async fn dial(&self, id: u32) -> Result<PluginChannel, Error> {
        self.dial_with_options(id, &DialOptions::default()).await
    }

    /// [`Broker::dial`] with its own timeout and channel settings
    /// (go-plugin's `DialWithOptions`).
    pub async fn dial_with_options(
        &self,
        id: u32,
        options: &DialOptions,
    ) -> Result<PluginChannel, Error> {
        let timeout = options.connect_timeout.unwrap_or_else(|| self.timeout());
        if let Some(mux) = self.inner.mux.get() {
            let channel = self.dial_muxed(mux, id, timeout).await?;
            return Ok(options.channel.apply(&channel));
        }
        let info = self.wait_for(id, timeout).await?;
        let network = info.network.parse().map_err(|e| Error::Connect {
            addr: info.address.clone(),
            source: Box::new(e),
            hint: None,
        })?;
        let addr = Addr::parse(network, &info.address)?;
        let tls = self.inner.tls.as_ref().map(|t| t.client.clone());
        let channel = conn::connect(addr, tls, TlsInfoSlot::default(), timeout).await?;
        Ok(options.channel.apply(&channel))
    }

    /// Stops this side's brokered servers now and waits until they are
    /// gone, sockets included.
    pub(crate) async fn stop_servers(&self) {
        let servers = match self.inner.servers.lock() {
            Ok(mut servers) => std::mem::take(&mut *servers),
            Err(_) => return,
        };
        for server in servers {
            server.abort();
            let _ = server.await;
        }
    }

    /// Keeps `server` to stop it with the others.
    fn track(&self, server: JoinHandle<()>) {
        if let Ok(mut servers) = self.inner.servers.lock() {
            servers.retain(|s| !s.is_finished());
            servers.push(server);
        }
    }

    fn send(&self, info: ConnInfo) {
        // Fails only once the broker stream is gone, when nobody can dial anyway.
        let _ = self.inner.out_tx.send(info);
    }

    async fn wait_for(&self, id: u32, timeout: Duration) -> Result<ConnInfo, Error> {
        let rx = {
            let mut slots = self.lock_slots();
            match slots.remove(&id) {
                Some(Slot::Ready(info, _)) => return Ok(info),
                _ => {
                    let (tx, rx) = oneshot::channel();
                    slots.insert(id, Slot::Waiting(tx));
                    rx
                }
            }
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(info)) => Ok(info),
            _ => {
                self.lock_slots().remove(&id);
                Err(Error::BrokerTimeout { id, timeout })
            }
        }
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Slot>> {
        self.inner
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Routes one message received on the broker stream.
    pub(crate) fn deliver(&self, info: ConnInfo) {
        if let Some(knock) = &info.knock
            && knock.knock
            && !knock.ack
        {
            if let Some(mux) = self.inner.mux.get() {
                self.answer_knock(mux, info.service_id);
                return;
            }
            // Not multiplexing, so a knock is a confused peer.
            self.send(ConnInfo {
                service_id: info.service_id,
                network: String::new(),
                address: String::new(),
                knock: Some(Knock {
                    knock: true,
                    ack: true,
                    error: "broker multiplexing is not supported by this peer".into(),
                }),
            });
            return;
        }
        let keep = self.timeout();
        let mut slots = self.lock_slots();
        slots.retain(|_, slot| !matches!(slot, Slot::Ready(_, at) if at.elapsed() > keep));
        let id = info.service_id;
        match slots.remove(&id) {
            Some(Slot::Waiting(tx)) => {
                if let Err(info) = tx.send(info) {
                    slots.insert(id, Slot::Ready(info, Instant::now()));
                }
            }
            Some(ready @ Slot::Ready(..)) => {
                // One slot per id, as in go-plugin: later messages are dropped.
                slots.insert(id, ready);
            }
            None => {
                slots.insert(id, Slot::Ready(info, Instant::now()));
            }
        }
    }

    /// The queue of messages to send to the peer; taken once by whoever runs
    /// the broker stream.
    pub(crate) fn take_outgoing(&self) -> Option<mpsc::UnboundedReceiver<ConnInfo>> {
        self.inner.out_rx.lock().ok().and_then(|mut rx| rx.take())
    }

    /// Feeds messages from the peer into this broker until the stream ends.
    pub(crate) async fn pump(self, mut incoming: Streaming<ConnInfo>) {
        let shutdown = self.inner.shutdown.clone();
        loop {
            tokio::select! {
                msg = incoming.next() => match msg {
                    Some(Ok(info)) => self.deliver(info),
                    Some(Err(status)) => {
                        tracing::debug!(%status, "broker stream ended");
                        return;
                    }
                    None => return,
                },
                () = shutdown.wait() => return,
            }
        }
    }
}

/// `plugin.GRPCBroker` on the plugin: the host opens one stream per plugin
/// lifetime.
pub(crate) struct BrokerService {
    pub(crate) broker: Broker,
}

#[tonic::async_trait]
impl GrpcBroker for BrokerService {
    type StartStreamStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<ConnInfo, Status>> + Send>>;

    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let Some(mut outgoing) = self.broker.take_outgoing() else {
            return Err(Status::failed_precondition(
                "the broker stream is already open",
            ));
        };
        tokio::spawn(self.broker.clone().pump(request.into_inner()));
        let shutdown = self.broker.inner.shutdown.clone();
        let stream = crate::services::async_stream(move |tx| async move {
            loop {
                tokio::select! {
                    msg = outgoing.recv() => match msg {
                        Some(info) => if tx.send(Ok(info)).await.is_err() { return },
                        None => return,
                    },
                    () = shutdown.wait() => return,
                }
            }
        });
        Ok(Response::new(stream))
    }
}
