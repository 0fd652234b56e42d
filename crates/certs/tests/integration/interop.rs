//! Certificates made elsewhere: go-plugin- and pyvider-shaped certificates
//! generated with the openssl CLI (tests/data/generate.sh), key encodings,
//! and what a Go TLS client needs from our server.

use std::sync::{Arc, Mutex};

use rpcplugin_certs::internal::{client_config_with_versions, server_config_with_versions};
use rpcplugin_certs::{
    CertError, Identity, KeyType, PeerTrust, PinnedServerCertVerifier, cert_key_type,
    client_config, parse_cert_pem, server_config,
};
use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::FromDer;

use crate::support::{Transport, VERSIONS, assert_failed, data, handshake, identity, only};

fn goplugin() -> Identity {
    Identity::from_pem(&data("goplugin-p521.crt"), &data("goplugin-p521.sec1.key")).unwrap()
}

fn signature_oid(der: &[u8]) -> String {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    cert.signature_algorithm.algorithm.to_id_string()
}

#[test]
fn goplugin_cert_and_keys_load() {
    let sec1 = goplugin();
    assert_eq!(sec1.key_type(), KeyType::EcP521);
    assert_eq!(signature_oid(sec1.cert_der()), "1.2.840.10045.4.3.4"); // ecdsa-with-SHA512
    assert!(
        sec1.key_pem()
            .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
    );

    let pkcs8 =
        Identity::from_pem(&data("goplugin-p521.crt"), &data("goplugin-p521.pkcs8.key")).unwrap();
    assert_eq!(pkcs8.cert_der(), sec1.cert_der());
    assert!(pkcs8.key_pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));

    // Writing the key back out and reading it again round-trips.
    let again = Identity::from_pem(sec1.cert_pem().as_bytes(), sec1.key_pem().as_bytes()).unwrap();
    assert_eq!(again.cert_der(), sec1.cert_der());

    let rsa = Identity::from_pem(&data("rsa2048.crt"), &data("rsa2048.pkcs1.key")).unwrap();
    assert_eq!(rsa.key_type(), KeyType::Rsa2048);
    assert!(
        rsa.key_pem()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----\n")
    );
    assert_eq!(signature_oid(rsa.cert_der()), "1.2.840.113549.1.1.11");
}

#[test]
fn a_key_from_another_cert_is_a_mismatch() {
    let err =
        Identity::from_pem(&data("goplugin-p521.crt"), &data("pyvider-p384.key")).unwrap_err();
    assert!(matches!(err, CertError::KeyMismatch), "{err}");
    let err =
        Identity::from_pem(&data("rsa2048.crt"), &data("goplugin-p521.sec1.key")).unwrap_err();
    assert!(matches!(err, CertError::KeyMismatch), "{err}");
}

#[tokio::test]
async fn goplugin_cert_works_as_server_and_as_client() {
    let go = goplugin();
    let ours = identity(KeyType::EcP256);
    for version in VERSIONS {
        // Go plugin as server, our host as client.
        let server = server_config_with_versions(
            &go,
            PeerTrust::Pinned(ours.cert_der().clone()),
            only(version),
        )
        .unwrap();
        let client = client_config_with_versions(
            Some(ours),
            PeerTrust::Pinned(go.cert_der().clone()),
            only(version),
        )
        .unwrap();
        let (_, client_seen) = handshake(server, client, Transport::Unix)
            .await
            .unwrap_both();
        assert_eq!(client_seen.version, Some(version));

        // Go host as client, our plugin as server.
        let server = server_config_with_versions(
            ours,
            PeerTrust::Pinned(go.cert_der().clone()),
            only(version),
        )
        .unwrap();
        let client = client_config_with_versions(
            Some(&go),
            PeerTrust::Pinned(ours.cert_der().clone()),
            only(version),
        )
        .unwrap();
        let (server_seen, _) = handshake(server, client, Transport::Tcp)
            .await
            .unwrap_both();
        assert_eq!(server_seen.peer_certs, vec![go.cert_der().clone()]);
    }
}

#[tokio::test]
async fn rsa_pkcs1_identity_handshakes() {
    let rsa = Identity::from_pem(&data("rsa2048.crt"), &data("rsa2048.pkcs1.key")).unwrap();
    let ours = identity(KeyType::EcP384);
    let server = server_config(&rsa, PeerTrust::Pinned(ours.cert_der().clone())).unwrap();
    let client = client_config(Some(ours), PeerTrust::Pinned(rsa.cert_der().clone())).unwrap();
    handshake(server, client, Transport::Unix)
        .await
        .unwrap_both();
}

#[tokio::test]
async fn pyvider_shaped_cert_works_as_server_for_our_client() {
    let pyvider = Identity::from_pem(&data("pyvider-p384.crt"), &data("pyvider-p384.key")).unwrap();
    assert_eq!(pyvider.key_type(), KeyType::EcP384);
    assert_eq!(signature_oid(pyvider.cert_der()), "1.2.840.10045.4.3.2"); // ecdsa-with-SHA256
    let ours = identity(KeyType::EcP256);
    for version in VERSIONS {
        let server = server_config_with_versions(
            &pyvider,
            PeerTrust::Pinned(ours.cert_der().clone()),
            only(version),
        )
        .unwrap();
        // The pinned certificate arrives as unpadded base64 DER in the handshake.
        let pinned = parse_cert_pem(&data("pyvider-p384.crt")).unwrap();
        let client =
            client_config_with_versions(Some(ours), PeerTrust::Pinned(pinned), only(version))
                .unwrap();
        let (_, client_seen) = handshake(server, client, Transport::Unix)
            .await
            .unwrap_both();
        assert_eq!(client_seen.version, Some(version));
        assert_eq!(client_seen.alpn.as_deref(), Some(&b"h2"[..]));
    }
}

