//! Every key type as server against every key type as client, mutual
//! pinning, on TLS 1.2 and TLS 1.3, with ALPN h2.

use rpcplugin_certs::internal::{client_config_with_versions, server_config_with_versions};
use rpcplugin_certs::{KeyType, PeerTrust};

use crate::support::{Transport, VERSIONS, handshake, identity, only};

async fn server_against_every_client(server_type: KeyType, transport: Transport) {
    let server_id = identity(server_type);
    for client_type in KeyType::ALL {
        let client_id = identity(client_type);
        for version in VERSIONS {
            let server = server_config_with_versions(
                server_id,
                PeerTrust::Pinned(client_id.cert_der().clone()),
                only(version),
            )
            .unwrap();
            let client = client_config_with_versions(
                Some(client_id),
                PeerTrust::Pinned(server_id.cert_der().clone()),
                only(version),
            )
            .unwrap();
            let (server_seen, client_seen) =
                handshake(server, client, transport).await.unwrap_both();
            let case = format!("server {server_type}, client {client_type}, {version:?}");
            assert_eq!(server_seen.version, Some(version), "{case}");
            assert_eq!(client_seen.version, Some(version), "{case}");
            assert_eq!(server_seen.alpn.as_deref(), Some(&b"h2"[..]), "{case}");
            assert_eq!(client_seen.alpn.as_deref(), Some(&b"h2"[..]), "{case}");
            assert_eq!(
                server_seen.peer_certs,
                vec![client_id.cert_der().clone()],
                "{case}"
            );
            assert_eq!(
                client_seen.peer_certs,
                vec![server_id.cert_der().clone()],
                "{case}"
            );
        }
    }
}

#[tokio::test]
async fn p256_server_tcp() {
    server_against_every_client(KeyType::EcP256, Transport::Tcp).await;
}

#[tokio::test]
async fn p384_server_tcp() {
    server_against_every_client(KeyType::EcP384, Transport::Tcp).await;
}

#[tokio::test]
async fn p521_server_tcp() {
    server_against_every_client(KeyType::EcP521, Transport::Tcp).await;
}

#[tokio::test]
async fn rsa2048_server_unix() {
    server_against_every_client(KeyType::Rsa2048, Transport::Unix).await;
}

#[tokio::test]
async fn rsa3072_server_unix() {
    server_against_every_client(KeyType::Rsa3072, Transport::Unix).await;
}

#[tokio::test]
async fn rsa4096_server_tcp() {
    server_against_every_client(KeyType::Rsa4096, Transport::Tcp).await;
}

#[tokio::test]
async fn default_configs_negotiate_tls13_over_unix() {
    let server_id = identity(KeyType::EcP256);
    let client_id = identity(KeyType::EcP521);
    let server =
        rpcplugin_certs::server_config(server_id, PeerTrust::Pinned(client_id.cert_der().clone()))
            .unwrap();
    let client = rpcplugin_certs::client_config(
        Some(client_id),
        PeerTrust::Pinned(server_id.cert_der().clone()),
    )
    .unwrap();
    let (server_seen, client_seen) = handshake(server, client, Transport::Unix)
        .await
        .unwrap_both();
    assert_eq!(server_seen.version, Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(client_seen.alpn.as_deref(), Some(&b"h2"[..]));
}
