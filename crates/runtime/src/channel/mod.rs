//! The host's gRPC channel to a plugin: calls go from the caller's task
//! straight into hyper's HTTP/2 connection, which one spawned task drives.
//!
//! tonic's `Channel` puts a `tower::Buffer` worker task between the two (for
//! load balancing and reconnects a plugin connection never needs), which
//! costs every call extra task wake-ups and thread hops on a multi-thread
//! runtime. A plugin connection is one connection to one process: when it
//! ends, the plugin is gone, and calls fail at once with
//! [`ChannelError::Closed`] instead of reconnecting.

mod deadline;
mod error;

pub use error::ChannelError;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::Status;
use tonic::body::Body;

/// HTTP/2 flow-control windows the host advertises: large enough that a
/// multi-megabyte value is not held up by WINDOW_UPDATE round trips.
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 8 << 20;
/// Largest DATA frame the host accepts (the HTTP/2 default, which Go and
/// Python peers send anyway).
const MAX_FRAME_SIZE: u32 = 16 << 10;
/// Largest header block the host accepts (hyper's and tonic's default).
const MAX_HEADER_LIST_SIZE: u32 = 16 << 10;
/// Bytes hyper buffers per stream before a sender waits for the peer.
const MAX_SEND_BUF_SIZE: usize = 1 << 20;

/// The `user-agent` of calls that carry none.
const USER_AGENT: &str = concat!("rpcplugin/", env!("CARGO_PKG_VERSION"));

/// The gRPC channel to a plugin, from [`Client::channel`](crate::Client::channel)
/// or [`Broker::dial`](crate::Broker::dial): hand it to any tonic-generated
/// client.
///
/// Cloning is cheap (a reference count and a queue handle) and every clone
/// shares the one HTTP/2 connection, so clone freely for concurrent calls.
/// When the connection ends (the plugin exited, or closed it), every call
/// fails at once with status `Unavailable` whose source is
/// [`ChannelError::Closed`]; [`PluginChannel::is_closed`] tells beforehand.
/// A `grpc-timeout` set with [`tonic::Request::set_timeout`] is enforced
/// here as well as by the plugin.
///
/// ```no_run
/// # async fn demo(client: rpcplugin_runtime::Client) -> Result<(), tonic::Status> {
/// use rpcplugin_kv::proto::{kv_client::KvClient, GetRequest};
/// let mut kv = KvClient::new(client.channel());
/// let value = kv.get(GetRequest { key: "hello".into() }).await?.into_inner().value;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PluginChannel {
    send: http2::SendRequest<Body>,
    conn: Arc<ConnState>,
}

/// What every clone knows about the connection.
struct ConnState {
    addr: String,
    /// Set by the connection task when the connection has ended: the error
    /// that ended it, if any.
    end: OnceLock<Option<Arc<hyper::Error>>>,
}

impl fmt::Debug for PluginChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginChannel")
            .field("addr", &self.conn.addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl PluginChannel {
    /// Runs the HTTP/2 handshake on a connected stream and spawns the task
    /// that drives the connection from then on.
    pub(crate) async fn handshake<T>(io: T, addr: String) -> Result<PluginChannel, hyper::Error>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (send, connection) = builder().handshake::<T, Body>(io).await?;
        let conn = Arc::new(ConnState {
            addr,
            end: OnceLock::new(),
        });
        tokio::spawn(drive(connection, conn.clone()));
        Ok(PluginChannel { send, conn })
    }

    /// Whether the connection has ended; calls then fail at once.
    pub fn is_closed(&self) -> bool {
        self.send.is_closed()
    }

    /// The plugin address this channel is connected to.
    pub fn addr(&self) -> &str {
        &self.conn.addr
    }
}

/// hyper's HTTP/2 client settings, every one spelled out: these are the
/// values tonic's `Endpoint` produced for this crate before (windows set,
/// adaptive window off, no keep-alive pings: the peer is a local process
/// whose death closes the socket).
fn builder() -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .adaptive_window(false)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .max_send_buf_size(MAX_SEND_BUF_SIZE)
        .keep_alive_interval(None::<Duration>)
        .keep_alive_while_idle(false);
    builder
}

/// Drives the connection until it ends, then records how.
async fn drive<F>(connection: F, conn: Arc<ConnState>)
where
    F: Future<Output = hyper::Result<()>>,
{
    let end = connection.await.err();
    match &end {
        Some(err) => tracing::debug!(addr = %conn.addr, %err, "plugin connection failed"),
        None => tracing::debug!(addr = %conn.addr, "plugin connection closed"),
    }
    let _ = conn.end.set(end.map(Arc::new));
}

impl ConnState {
    fn closed(&self, cause: Option<Arc<hyper::Error>>) -> Status {
        ChannelError::Closed {
            addr: self.addr.clone(),
            cause: cause.or_else(|| self.end.get().cloned().flatten()),
        }
        .into_status()
    }

    /// A failed call: the connection's end when that is what failed it.
    fn call_failed(&self, err: hyper::Error) -> Status {
        let connection_gone = err.is_canceled()
            || err.is_closed()
            || self.end.get().is_some()
            || connection_error(&err);
        if connection_gone {
            self.closed(Some(Arc::new(err)))
        } else {
            ChannelError::Call {
                addr: self.addr.clone(),
                source: err,
            }
            .into_status()
        }
    }
}

/// Whether a call failed because its connection did: an I/O error or a
/// GOAWAY under it, rather than a reset of its own stream.
fn connection_error(err: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.is_io() || h2.is_go_away();
        }
        if e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Gives a request without one the origin every call on this channel uses
/// (`http://localhost`, as go-plugin hosts send), and a user agent.
fn prepare(req: &mut Request<Body>) {
    let uri = req.uri_mut();
    if uri.scheme().is_none() || uri.authority().is_none() {
        let mut parts = std::mem::take(uri).into_parts();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(Authority::from_static("localhost"));
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(PathAndQuery::from_static("/"));
        }
        if let Ok(with_origin) = Uri::from_parts(parts) {
            *uri = with_origin;
        }
    }
    req.headers_mut()
        .entry(http::header::USER_AGENT)
        .or_insert(HeaderValue::from_static(USER_AGENT));
}

/// The answer to one call on a [`PluginChannel`]: the response head, with
/// the body still streaming.
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<Incoming>, Status>> + Send>>,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<Incoming>, Status>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl tower::Service<Request<Body>> for PluginChannel {
    type Response = Response<Incoming>;
    type Error = Status;
    type Future = ResponseFuture;

    /// Always ready: the connection queues calls itself, and a closed
    /// connection is reported by the call (generated clients would turn a
    /// readiness error into a bare `Unknown`).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> ResponseFuture {
        if self.send.is_closed() {
            let status = self.conn.closed(None);
            return ResponseFuture {
                inner: Box::pin(std::future::ready(Err(status))),
            };
        }
        prepare(&mut req);
        let deadline = deadline::from_headers(req.headers());
        let sent = self.send.send_request(req);
        let conn = self.conn.clone();
        let inner = async move {
            let answer = match deadline {
                None => sent.await,
                Some(timeout) => match tokio::time::timeout(timeout, sent).await {
                    Ok(answer) => answer,
                    Err(_) => return Err(ChannelError::DeadlineExceeded { timeout }.into_status()),
                },
            };
            answer.map_err(|err| conn.call_failed(err))
        };
        ResponseFuture {
            inner: Box::pin(inner),
        }
    }
}

#[cfg(test)]
mod tests;