#[tokio::test]
async fn webpki_roots_cannot_validate_a_goplugin_cert() {
    // Why pinning exists: ordinary chain validation refuses a CA:TRUE end entity.
    let go = goplugin();
    let ours = identity(KeyType::EcP256);
    let server = server_config(&go, PeerTrust::Pinned(ours.cert_der().clone())).unwrap();
    let client = client_config(Some(ours), PeerTrust::Roots(vec![go.cert_der().clone()])).unwrap();
    let outcome = handshake(server, client, Transport::Unix).await;
    let text = assert_failed(&outcome.client, "client");
    assert!(text.contains("CaUsedAsEndEntity"), "{text}");
}

/// The CA names and signature schemes of one certificate request.
type Request = (Vec<Vec<u8>>, Vec<SignatureScheme>);

/// Records what the server asked for when it requested a client cert.
#[derive(Debug)]
struct Recorder {
    inner: Arc<CertifiedKey>,
    seen: Mutex<Vec<Request>>,
}

impl ResolvesClientCert for Recorder {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.seen.lock().unwrap().push((
            root_hint_subjects.iter().map(|s| s.to_vec()).collect(),
            sigschemes.to_vec(),
        ));
        Some(Arc::clone(&self.inner))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn server_sends_no_ca_hints_and_offers_p521() {
    // A Go client sends its certificate only if the CA list is empty (or
    // names its issuer) and a scheme for its key is offered.
    let go = goplugin();
    let ours = identity(KeyType::EcP256);
    for version in VERSIONS {
        let recorder = Arc::new(Recorder {
            inner: Arc::new(
                CertifiedKey::from_der(
                    vec![go.cert_der().clone()],
                    rustls_pki_types::PrivateKeyDer::from_pem_slice(&data(
                        "goplugin-p521.sec1.key",
                    ))
                    .unwrap(),
                    &rpcplugin_certs::provider(),
                )
                .unwrap(),
            ),
            seen: Mutex::new(Vec::new()),
        });
        let mut client = rustls::ClientConfig::builder_with_provider(rpcplugin_certs::provider())
            .with_protocol_versions(only(version))
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(
                PinnedServerCertVerifier::new(ours.cert_der().clone()).unwrap(),
            ))
            .with_client_cert_resolver(recorder.clone());
        client.alpn_protocols = vec![b"h2".to_vec()];
        let server = server_config_with_versions(
            ours,
            PeerTrust::Pinned(go.cert_der().clone()),
            only(version),
        )
        .unwrap();
        handshake(server, Arc::new(client), Transport::Tcp)
            .await
            .unwrap_both();
        let seen = recorder.seen.lock().unwrap();
        let [(hints, schemes)] = seen.as_slice() else {
            panic!("{version:?}: resolver called {} times", seen.len());
        };
        assert!(hints.is_empty(), "{version:?}: CA hints sent: {hints:?}");
        assert!(
            schemes.contains(&SignatureScheme::ECDSA_NISTP521_SHA512),
            "{version:?}: {schemes:?}"
        );
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP256_SHA256));
        assert!(schemes.contains(&SignatureScheme::RSA_PSS_SHA256));
    }
}

#[test]
fn cert_key_type_of_foreign_certs() {
    let der = |name: &str| parse_cert_pem(&data(name)).unwrap();
    assert_eq!(
        cert_key_type(&der("goplugin-p521.crt")).unwrap(),
        KeyType::EcP521
    );
    assert_eq!(
        cert_key_type(&der("pyvider-p384.crt")).unwrap(),
        KeyType::EcP384
    );
    assert_eq!(
        cert_key_type(&der("rsa2048.crt")).unwrap(),
        KeyType::Rsa2048
    );

    let err = cert_key_type(&der("secp256k1.crt")).unwrap_err();
    assert!(
        matches!(&err, CertError::UnsupportedCurve { oid, name } if oid == "1.3.132.0.10" && *name == "secp256k1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("1.3.132.0.10"), "{err}");

    let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&ed25519)
        .unwrap();
    let err = cert_key_type(cert.der()).unwrap_err();
    assert!(
        matches!(&err, CertError::UnsupportedAlgorithm { oid, name } if oid == "1.3.101.112" && *name == "Ed25519"),
        "{err:?}"
    );
    assert!(err.to_string().contains("1.3.101.112"), "{err}");
    // Loading such a certificate as an identity gives the same error.
    let err =
        Identity::from_pem(cert.pem().as_bytes(), ed25519.serialize_pem().as_bytes()).unwrap_err();
    assert!(
        matches!(err, CertError::UnsupportedAlgorithm { .. }),
        "{err:?}"
    );

    assert!(matches!(
        cert_key_type(b"\x30\x00"),
        Err(CertError::BadCertificate { .. })
    ));
    assert!(matches!(
        cert_key_type(&[]),
        Err(CertError::BadCertificate { .. })
    ));
}
