//! Serving gRPC on multiplexed streams: the main server and brokered
//! servers take their connections from the muxer instead of a listener.

use super::session::{MAX_STREAMS, Muxer};
use super::stream::MuxStream;
use crate::conn::ServerConnOf;
use crate::incoming::{read_preface, tls_handshake};
use crate::shutdown::Shutdown;
use std::io;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::Routes;
use tonic::transport::Server;

/// A served multiplexed connection.
pub(crate) type MuxServerConn = ServerConnOf<MuxStream>;

/// Turns `streams` into connections tonic serves: each once its TLS
/// handshake is done (ALPN `h2`) or its HTTP/2 preface was read, within
/// the same bounds as socket connections. Ends when `streams` ends.
pub(crate) fn incoming(
    mut streams: mpsc::Receiver<MuxStream>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> ReceiverStream<io::Result<MuxServerConn>> {
    let (tx, rx) = mpsc::channel(16);
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::spawn(async move {
        // The session caps its streams, so this caps the handshakes too.
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS));
        while let Some(stream) = streams.recv().await {
            let tx = tx.clone();
            let acceptor = acceptor.clone();
            let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                return;
            };
            tokio::spawn(async move {
                let _permit = permit;
                let id = stream.id();
                let conn = match &acceptor {
                    Some(acceptor) => tls_handshake(acceptor, stream).await,
                    None => read_preface(stream).await,
                };
                match conn {
                    Some(conn) => {
                        let _ = tx.send(Ok(conn)).await;
                    }
                    None => tracing::debug!(stream = id, "multiplexed stream refused"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Serves `routes` on the streams the peer opens for brokered id `id`
/// (each after its knock), until `shutdown` or the session ends.
pub(crate) fn serve_brokered(
    muxer: &Muxer,
    id: u32,
    routes: Routes,
    mut server: Server,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    let incoming = incoming(muxer.listen(id), tls);
    tokio::spawn(async move {
        let served = server
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, shutdown.wait())
            .await;
        if let Err(err) = served {
            tracing::warn!(id, %err, "multiplexed brokered server failed");
        }
    })
}
