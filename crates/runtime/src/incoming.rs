//! The serving side's accept path: connections on the plugin's listener
//! become the stream of connections tonic serves, each only once it proved
//! to be a client (TLS handshake done, or the plaintext HTTP/2 preface
//! read), within bounded time, memory and log volume.
//!
//! - Every TLS handshake and preface wait runs in its own task with the
//!   handshake timeout: a slow or hostile peer never blocks the accept loop.
//! - At most [`MAX_TLS_HANDSHAKES`] TLS handshakes are in flight; further
//!   connections wait in the listen backlog until one ends.
//! - Accept errors (EMFILE, ENFILE, ...) back off from 5 ms to 1 s, as Go's
//!   `net/http` server does, and are logged at most once a second.

use crate::authority::AuthorityFix;
use crate::conn::{Conn, ServerConn, ServerConnOf, TLS_HANDSHAKE_TIMEOUT};
use rpcplugin_transport::Listener;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// Most TLS handshakes run at once; each holds a task, a descriptor and
/// rustls buffers for up to [`TLS_HANDSHAKE_TIMEOUT`].
pub(crate) const MAX_TLS_HANDSHAKES: usize = 128;

/// How long a plaintext client has to send the HTTP/2 client preface.
pub(crate) const PREFACE_TIMEOUT: Duration = TLS_HANDSHAKE_TIMEOUT;

/// The HTTP/2 client connection preface (RFC 9113 3.4).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Accepts connections on `listener` and yields those that completed their
/// TLS handshake (with ALPN `h2`) or sent the HTTP/2 preface. The loop ends
/// when the returned stream is dropped.
pub(crate) fn incoming(
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<ServerConn>> {
    let (tx, rx) = mpsc::channel::<io::Result<ServerConn>>(16);
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::spawn(accept_loop(listener, acceptor, tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

async fn accept_loop(
    listener: Listener,
    acceptor: Option<TlsAcceptor>,
    tx: mpsc::Sender<io::Result<ServerConn>>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_TLS_HANDSHAKES));
    let mut errors = AcceptErrors::default();
    loop {
        // A TLS connection is accepted only with a handshake slot free.
        let permit = match &acceptor {
            Some(_) => tokio::select! {
                permit = Arc::clone(&handshakes).acquire_owned() => permit.ok(),
                () = tx.closed() => break,
            },
            None => None,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = tx.closed() => break,
        };
        let stream = match accepted {
            Ok(stream) => {
                errors.reset();
                stream
            }
            Err(err) => {
                let pause = errors.record(&err);
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = tx.closed() => break,
                }
            }
        };
        let tx = tx.clone();
        match acceptor.clone() {
            Some(acceptor) => {
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Some(conn) = tls_handshake(&acceptor, stream).await {
                        let _ = tx.send(Ok(conn)).await;
                    }
                });
            }
            None => {
                tokio::spawn(async move {
                    if let Some(conn) = read_preface(stream).await {
                        let _ = tx.send(Ok(conn)).await;
                    }
                });
            }
        }
    }
    drop(listener);
}

/// The server side of a TLS handshake, bounded in time; a client must
/// negotiate ALPN `h2`.
pub(crate) async fn tls_handshake<S>(acceptor: &TlsAcceptor, stream: S) -> Option<ServerConnOf<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) if tls.get_ref().1.alpn_protocol() != Some(b"h2") => {
            // A client that offers no ALPN at all gets through rustls;
            // grpc-go refuses it, and so does this.
            tracing::warn!(
                "TLS client did not negotiate ALPN h2, which gRPC requires; connection refused"
            );
            None
        }
        Ok(Ok(tls)) => Some(Conn::Tls(Box::new(tls))),
        Ok(Err(err)) => {
            tracing::warn!(%err, "TLS handshake with a client failed; connection refused");
            None
        }
        Err(_) => {
            tracing::warn!("TLS handshake with a client timed out; connection dropped");
            None
        }
    }
}

/// Waits, bounded in time, for a plaintext client's HTTP/2 preface.
pub(crate) async fn read_preface<S>(mut stream: S) -> Option<ServerConnOf<S>>
where
    S: AsyncRead + Unpin,
{
    let mut preface = [0u8; PREFACE.len()];
    match tokio::time::timeout(PREFACE_TIMEOUT, stream.read_exact(&mut preface)).await {
        Ok(Ok(_)) if preface == *PREFACE => Some(Conn::Plain(AuthorityFix::after_preface(stream))),
        Ok(Ok(_)) => {
            tracing::debug!("plaintext client did not send the HTTP/2 preface; connection refused");
            None
        }
        Ok(Err(err)) => {
            tracing::debug!(%err, "plaintext client left before its HTTP/2 preface");
            None
        }
        Err(_) => {
            tracing::debug!(
                timeout = ?PREFACE_TIMEOUT,
                "plaintext client sent no HTTP/2 preface in time; connection dropped"
            );
            None
        }
    }
}

