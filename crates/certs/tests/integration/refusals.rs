//! Peers that must be refused, on both sides, without hanging.

use rcgen::{CertificateParams, KeyPair};
use rpcplugin_certs::internal::{client_config_with_versions, server_config_with_versions};
use rpcplugin_certs::{CertError, Identity, KeyType, PeerTrust, client_config, server_config};
use rustls::CertificateError;

use crate::support::{
    Transport, VERSIONS, assert_failed, handshake, identity, only, other_identity,
    plaintext_client, rustls_error,
};

/// A P-256 identity whose certificate parameters the test chooses.
fn custom_identity(edit: impl FnOnce(&mut CertificateParams)) -> Identity {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    edit(&mut params);
    let cert = params.self_signed(&key).unwrap();
    Identity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap()
}

#[tokio::test]
async fn server_refuses_client_presenting_an_unpinned_cert() {
    let server_id = identity(KeyType::EcP256);
    let expected_client = identity(KeyType::EcP384);
    let actual_client = other_identity(KeyType::EcP384);
    for version in VERSIONS {
        let server = server_config_with_versions(
            server_id,
            PeerTrust::Pinned(expected_client.cert_der().clone()),
            only(version),
        )
        .unwrap();
        let client = client_config_with_versions(
            Some(actual_client),
            PeerTrust::Pinned(server_id.cert_der().clone()),
            only(version),
        )
        .unwrap();
        let outcome = handshake(server, client, Transport::Tcp).await;
        let server_text = assert_failed(&outcome.server, "server");
        assert_failed(&outcome.client, "client");
        assert!(
            server_text.contains("the peer presented a certificate other than the pinned one"),
            "{version:?}: {server_text}"
        );
        assert!(
            server_text.contains(&actual_client.fingerprint()),
            "{server_text}"
        );
        assert!(
            server_text.contains(&expected_client.fingerprint()),
            "{server_text}"
        );
        let err = outcome.server.as_ref().unwrap_err();
        match CertError::find_in(err) {
            Some(CertError::NotPinned { presented, pinned }) => {
                assert_eq!(presented, &actual_client.fingerprint());
                assert_eq!(pinned, &expected_client.fingerprint());
            }
            other => panic!("{version:?}: expected NotPinned, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn server_refuses_client_without_a_cert() {
    let server_id = identity(KeyType::EcP256);
    let host = identity(KeyType::EcP521);
    for version in VERSIONS {
        let server = server_config_with_versions(
            server_id,
            PeerTrust::Pinned(host.cert_der().clone()),
            only(version),
        )
        .unwrap();
        let client = client_config_with_versions(
            None,
            PeerTrust::Pinned(server_id.cert_der().clone()),
            only(version),
        )
        .unwrap();
        let outcome = handshake(server, client, Transport::Unix).await;
        assert_failed(&outcome.server, "server");
        assert_failed(&outcome.client, "client");
        let err = outcome.server.as_ref().unwrap_err();
        assert!(
            matches!(
                rustls_error(err),
                Some(rustls::Error::NoCertificatesPresented)
            ),
            "{version:?}: {err}"
        );
    }
}

#[tokio::test]
async fn server_errors_out_on_a_plaintext_client() {
    let server_id = identity(KeyType::EcP256);
    let host = identity(KeyType::EcP256);
    for transport in [Transport::Tcp, Transport::Unix] {
        let server = server_config(server_id, PeerTrust::Pinned(host.cert_der().clone())).unwrap();
        let result = plaintext_client(server, transport).await;
        let text = assert_failed(&result, "server");
        assert!(
            rustls_error(result.as_ref().unwrap_err()).is_some(),
            "{transport:?}: expected a TLS error, got {text}"
        );
    }
}

#[tokio::test]
async fn client_refuses_a_server_that_is_not_the_pinned_one() {
    let expected_server = identity(KeyType::EcP521);
    let actual_server = other_identity(KeyType::EcP521);
    let host = identity(KeyType::EcP256);
    for version in VERSIONS {
        let server = server_config_with_versions(
            actual_server,
            PeerTrust::Pinned(host.cert_der().clone()),
            only(version),
        )
        .unwrap();
        let client = client_config_with_versions(
            Some(host),
            PeerTrust::Pinned(expected_server.cert_der().clone()),
            only(version),
        )
        .unwrap();
        let outcome = handshake(server, client, Transport::Tcp).await;
        assert_failed(&outcome.server, "server");
        let client_text = assert_failed(&outcome.client, "client");
        assert!(
            client_text.contains("the peer presented a certificate other than the pinned one"),
            "{client_text}"
        );
        let err = outcome.client.as_ref().unwrap_err();
        assert!(matches!(
            CertError::find_in(err),
            Some(CertError::NotPinned { .. })
        ));
    }
}

#[tokio::test]
async fn client_refuses_an_expired_pinned_server_cert() {
    let expired = custom_identity(|params| {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    });
    let host = identity(KeyType::EcP256);
    let server = server_config(&expired, PeerTrust::Pinned(host.cert_der().clone())).unwrap();
    let client = client_config(Some(host), PeerTrust::Pinned(expired.cert_der().clone())).unwrap();
    let outcome = handshake(server, client, Transport::Unix).await;
    assert_failed(&outcome.server, "server");
    assert_failed(&outcome.client, "client");
    let err = outcome.client.as_ref().unwrap_err();
    assert!(
        matches!(
            rustls_error(err),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredContext { .. }
            ))
        ),
        "{err}"
    );
}

#[tokio::test]
async fn server_refuses_a_not_yet_valid_pinned_client_cert() {
    let future = custom_identity(|params| {
        params.not_before = rcgen::date_time_ymd(2200, 1, 1);
        params.not_after = rcgen::date_time_ymd(2201, 1, 1);
    });
    let server_id = identity(KeyType::EcP256);
    let server = server_config(server_id, PeerTrust::Pinned(future.cert_der().clone())).unwrap();
    let client = client_config(
        Some(&future),
        PeerTrust::Pinned(server_id.cert_der().clone()),
    )
    .unwrap();
    let outcome = handshake(server, client, Transport::Tcp).await;
    assert_failed(&outcome.client, "client");
    assert_failed(&outcome.server, "server");
    let err = outcome.server.as_ref().unwrap_err();
    assert!(
        matches!(
            rustls_error(err),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYetContext { .. }
            ))
        ),
        "{err}"
    );
}

