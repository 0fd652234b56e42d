//! go-plugin's GRPCBroker, non-multiplexed flow (§5.4 of the protocol
//! notes): either side can serve extra gRPC servers on new sockets and tell
//! the other side where they are, keyed by a broker id.

use crate::channel::PluginChannel;
use crate::conn::{self, TlsInfoSlot};
use crate::error::Error;
use crate::proto::plugin::ConnInfo;
use crate::proto::plugin::conn_info::Knock;
use crate::proto::plugin::grpc_broker_server::GrpcBroker;
use crate::shutdown::Shutdown;
use rpcplugin_transport::{Addr, ListenConfig, Listener, Network};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::{Request, Response, Status, Streaming};

/// How long a dial waits for the peer's connection info, and how long an
/// unclaimed connection info is kept (go-plugin: 5 s each).
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
            }),
        }
    }

    /// A fresh id for [`Broker::accept_and_serve`] (1, 2, 3, ...).
    pub fn next_id(&self) -> u32 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Serves `routes` on a new socket and tells the peer where, under `id`.
    /// Returns once the server is listening; it runs until shutdown.
    pub async fn accept_and_serve(&self, id: u32, routes: Routes) -> Result<(), Error> {
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
        let shutdown = self.inner.shutdown.clone();
        let incoming = crate::incoming::incoming(listener, tls);
        let server = tokio::spawn(async move {
            let _own_dir = own_dir;
            let served = Server::builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, shutdown.wait())
                .await;
            if let Err(err) = served {
                tracing::warn!(id, %err, "brokered server failed");
            }
        });
        if let Ok(mut servers) = self.inner.servers.lock() {
            servers.retain(|s| !s.is_finished());
            servers.push(server);
        }
        self.send(ConnInfo {
            service_id: id,
            network: addr.network().to_string(),
            address: addr.to_string(),
            knock: None,
        });
        tracing::debug!(id, %addr, "brokered server listening");
        Ok(())
    }

    /// Connects to the server the peer announced under `id`, waiting up to
    /// [`BROKER_TIMEOUT`] for the announcement.
    pub async fn dial(&self, id: u32) -> Result<PluginChannel, Error> {
        let info = self.wait_for(id).await?;
        let network = info.network.parse().map_err(|e| Error::Connect {
            addr: info.address.clone(),
            source: Box::new(e),
            hint: None,
        })?;
        let addr = Addr::parse(network, &info.address)?;
        let tls = self.inner.tls.as_ref().map(|t| t.client.clone());
        conn::connect(addr, tls, TlsInfoSlot::default(), BROKER_TIMEOUT).await
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

    fn send(&self, info: ConnInfo) {
        // Fails only once the broker stream is gone, when nobody can dial anyway.
        let _ = self.inner.out_tx.send(info);
    }

    async fn wait_for(&self, id: u32) -> Result<ConnInfo, Error> {
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
        match tokio::time::timeout(BROKER_TIMEOUT, rx).await {
            Ok(Ok(info)) => Ok(info),
            _ => {
                self.lock_slots().remove(&id);
                Err(Error::BrokerTimeout {
                    id,
                    timeout: BROKER_TIMEOUT,
                })
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
            // We never announce multiplexing, so a knock is a confused peer.
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
        let mut slots = self.lock_slots();
        slots
            .retain(|_, slot| !matches!(slot, Slot::Ready(_, at) if at.elapsed() > BROKER_TIMEOUT));
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
