//! The host's gRPC channel to a plugin: a call goes from the caller's task
//! straight onto its HTTP/2 stream (h2), and one spawned task drives the
//! connection's I/O.
//!
//! tonic's `Channel` puts a `tower::Buffer` worker task in front of hyper's
//! connection (for load balancing and reconnects a plugin connection never
//! needs), and hyper's HTTP/2 client adds a task per request that waits for
//! the response: every call paid those wake-ups and, on a multi-thread
//! runtime, thread hops. Here the caller writes its request and polls its
//! response itself. A plugin connection is one connection to one process:
//! when it ends the plugin is gone, and calls fail at once with
//! [`ChannelError::Closed`] instead of reconnecting.

mod body;
mod deadline;
mod drive;
mod error;
pub(crate) mod frames;
mod options;

pub use body::ResponseBody;
pub use error::ChannelError;
use options::CallOptions;
pub(crate) use options::ChannelSettings;

use body::Pump;
use bytes::Bytes;
use drive::Driver;
use futures::FutureExt;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
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
/// Bytes h2 buffers per stream before a sender waits for the peer.
const MAX_SEND_BUF_SIZE: usize = 1 << 20;
/// Streams opened before the plugin's SETTINGS say how many it allows.
const INITIAL_MAX_SEND_STREAMS: usize = 100;

/// The `user-agent` of calls that carry none.
const USER_AGENT: &str = concat!("rpcplugin/", env!("CARGO_PKG_VERSION"));

/// The gRPC channel to a plugin, from [`Client::channel`](crate::Client::channel)
/// or [`Broker::dial`](crate::Broker::dial): hand it to any tonic-generated
/// client.
///
/// Cloning is cheap (two reference counts) and every clone shares the one
/// HTTP/2 connection, so clone freely for concurrent calls. When the
/// connection ends (the plugin exited, or closed it), every call fails at
/// once with status `Unavailable` whose source is [`ChannelError::Closed`];
/// [`PluginChannel::is_closed`] tells beforehand. A `grpc-timeout` set with
/// [`tonic::Request::set_timeout`] is enforced here as well as by the
/// plugin.
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
    send: h2::client::SendRequest<Bytes>,
    conn: Arc<ConnState>,
    /// Per-call settings of this handle and its clones.
    options: Option<Arc<CallOptions>>,
}

/// What every clone and every response body knows about the connection.
pub(crate) struct ConnState {
    addr: String,
    /// Set by the connection task when the connection has ended: the error
    /// that ended it, if any.
    end: OnceLock<Option<Arc<h2::Error>>>,
    /// The connection's PING handle, until keep-alive takes it.
    ping_pong: Mutex<Option<h2::PingPong>>,
    /// Set when keep-alive gave up on the plugin: how long the ping waited.
    keepalive_expired: OnceLock<Duration>,
    /// Wakes the connection task to close the connection.
    abort: tokio::sync::Notify,
    /// The connection itself, polled by its task or by a caller.
    driver: Driver,
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
    pub(crate) async fn handshake<T>(io: T, addr: String) -> Result<PluginChannel, h2::Error>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, mut connection) = builder().handshake::<T, Bytes>(io).await?;
        let ping_pong = Mutex::new(connection.ping_pong());
        let conn = Arc::new(ConnState {
            addr,
            end: OnceLock::new(),
            ping_pong,
            keepalive_expired: OnceLock::new(),
            abort: tokio::sync::Notify::new(),
            driver: Driver::new(Box::pin(connection)),
        });
        tokio::spawn(drive(conn.clone()));
        Ok(PluginChannel {
            send,
            conn,
            options: None,
        })
    }

    /// Whether the connection has ended; calls then fail at once.
    pub fn is_closed(&self) -> bool {
        self.conn.end.get().is_some()
    }

    /// The plugin address this channel is connected to.
    pub fn addr(&self) -> &str {
        &self.conn.addr
    }
}

/// The HTTP/2 client settings, every one spelled out. They are the values
/// tonic's `Endpoint` (through hyper) used for this crate before: windows
/// set, no adaptive window and no keep-alive pings (the peer is a local
/// process whose death closes the socket), no server push.
fn builder() -> h2::client::Builder {
    let mut builder = h2::client::Builder::new();
    builder
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .max_send_buffer_size(MAX_SEND_BUF_SIZE)
        .initial_max_send_streams(INITIAL_MAX_SEND_STREAMS)
        .enable_push(false);
    builder
}