#[tokio::test]
async fn client_refuses_a_pinned_server_cert_not_valid_for_localhost() {
    let elsewhere = custom_identity(|params| {
        params.subject_alt_names = vec![rcgen::SanType::DnsName("example.com".try_into().unwrap())];
    });
    let host = identity(KeyType::EcP256);
    let server = server_config(&elsewhere, PeerTrust::Pinned(host.cert_der().clone())).unwrap();
    let client =
        client_config(Some(host), PeerTrust::Pinned(elsewhere.cert_der().clone())).unwrap();
    let outcome = handshake(server, client, Transport::Unix).await;
    assert_failed(&outcome.server, "server");
    let text = assert_failed(&outcome.client, "client");
    let err = outcome.client.as_ref().unwrap_err();
    assert!(
        matches!(
            rustls_error(err),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{text}"
    );
}

#[tokio::test]
async fn client_refuses_a_pinned_server_that_sends_a_chain() {
    let leaf = identity(KeyType::EcP256);
    let extra = other_identity(KeyType::EcP256);
    let with_chain = Identity::from_pem(
        format!("{}{}", leaf.cert_pem(), extra.cert_pem()).as_bytes(),
        leaf.key_pem().as_bytes(),
    )
    .unwrap();
    assert_eq!(with_chain.chain().len(), 2);
    let host = identity(KeyType::EcP384);
    let server = server_config(&with_chain, PeerTrust::Pinned(host.cert_der().clone())).unwrap();
    let client = client_config(Some(host), PeerTrust::Pinned(leaf.cert_der().clone())).unwrap();
    let outcome = handshake(server, client, Transport::Tcp).await;
    assert_failed(&outcome.server, "server");
    let text = assert_failed(&outcome.client, "client");
    assert!(
        matches!(
            CertError::find_in(outcome.client.as_ref().unwrap_err()),
            Some(CertError::UnexpectedIntermediates { count: 1 })
        ),
        "{text}"
    );
}

#[test]
fn configs_refuse_a_pinned_cert_that_is_not_a_certificate() {
    let id = identity(KeyType::EcP256);
    let junk = rustls_pki_types::CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    assert!(matches!(
        server_config(id, PeerTrust::Pinned(junk.clone())),
        Err(CertError::BadCertificate { .. })
    ));
    assert!(matches!(
        client_config(Some(id), PeerTrust::Pinned(junk)),
        Err(CertError::BadCertificate { .. })
    ));
    assert!(matches!(
        server_config_with_versions(id, PeerTrust::Pinned(id.cert_der().clone()), &[]),
        Err(CertError::TlsConfig { .. })
    ));
}
