//! Connections under gRPC: TLS on top of transport streams, for both the
//! serving side (the connection type `incoming` feeds to
//! `serve_with_incoming`) and the dialling side (the stream under a
//! [`PluginChannel`]).

use crate::authority::AuthorityFix;
use crate::channel::PluginChannel;
use crate::error::Error;
use rpcplugin_certs::KeyType;
use rpcplugin_transport::{Addr, Stream};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio_rustls::TlsConnector;
use tonic::transport::server::Connected;

/// How long a TLS handshake may take before the connection is dropped.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// gRPC message size limit in both directions; go-plugin hosts allow
/// 2^31-1 bytes.
pub const MAX_MESSAGE_SIZE: usize = i32::MAX as usize;

/// What was negotiated on a TLS connection, for diagnostics and reports.
///
/// ```
/// use rpcplugin_runtime::TlsInfo;
/// let info = TlsInfo { version: "TLSv1_3".into(), cipher: "TLS13_AES_128_GCM_SHA256".into(), peer_key_type: None };
/// assert!(info.version.contains("1_3"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Protocol version, e.g. `TLSv1_3`.
    pub version: String,
    /// Cipher suite, e.g. `TLS13_AES_128_GCM_SHA256`.
    pub cipher: String,
    /// Key type of the certificate the peer presented, when recognised.
    pub peer_key_type: Option<KeyType>,
}

/// A connection under tonic: plaintext or TLS over a unix or TCP stream.
/// `T` is the server- or client-side TLS stream type, `P` the plaintext one.
pub(crate) enum Conn<T, P = Stream> {
    Plain(P),
    Tls(Box<T>),
}

/// A served connection. Plaintext connections get their client header
/// blocks normalised for h2 ([`AuthorityFix`]); TLS connections do not need
/// it: a gRPC C-core client can only verify a plugin certificate (issued for
/// `localhost`) by setting `grpc.ssl_target_name_override`, and C core then
/// sends that name as `:authority` too. Skipping the filter there saves an
/// HPACK decode and re-encode of every request's headers, the largest
/// per-call cost of the serving side.
pub(crate) type ServerConn = ServerConnOf<Stream>;
/// A served connection over any byte stream (a socket, or a multiplexed
/// stream when the broker multiplexes).
pub(crate) type ServerConnOf<S> = Conn<tokio_rustls::server::TlsStream<S>, AuthorityFix<S>>;
/// A dialled connection, with the server's first bytes read ahead.
type ClientConn<S = Stream> = Replay<Conn<tokio_rustls::client::TlsStream<S>, S>>;

/// How long `dial` waits for the server's first bytes after a TLS
/// handshake. HTTP/2 servers (h2, grpc-go, grpc's C core) send SETTINGS at
/// once, so this normally ends in well under a millisecond.
const FIRST_BYTES_WAIT: Duration = Duration::from_millis(200);

impl<S> Connected for ServerConnOf<S> {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Conn::Plain($s) => $e,
            Conn::Tls($s) => $e,
        }
    };
}

impl<T: AsyncRead + Unpin, P: AsyncRead + Unpin> AsyncRead for Conn<T, P> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl<T: AsyncWrite + Unpin, P: AsyncWrite + Unpin> AsyncWrite for Conn<T, P> {
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
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Where the dialling side records what the last TLS handshake negotiated.
pub(crate) type TlsInfoSlot = Arc<Mutex<Option<TlsInfo>>>;

/// Connects a [`PluginChannel`] to `addr`, over TLS when `tls` is set:
/// dial, TLS handshake and HTTP/2 handshake, all within `timeout`.
///
/// The connection is made now, so a refused dial or a failed TLS handshake
/// is reported here rather than on the first call.
pub(crate) async fn connect(
    addr: Addr,
    tls: Option<Arc<rustls::ClientConfig>>,
    info: TlsInfoSlot,
    timeout: Duration,
) -> Result<PluginChannel, Error> {
    let label = addr.to_string();
    let dial = async move {
        rpcplugin_transport::dial(&addr)
            .await
            .map_err(io::Error::other)
    };
    connect_over(label, dial, tls, info, timeout).await
}

/// [`connect`] over the stream `open` yields (a socket, or a multiplexed
/// stream); `label` names the connection in errors.
pub(crate) async fn connect_over<S>(
    label: String,
    open: impl Future<Output = io::Result<S>>,
    tls: Option<Arc<rustls::ClientConfig>>,
    info: TlsInfoSlot,
    timeout: Duration,
) -> Result<PluginChannel, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connector = tls.map(TlsConnector::from);
    let connecting = async {
        let stream = open.await.map_err(|err| Error::from_connect(&label, err))?;
        let io = secure(stream, connector, &info)
            .await
            .map_err(|err| Error::from_connect(&label, err))?;
        PluginChannel::handshake(io, label.clone())
            .await
            .map_err(|err| Error::from_connect(&label, err))
    };
    tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| Error::ConnectTimeout {
            addr: label.clone(),
            timeout,
        })?
}

/// The TLS handshake on a dialled stream, when TLS is on.
async fn secure<S>(
    stream: S,
    connector: Option<TlsConnector>,
    info: &TlsInfoSlot,
) -> io::Result<ClientConn<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(connector) = connector else {
        return Ok(Replay::new(Conn::Plain(stream), Vec::new()));
    };
    let tls = tokio::time::timeout(
        TLS_HANDSHAKE_TIMEOUT,
        connector.connect(rpcplugin_certs::server_name(), stream),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    let (_, session) = tls.get_ref();
    let negotiated = TlsInfo {
        version: session
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher: session
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default(),
        peer_key_type: session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| rpcplugin_certs::cert_key_type(cert).ok()),
    };
    if let Ok(mut slot) = info.lock() {
        *slot = Some(negotiated);
    }
    // With TLS 1.3 the client finishes its handshake before the server has
    // judged the client's certificate; a refusal arrives as an alert on the
    // first read. Reading ahead here makes it a connect error with its
    // cause, instead of a broken pipe or a failed first call later.
    let mut conn = Conn::Tls(Box::new(tls));
    let mut first = vec![0u8; 512];
    let prefix = match tokio::time::timeout(FIRST_BYTES_WAIT, conn.read(&mut first)).await {
        Ok(Ok(0)) => {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the plugin closed the connection right after the TLS handshake: it did not accept this host's certificate",
            ));
        }
        Ok(Ok(n)) => {
            first.truncate(n);
            first
        }
        Ok(Err(err)) => return Err(err),
        // A server that waits for the client's preface: go on without.
        Err(_) => Vec::new(),
    };
    Ok(Replay::new(conn, prefix))
}

/// A stream whose first bytes were already read; they are replayed first.
pub(crate) struct Replay<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Replay<S> {
    fn new(inner: S, prefix: Vec<u8>) -> Replay<S> {
        Replay {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(rest) = this.prefix.get(this.pos..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

crate::io_util::write_through!(Replay);
