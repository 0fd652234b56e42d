//! The yamux session under a multiplexed plugin connection: one driver task
//! owns it, opens streams on request and routes inbound streams the way
//! go-plugin's grpcmux does.

use super::closing::{Closable, Closing};
use super::stream::MuxStream;
use crate::shutdown::Shutdown;
use futures::future::poll_fn;
use rpcplugin_transport::Stream;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// Streams a session may have open at once. rust-yamux refuses a peer's
/// stream past its cap with a GoAway that ends the session, so the cap is
/// far above go-plugin's accept backlog of 256.
pub(crate) const MAX_STREAMS: usize = 1024;

/// hashicorp/yamux's fixed stream window, which rust-yamux must not grow
/// past: Go then sends frames as large as the window, and rust-yamux
/// refuses frames over 1 MiB by ending the session.
const STREAM_WINDOW: usize = 256 * 1024;

/// How long `open` waits for the session to exist (go-plugin: the plugin
/// waits 5 s for the host's connection).
pub(crate) const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long closing the session may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Inbound streams a listener may have waiting.
const BACKLOG: usize = 16;

/// Which end of the session this side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The host: yamux client, odd stream ids, opens the main stream.
    Host,
    /// The plugin: yamux server, even stream ids, serves the main stream.
    Plugin,
}

type OpenRequest = oneshot::Sender<Result<yamux::Stream, yamux::ConnectionError>>;

#[derive(Debug, Clone)]
enum State {
    /// No connection yet (the plugin before the host dialled).
    Waiting,
    Open(mpsc::UnboundedSender<OpenRequest>),
    Closed,
}

/// Where inbound streams go.
#[derive(Debug, Default)]
struct Routes {
    /// The id whose knock was acknowledged last: the next inbound stream
    /// is its (go-plugin: a one-slot queue on the plugin, a per-id
    /// unblock on the host).
    knocked: Option<u32>,
    listeners: HashMap<u32, mpsc::Sender<MuxStream>>,
    /// The main gRPC server (plugin only): every stream not preceded by a
    /// knock.
    main: Option<mpsc::Sender<MuxStream>>,
}

/// A multiplexed connection between host and plugin: opens streams, and
/// hands inbound ones to the main server or to the brokered listener whose
/// id was knocked.
#[derive(Debug, Clone)]
pub(crate) struct Muxer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    role: Role,
    state: watch::Sender<State>,
    routes: Mutex<Routes>,
    /// go-plugin's dial mutex: knock, ack and stream open happen one id at
    /// a time.
    dial_lock: tokio::sync::Mutex<()>,
}

impl Muxer {
    /// A muxer whose session starts with [`Muxer::attach`].
    pub(crate) fn new(role: Role) -> Muxer {
        Muxer {
            inner: Arc::new(Inner {
                role,
                state: watch::channel(State::Waiting).0,
                routes: Mutex::new(Routes::default()),
                dial_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Runs the session over `io` until `shutdown` fires or the peer goes
    /// away; then every listener and the main server see their stream end.
    pub(crate) fn attach(&self, io: Stream, shutdown: Shutdown) {
        let mode = match self.inner.role {
            Role::Host => yamux::Mode::Client,
            Role::Plugin => yamux::Mode::Server,
        };
        let (io, closing) = Closable::new(io);
        let conn = yamux::Connection::new(io.compat(), config(), mode);
        let (open_tx, open_rx) = mpsc::unbounded_channel();
        self.inner.state.send_replace(State::Open(open_tx));
        tokio::spawn(drive(self.clone(), conn, closing, open_rx, shutdown));
    }

    /// Marks the session as never coming (the plugin gave up waiting).
    pub(crate) fn abandon(&self) {
        self.close_routes();
    }

    /// Resolves once the session has ended (or was abandoned).
    pub(crate) async fn closed(&self) {
        let mut rx = self.inner.state.subscribe();
        let _ = rx.wait_for(|s| matches!(s, State::Closed)).await;
    }

    /// Opens a stream to the peer, its SYN sent.
    pub(crate) async fn open(&self) -> io::Result<MuxStream> {
        let mut rx = self.inner.state.subscribe();
        let state = tokio::time::timeout(
            ATTACH_TIMEOUT,
            rx.wait_for(|s| !matches!(s, State::Waiting)),
        )
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                "the multiplexed connection was not established in time",
            )
        })?
        .map_err(|_| closed())?
        .clone();
        let State::Open(requests) = state else {
            return Err(closed());
        };
        let (tx, rx) = oneshot::channel();
        requests.send(tx).map_err(|_| closed())?;
        let stream = rx
            .await
            .map_err(|_| closed())?
            .map_err(|err| io::Error::other(format!("cannot open a multiplexed stream: {err}")))?;
        MuxStream::announce(stream).await
    }

    /// The main server's streams (plugin side): every inbound stream not
    /// preceded by a knock.
    pub(crate) fn main_streams(&self) -> mpsc::Receiver<MuxStream> {
        let (tx, rx) = mpsc::channel(BACKLOG);
        self.lock_routes().main = Some(tx);
        rx
    }

    /// The streams for brokered id `id`, each after a knock for it.
    pub(crate) fn listen(&self, id: u32) -> mpsc::Receiver<MuxStream> {
        let (tx, rx) = mpsc::channel(BACKLOG);
        self.lock_routes().listeners.insert(id, tx);
        rx
    }

    /// Prepares for the peer's stream for `id` after its knock, as
    /// go-plugin's `AcceptKnock`: the text is the ack's error when nothing
    /// listens on `id`.
    pub(crate) fn accept_knock(&self, id: u32) -> Result<(), String> {
        let mut routes = self.lock_routes();
        if !routes.listeners.contains_key(&id) {
            return Err(format!("no listener for id {id}"));
        }
        routes.knocked = Some(id);
        Ok(())
    }

    /// Held across knock, ack and stream open.
    pub(crate) async fn dial_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.dial_lock.lock().await
    }

