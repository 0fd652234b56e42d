//! Shared helpers: identities generated once per test binary, handshake
//! drivers, test data.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rpcplugin_certs::{Identity, KeyType};
use rustls::{ClientConfig, ProtocolVersion, ServerConfig};
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Upper bound for every await in these tests.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// An identity of each key type, generated once per test binary.
pub fn identity(key_type: KeyType) -> &'static Identity {
    static CACHE: [OnceLock<Identity>; 6] = [const { OnceLock::new() }; 6];
    let index = KeyType::ALL.iter().position(|k| *k == key_type).unwrap();
    CACHE[index].get_or_init(|| Identity::generate(key_type).unwrap())
}

/// A second identity of each key type, for "someone else" in refusal tests.
pub fn other_identity(key_type: KeyType) -> &'static Identity {
    static CACHE: [OnceLock<Identity>; 6] = [const { OnceLock::new() }; 6];
    let index = KeyType::ALL.iter().position(|k| *k == key_type).unwrap();
    CACHE[index].get_or_init(|| Identity::generate(key_type).unwrap())
}

/// `&[&TLS12]` or `&[&TLS13]`.
pub fn only(version: ProtocolVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static TLS12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    static TLS13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match version {
        ProtocolVersion::TLSv1_2 => &TLS12,
        ProtocolVersion::TLSv1_3 => &TLS13,
        other => panic!("no such test version {other:?}"),
    }
}

pub const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::TLSv1_2, ProtocolVersion::TLSv1_3];

/// What one side saw of a completed handshake and exchange.
#[derive(Debug)]
pub struct Seen {
    pub version: Option<ProtocolVersion>,
    pub alpn: Option<Vec<u8>>,
    pub peer_certs: Vec<CertificateDer<'static>>,
}

/// Both sides' results.
#[derive(Debug)]
pub struct Outcome {
    pub server: io::Result<Seen>,
    pub client: io::Result<Seen>,
}

impl Outcome {
    /// Panics unless both sides completed; returns (server, client).
    pub fn unwrap_both(self) -> (Seen, Seen) {
        match (self.server, self.client) {
            (Ok(server), Ok(client)) => (server, client),
            (server, client) => panic!("handshake failed: server {server:?}, client {client:?}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Unix,
}

async fn timed<T>(what: &str, fut: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(STEP_TIMEOUT, fut).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} timed out"),
        )),
    }
}

/// TLS server side: handshake, read "ping", answer "pong".
async fn serve<S>(stream: S, config: Arc<ServerConfig>) -> io::Result<Seen>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut tls = timed("server handshake", TlsAcceptor::from(config).accept(stream)).await?;
    let mut buf = [0u8; 4];
    timed("server read", tls.read_exact(&mut buf)).await?;
    assert_eq!(&buf, b"ping");
    timed("server write", tls.write_all(b"pong")).await?;
    timed("server flush", tls.flush()).await?;
    let (_, conn) = tls.get_ref();
    let seen = Seen {
        version: conn.protocol_version(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        peer_certs: conn.peer_certificates().unwrap_or_default().to_vec(),
    };
    let _ = timed("server shutdown", tls.shutdown()).await;
    Ok(seen)
}

/// TLS client side: handshake as `localhost`, send "ping", expect "pong".
async fn connect<S>(stream: S, config: Arc<ClientConfig>) -> io::Result<Seen>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let connector = TlsConnector::from(config);
    let mut tls = timed(
        "client handshake",
        connector.connect(rpcplugin_certs::server_name(), stream),
    )
    .await?;
    timed("client write", tls.write_all(b"ping")).await?;
    timed("client flush", tls.flush()).await?;
    let mut buf = [0u8; 4];
    timed("client read", tls.read_exact(&mut buf)).await?;
    assert_eq!(&buf, b"pong");
    let (_, conn) = tls.get_ref();
    Ok(Seen {
        version: conn.protocol_version(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        peer_certs: conn.peer_certificates().unwrap_or_default().to_vec(),
    })
}

/// A connected pair of byte streams: (server end, client end).
async fn stream_pair(transport: Transport) -> (Box<dyn Duplex>, Box<dyn Duplex>) {
    match transport {
        Transport::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (client, accepted) = tokio::join!(
                timed("connect", TcpStream::connect(addr)),
                timed("accept", listener.accept())
            );
            let client = client.unwrap();
            let (server, _) = accepted.unwrap();
            client.set_nodelay(true).unwrap();
            server.set_nodelay(true).unwrap();
            (Box::new(server), Box::new(client))
        }
        Transport::Unix => {
            let (server, client) = UnixStream::pair().unwrap();
            (Box::new(server), Box::new(client))
        }
    }
}

pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// Runs a TLS server and a TLS client against each other.
pub async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    transport: Transport,
) -> Outcome {
    let (server_end, client_end) = stream_pair(transport).await;
    let (server, client) = tokio::join!(serve(server_end, server), connect(client_end, client));
    Outcome { server, client }
}

/// Runs a TLS server against a client that speaks plaintext HTTP/2 and then
/// waits (without closing) for whatever comes back.
pub async fn plaintext_client(server: Arc<ServerConfig>, transport: Transport) -> io::Result<Seen> {
    let (server_end, mut client_end) = stream_pair(transport).await;
    let client = async move {
        client_end
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .await
            .unwrap();
        let mut sink = Vec::new();
        let _ = timed("plaintext client read", client_end.read_to_end(&mut sink)).await;
    };
    let (server, ()) = tokio::join!(serve(server_end, server), client);
    server
}

/// Asserts that a side failed, and not by running into a timeout.
#[track_caller]
pub fn assert_failed(result: &io::Result<Seen>, side: &str) -> String {
    match result {
        Ok(seen) => panic!("{side} unexpectedly succeeded: {seen:?}"),
        Err(err) => {
            assert_ne!(err.kind(), io::ErrorKind::TimedOut, "{side} hung: {err}");
            err.to_string()
        }
    }
}

/// The rustls error inside an I/O error from tokio-rustls.
pub fn rustls_error(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Path of a committed test data file.
pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join(name)
}

/// Contents of a committed test data file.
pub fn data(name: &str) -> Vec<u8> {
    std::fs::read(data_path(name)).unwrap()
}