/// Drives the connection until it ends, then records how.
async fn drive(conn: Arc<ConnState>) {
    let end = tokio::select! {
        ended = poll_fn(|cx| conn.driver.poll_task(cx)) => ended,
        () = conn.abort.notified() => {
            conn.driver.close();
            None
        }
    };
    match &end {
        Some(err) => tracing::debug!(addr = %conn.addr, %err, "plugin connection failed"),
        None => tracing::debug!(addr = %conn.addr, "plugin connection closed"),
    }
    let _ = conn.end.set(end.map(Arc::new));
}

impl ConnState {
    fn closed(&self, cause: Option<Arc<h2::Error>>) -> Status {
        if let Some(timeout) = self.keepalive_expired.get() {
            return ChannelError::KeepaliveTimeout {
                addr: self.addr.clone(),
                timeout: *timeout,
            }
            .into_status();
        }
        ChannelError::Closed {
            addr: self.addr.clone(),
            cause: cause.or_else(|| self.end.get().cloned().flatten()),
        }
        .into_status()
    }

    /// A failed call: the connection's end when that is what failed it
    /// (an I/O error, a GOAWAY), otherwise the call's own stream error.
    fn call_failed(&self, err: h2::Error) -> Status {
        if err.is_io() || err.is_go_away() || self.end.get().is_some() {
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

/// One call: open the stream, send the body while waiting for the
/// response head, hand the rest of a streaming body to a task of its own.
async fn exchange(
    mut send: h2::client::SendRequest<Bytes>,
    req: Request<Body>,
    conn: Arc<ConnState>,
    limit: Option<usize>,
) -> Result<Response<ResponseBody>, Status> {
    let (head, body) = req.into_parts();
    let uri = head.uri.clone();
    let end_of_stream = http_body::Body::is_end_stream(&body);
    poll_fn(|cx| send.poll_ready(cx))
        .await
        .map_err(|err| conn.call_failed(err))?;
    // The request's frames are written by this task's own poll of the
    // connection when the guard goes, before the first wait (drive.rs).
    let mut inline = Some(conn.driver.inline());
    let (mut response, stream) = send
        .send_request(Request::from_parts(head, ()), end_of_stream)
        .map_err(|err| conn.call_failed(err))?;
    let mut pump = (!end_of_stream).then(|| Pump::new(body, stream));
    let mut head = poll_fn(|cx| {
        if let Some(sending) = &mut pump
            && sending.poll_unpin(cx).is_ready()
        {
            pump = None;
        }
        drop(inline.take());
        response.poll_unpin(cx)
    })
    .await
    .map_err(|err| conn.call_failed(err))?;
    // Taken at the first poll above; this only ends its borrow of `conn`.
    drop(inline);
    if let Some(rest) = pump {
        tokio::spawn(rest);
    }
    crate::unimplemented::name_the_call(uri.path(), head.headers_mut());
    Ok(head.map(|recv| ResponseBody::new(recv, conn, limit)))
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
    inner: Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Status>> + Send>>,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Status>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl tower::Service<Request<Body>> for PluginChannel {
    type Response = Response<ResponseBody>;
    type Error = Status;
    type Future = ResponseFuture;

    /// Always ready: each call waits for a free stream itself, and a closed
    /// connection is reported by the call (generated clients would turn a
    /// readiness error into a bare `Unknown`).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> ResponseFuture {
        if self.is_closed() {
            let status = self.conn.closed(None);
            return ResponseFuture {
                inner: Box::pin(std::future::ready(Err(status))),
            };
        }
        prepare(&mut req);
        let mut limit = None;
        if let Some(options) = &self.options {
            req = match options.intercept(req) {
                Ok(req) => req,
                Err(status) => {
                    return ResponseFuture {
                        inner: Box::pin(std::future::ready(Err(status))),
                    };
                }
            };
            if let Some(timeout) = options.timeout {
                deadline::set_default(req.headers_mut(), timeout);
            }
            limit = options.max_decoding_message_size;
        }
        let deadline = deadline::from_headers(req.headers());
        let call = exchange(self.send.clone(), req, self.conn.clone(), limit);
        let inner = async move {
            match deadline {
                None => call.await,
                Some(timeout) => tokio::time::timeout(timeout, call)
                    .await
                    .unwrap_or_else(|_| {
                        Err(ChannelError::DeadlineExceeded { timeout }.into_status())
                    }),
            }
        };
        ResponseFuture {
            inner: Box::pin(inner),
        }
    }
}

#[cfg(test)]
mod tests;
