//! One yamux stream as a tokio byte stream, with the two duties go-plugin's
//! hashicorp/yamux needs from the Rust side: an eager SYN/ACK, and a FIN
//! sent at most once.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

/// A multiplexed connection: what TLS and HTTP/2 run on when the broker
/// multiplexes.
#[derive(Debug)]
pub(crate) struct MuxStream {
    inner: Compat<yamux::Stream>,
    /// Our FIN went out: a second one makes hashicorp/yamux close the
    /// whole session, so later shutdowns are no-ops.
    closed: bool,
}

impl MuxStream {
    /// Wraps `stream` and sends its SYN (opened here) or ACK (accepted
    /// here) now, as an empty data frame.
    ///
    /// rust-yamux sends them lazily with the first data frame; go-plugin
    /// expects a stream to show up right after a knock, and hashicorp/yamux
    /// closes the whole session when a stream it opened stays
    /// unacknowledged for 75 s.
    pub(crate) async fn announce(mut stream: yamux::Stream) -> io::Result<MuxStream> {
        // tokio's `write_all(&[])` skips empty writes; this one reaches yamux.
        futures::AsyncWriteExt::write(&mut stream, &[]).await?;
        futures::AsyncWriteExt::flush(&mut stream).await?;
        Ok(MuxStream {
            inner: stream.compat(),
            closed: false,
        })
    }

    /// The yamux stream id (odd: opened by the host, even: by the plugin).
    pub(crate) fn id(&self) -> u32 {
        self.inner.get_ref().id().val()
    }
}

impl AsyncRead for MuxStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for MuxStream {
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
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Ok(()));
        }
        let done = Pin::new(&mut this.inner).poll_shutdown(cx);
        if done.is_ready() {
            this.closed = true;
        }
        done
    }
}
