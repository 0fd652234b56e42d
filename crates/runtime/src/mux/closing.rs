//! The socket under a yamux session as the session's own close sees it.
//!
//! Closing a session writes a GoAway frame, flushes and shuts the socket
//! down. When the peer hung up first (a plugin that exits right after
//! answering the host's shutdown call, a host that stopped first), that
//! write fails with a broken pipe or a reset, and rust-yamux reports the
//! close as failed at warn level. Once this side has begun closing, a peer
//! that is already gone means the connection is closed: this wrapper turns
//! exactly those errors into success, and only from then on.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `T` whose write-side errors that mean "the peer is gone" become success
/// after [`Closing::begin`].
#[derive(Debug)]
pub(crate) struct Closable<T> {
    io: T,
    closing: Arc<AtomicBool>,
}

/// Marks a [`Closable`] as closing.
#[derive(Debug, Clone)]
pub(crate) struct Closing(Arc<AtomicBool>);

impl Closing {
    /// From now on, a peer that hung up no longer fails writes.
    pub(crate) fn begin(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl<T> Closable<T> {
    /// `io` and the handle that marks it as closing.
    pub(crate) fn new(io: T) -> (Closable<T>, Closing) {
        let closing = Arc::new(AtomicBool::new(false));
        let handle = Closing(Arc::clone(&closing));
        (Closable { io, closing }, handle)
    }

    /// `result`, or success in its place when closing has begun and the
    /// error says the peer is gone.
    fn settle<R>(&self, result: io::Result<R>, done: R) -> io::Result<R> {
        match result {
            Err(err) if self.closing.load(Ordering::Acquire) && peer_gone(&err) => {
                tracing::trace!(%err, "peer already gone while closing");
                Ok(done)
            }
            other => other,
        }
    }
}

fn peer_gone(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for Closable<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Closable<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, buf));
        Poll::Ready(self.settle(result, buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = std::task::ready!(Pin::new(&mut self.io).poll_flush(cx));
        Poll::Ready(self.settle(result, ()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = std::task::ready!(Pin::new(&mut self.io).poll_shutdown(cx));
        Poll::Ready(self.settle(result, ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A connected pair whose far end has hung up.
    async fn hung_up() -> tokio::net::UnixStream {
        let (near, far) = tokio::net::UnixStream::pair().expect("pair");
        drop(far);
        near
    }

    #[tokio::test]
    async fn a_gone_peer_fails_writes_until_closing_begins() {
        let (mut io, closing) = Closable::new(hung_up().await);
        let err = io.write_all(b"data").await.expect_err("peer gone");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        closing.begin();
        io.write_all(b"goaway").await.expect("closed, not failed");
        io.flush().await.expect("flush");
        io.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn a_yamux_close_after_the_peer_hung_up_succeeds() {
        use tokio_util::compat::TokioAsyncReadCompatExt;
        let (io, closing) = Closable::new(hung_up().await);
        let mut conn =
            yamux::Connection::new(io.compat(), yamux::Config::default(), yamux::Mode::Client);
        closing.begin();
        futures::future::poll_fn(|cx| conn.poll_close(cx))
            .await
            .expect("a close after the peer left is a close");
    }

    #[tokio::test]
    async fn without_closing_a_yamux_close_after_the_peer_hung_up_fails() {
        use tokio_util::compat::TokioAsyncReadCompatExt;
        let (io, _closing) = Closable::new(hung_up().await);
        let mut conn =
            yamux::Connection::new(io.compat(), yamux::Config::default(), yamux::Mode::Client);
        let err = futures::future::poll_fn(|cx| conn.poll_close(cx))
            .await
            .expect_err("the GoAway write meets a broken pipe");
        assert!(err.to_string().contains("Broken pipe"), "{err}");
    }
}
