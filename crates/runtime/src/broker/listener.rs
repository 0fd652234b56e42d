//! [`Broker::accept`](super::Broker::accept): a brokered socket handed to the
//! caller as a listener (go-plugin's `GRPCBroker.Accept`), for serving it
//! with a server of one's own instead of [`Broker::accept_and_serve`](super::Broker::accept_and_serve).

use crate::conn::ServerConn;
use rpcplugin_transport::Addr;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// The connections made to one brokered socket, from
/// [`Broker::accept`](super::Broker::accept).
///
/// Each one is ready for an HTTP/2 (gRPC) server: the TLS handshake is done
/// when the broker uses TLS (the same pinned identities as the plugin's
/// main connection), the HTTP/2 preface is checked when it does not. It is
/// a [`Stream`] of connections, so tonic serves it directly:
///
/// ```no_run
/// # async fn demo(broker: rpcplugin_runtime::Broker, routes: tonic::service::Routes) -> Result<(), Box<dyn std::error::Error>> {
/// let id = broker.next_id();
/// let listener = broker.accept(id).await?;
/// // ... send `id` to the peer ...
/// tonic::transport::Server::builder()
///     .timeout(std::time::Duration::from_secs(5))
///     .add_routes(routes)
///     .serve_with_incoming(listener)
///     .await?;
/// # Ok(()) }
/// ```
///
/// Dropping it closes the socket (and removes its private directory).
pub struct BrokerListener {
    pub(super) incoming: ReceiverStream<io::Result<ServerConn>>,
    pub(super) addr: Addr,
    pub(super) _own_dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for BrokerListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerListener")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl BrokerListener {
    /// The address announced to the peer.
    pub fn local_addr(&self) -> &Addr {
        &self.addr
    }

    /// The next connection; `None` once the listener has stopped.
    pub async fn accept(&mut self) -> Option<io::Result<BrokerConnection>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for BrokerListener {
    type Item = io::Result<BrokerConnection>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.incoming)
            .poll_next(cx)
            .map(|next| next.map(|conn| conn.map(|inner| BrokerConnection { inner })))
    }
}

/// One connection accepted by a [`BrokerListener`]: bytes after the TLS
/// handshake, starting with the HTTP/2 preface.
pub struct BrokerConnection {
    inner: ServerConn,
}

impl std::fmt::Debug for BrokerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConnection").finish_non_exhaustive()
    }
}

impl Connected for BrokerConnection {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for BrokerConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for BrokerConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
