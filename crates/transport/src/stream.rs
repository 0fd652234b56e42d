use crate::{Addr, TransportError};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connected byte stream over a unix socket or TCP.
#[derive(Debug)]
pub enum Stream {
    /// A unix socket connection.
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
    /// A TCP connection (with `TCP_NODELAY` set).
    Tcp(tokio::net::TcpStream),
}

/// Connects to `addr`. TCP connections get `TCP_NODELAY`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use rpcplugin_transport::{Addr, dial};
/// let err = dial(&Addr::Unix("/nonexistent/plugin.sock".into())).await.unwrap_err();
/// assert!(err.to_string().starts_with("cannot connect to /nonexistent/plugin.sock"));
/// # }
/// ```
pub async fn dial(addr: &Addr) -> Result<Stream, TransportError> {
    let dial_err = |source| TransportError::Dial {
        addr: addr.to_string(),
        source,
    };
    match addr {
        #[cfg(unix)]
        Addr::Unix(path) => Ok(Stream::Unix(
            tokio::net::UnixStream::connect(path)
                .await
                .map_err(dial_err)?,
        )),
        #[cfg(not(unix))]
        Addr::Unix(_) => Err(TransportError::Unsupported("unix sockets")),
        Addr::Tcp(sock) => {
            let stream = tokio::net::TcpStream::connect(sock)
                .await
                .map_err(dial_err)?;
            stream.set_nodelay(true).map_err(dial_err)?;
            Ok(Stream::Tcp(stream))
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            #[cfg(unix)]
            Stream::Unix($s) => $e,
            Stream::Tcp($s) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            #[cfg(unix)]
            Stream::Unix(s) => s.is_write_vectored(),
            Stream::Tcp(s) => s.is_write_vectored(),
        }
    }
}