/// Backoff and log rate limit for failing accepts.
#[derive(Debug, Default)]
struct AcceptErrors {
    /// The current pause; zero after a successful accept.
    pause: Duration,
    /// When the last "accept failed" line was logged.
    logged: Option<Instant>,
    /// Errors since that line.
    suppressed: u64,
}

impl AcceptErrors {
    const FIRST_PAUSE: Duration = Duration::from_millis(5);
    const MAX_PAUSE: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(1);

    /// Counts a failed accept, logs it when a second has passed since the
    /// last line, and returns how long to pause before the next accept.
    fn record(&mut self, err: &io::Error) -> Duration {
        self.pause = if self.pause.is_zero() {
            Self::FIRST_PAUSE
        } else {
            (self.pause * 2).min(Self::MAX_PAUSE)
        };
        let due = self.logged.is_none_or(|at| at.elapsed() >= Self::LOG_EVERY);
        if due {
            tracing::warn!(
                %err,
                suppressed = self.suppressed,
                retry_in = ?self.pause,
                "accept failed"
            );
            self.logged = Some(Instant::now());
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        self.pause
    }

    fn reset(&mut self) {
        self.pause = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpcplugin_certs::{Identity, KeyType, PeerTrust};
    use rpcplugin_transport::ListenConfig;
    use tokio::io::AsyncWriteExt;
    use tokio_rustls::TlsConnector;
    use tokio_stream::StreamExt;

    /// Whether `incoming` yields a TLS connection from a client with the
    /// right certificate that offers `alpn`.
    async fn served(alpn: Vec<Vec<u8>>) -> bool {
        let host = Identity::generate(KeyType::EcP256).unwrap();
        let plugin = Identity::generate(KeyType::EcP256).unwrap();
        let server =
            rpcplugin_certs::server_config(&plugin, PeerTrust::Pinned(host.cert_der().clone()))
                .unwrap();
        let client = rpcplugin_certs::client_config(
            Some(&host),
            PeerTrust::Pinned(plugin.cert_der().clone()),
        )
        .unwrap();
        let mut client = Arc::unwrap_or_clone(client);
        client.alpn_protocols = alpn;
        let listener = Listener::bind(&ListenConfig::default()).unwrap();
        let addr = listener.local_addr().clone();
        let mut incoming = incoming(listener, Some(server));
        let stream = rpcplugin_transport::dial(&addr).await.unwrap();
        let _tls = TlsConnector::from(Arc::new(client))
            .connect(rpcplugin_certs::server_name(), stream)
            .await;
        tokio::time::timeout(Duration::from_millis(500), incoming.next())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn tls_clients_must_negotiate_h2() {
        assert!(served(vec![b"h2".to_vec()]).await);
        assert!(
            !served(Vec::new()).await,
            "a client without ALPN was served"
        );
    }

    #[tokio::test]
    async fn plaintext_clients_are_served_after_their_preface_only() {
        let listener = Listener::bind(&ListenConfig::default()).unwrap();
        let addr = listener.local_addr().clone();
        let mut incoming = incoming(listener, None);
        let mut wrong = rpcplugin_transport::dial(&addr).await.unwrap();
        wrong
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut right = rpcplugin_transport::dial(&addr).await.unwrap();
        right.write_all(PREFACE).await.unwrap();
        // Only the client that sent the preface comes out, and the server
        // reads the preface as if nothing had consumed it.
        let mut conn = incoming.next().await.unwrap().unwrap();
        let mut got = [0u8; PREFACE.len()];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, PREFACE);
        drop(wrong);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), incoming.next())
                .await
                .is_err()
        );
    }

    #[test]
    fn accept_errors_back_off_and_are_logged_once_a_second() {
        let mut errors = AcceptErrors::default();
        let err = io::Error::from_raw_os_error(24);
        let pauses: Vec<_> = (0..10).map(|_| errors.record(&err)).collect();
        assert_eq!(pauses[0], Duration::from_millis(5));
        assert_eq!(pauses[1], Duration::from_millis(10));
        assert_eq!(pauses[9], Duration::from_secs(1));
        // The first was logged, the nine after it within the second were not.
        assert_eq!(errors.suppressed, 9);
        errors.reset();
        assert_eq!(errors.record(&err), Duration::from_millis(5));
    }
}