    fn lock_routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.inner
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends an inbound stream where it belongs; a stream nobody waits for
    /// is dropped, which resets it.
    fn route(&self, stream: yamux::Stream) {
        let id = stream.id().val();
        let mut routes = self.lock_routes();
        let target = match routes.knocked.take() {
            Some(broker_id) => routes.listeners.get(&broker_id).cloned(),
            None => routes.main.clone(),
        };
        drop(routes);
        let Some(target) = target else {
            tracing::debug!(stream = id, "inbound stream nobody listens for; reset");
            return;
        };
        tokio::spawn(async move {
            match MuxStream::announce(stream).await {
                Ok(stream) => {
                    // A full or closed backlog drops (resets) the stream.
                    let _ = target.try_send(stream);
                }
                Err(err) => tracing::debug!(stream = id, %err, "inbound stream failed"),
            }
        });
    }

    fn close_routes(&self) {
        let mut routes = self.lock_routes();
        routes.listeners.clear();
        routes.main = None;
        routes.knocked = None;
        drop(routes);
        self.inner.state.send_replace(State::Closed);
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the multiplexed connection is closed",
    )
}

/// go-plugin's yamux settings as far as the wire sees them: 256 KiB
/// stream windows that never grow, 16 KiB frames.
fn config() -> yamux::Config {
    let mut config = yamux::Config::default();
    config.set_max_num_streams(MAX_STREAMS);
    config.set_max_connection_receive_window(Some(MAX_STREAMS * STREAM_WINDOW));
    config
}

enum Event {
    Request(OpenRequest),
    Opened(Result<yamux::Stream, yamux::ConnectionError>),
    Inbound(yamux::Stream),
    Ended(Option<yamux::ConnectionError>),
    Stop,
}

/// Owns the connection: answers pings and window updates (by polling it
/// without pause), opens requested streams in order, routes inbound ones.
async fn drive(
    muxer: Muxer,
    mut conn: yamux::Connection<Compat<Closable<Stream>>>,
    closing: Closing,
    mut requests: mpsc::UnboundedReceiver<OpenRequest>,
    shutdown: Shutdown,
) {
    let mut waiting: std::collections::VecDeque<OpenRequest> = Default::default();
    let mut stop = std::pin::pin!(shutdown.wait());
    let mut requests_open = true;
    loop {
        let event = poll_fn(|cx| {
            if stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Stop);
            }
            if requests_open {
                match requests.poll_recv(cx) {
                    Poll::Ready(Some(request)) => return Poll::Ready(Event::Request(request)),
                    // Every handle is gone: keep serving inbound streams.
                    Poll::Ready(None) => requests_open = false,
                    Poll::Pending => {}
                }
            }
            if !waiting.is_empty()
                && let Poll::Ready(opened) = conn.poll_new_outbound(cx)
            {
                return Poll::Ready(Event::Opened(opened));
            }
            match conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(stream))) => Poll::Ready(Event::Inbound(stream)),
                Poll::Ready(Some(Err(err))) => Poll::Ready(Event::Ended(Some(err))),
                Poll::Ready(None) => Poll::Ready(Event::Ended(None)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match event {
            Event::Request(request) => waiting.push_back(request),
            Event::Opened(opened) => {
                if let Some(request) = waiting.pop_front() {
                    let _ = request.send(opened);
                }
            }
            Event::Inbound(stream) => muxer.route(stream),
            Event::Ended(err) => {
                match err {
                    Some(err) => tracing::debug!(%err, "multiplexed connection ended"),
                    None => tracing::debug!("multiplexed connection closed by the peer"),
                }
                break;
            }
            Event::Stop => {
                // The peer may have hung up already (a plugin exits right
                // after answering the host's shutdown call): that is a
                // close, not a failure to close.
                closing.begin();
                let close = poll_fn(|cx| conn.poll_close(cx));
                match tokio::time::timeout(CLOSE_TIMEOUT, close).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => tracing::debug!(%err, "multiplexed connection close failed"),
                    Err(_) => {
                        tracing::debug!("multiplexed connection did not close in time; dropped")
                    }
                }
                break;
            }
        }
    }
    muxer.close_routes();
}
