//! Manual TLS: CA bundles instead of pins, and loading files.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rpcplugin_certs::{
    CertError, Identity, KeyType, PeerTrust, client_config, parse_certs_pem, server_config,
};

use crate::support::{Transport, assert_failed, handshake, identity};

/// A self-signed test CA.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    CertifiedIssuer::self_signed(params, key).unwrap()
}

/// An intermediate CA under `parent`.
fn intermediate(
    name: &str,
    parent: &CertifiedIssuer<'static, KeyPair>,
) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    CertifiedIssuer::signed_by(params, key, parent).unwrap()
}

/// A `localhost` leaf for both client and server use, issued by `issuer`,
/// as PEM (cert, key).
fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>) -> (String, String) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "leaf");
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn leaf_identity(issuer: &CertifiedIssuer<'static, KeyPair>) -> Identity {
    let (cert, key) = leaf(issuer);
    Identity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()
}

fn roots(ca: &CertifiedIssuer<'static, KeyPair>) -> PeerTrust {
    PeerTrust::Roots(parse_certs_pem(ca.pem().as_bytes()).unwrap())
}

#[tokio::test]
async fn ca_signed_leaves_are_accepted_both_ways() {
    let ca_a = ca("CA A");
    let server_id = leaf_identity(&ca_a);
    let client_id = leaf_identity(&ca_a);
    let server = server_config(&server_id, roots(&ca_a)).unwrap();
    let client = client_config(Some(&client_id), roots(&ca_a)).unwrap();
    let (server_seen, client_seen) = handshake(server, client, Transport::Tcp)
        .await
        .unwrap_both();
    assert_eq!(server_seen.peer_certs, vec![client_id.cert_der().clone()]);
    assert_eq!(client_seen.alpn.as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn a_leaf_presented_with_its_intermediate_chains_to_the_root() {
    let root = ca("Root");
    let inter = intermediate("Intermediate", &root);
    let (cert, key) = leaf(&inter);
    let chain_pem = format!("{cert}{}", inter.pem());
    let server_id = Identity::from_pem(chain_pem.as_bytes(), key.as_bytes()).unwrap();
    assert_eq!(server_id.chain().len(), 2);
    let client_id = leaf_identity(&root);
    let server = server_config(&server_id, roots(&root)).unwrap();
    let client = client_config(Some(&client_id), roots(&root)).unwrap();
    let (_, client_seen) = handshake(server, client, Transport::Unix)
        .await
        .unwrap_both();
    assert_eq!(client_seen.peer_certs.len(), 2);
}

#[tokio::test]
async fn a_bundle_with_several_cas_accepts_each() {
    let ca_a = ca("CA A");
    let ca_b = ca("CA B");
    let bundle = format!("{}{}", ca_a.pem(), ca_b.pem());
    let trust = PeerTrust::Roots(parse_certs_pem(bundle.as_bytes()).unwrap());
    let server_id = leaf_identity(&ca_a);
    let client_id = leaf_identity(&ca_b);
    let server = server_config(&server_id, trust.clone()).unwrap();
    let client = client_config(Some(&client_id), trust).unwrap();
    handshake(server, client, Transport::Unix)
        .await
        .unwrap_both();
}

#[tokio::test]
async fn client_refuses_a_server_leaf_from_another_ca() {
    let ca_a = ca("CA A");
    let ca_b = ca("CA B");
    let server_id = leaf_identity(&ca_b);
    let client_id = leaf_identity(&ca_a);
    let server = server_config(&server_id, roots(&ca_a)).unwrap();
    let client = client_config(Some(&client_id), roots(&ca_a)).unwrap();
    let outcome = handshake(server, client, Transport::Tcp).await;
    assert_failed(&outcome.server, "server");
    let text = assert_failed(&outcome.client, "client");
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test]
async fn server_refuses_a_client_leaf_from_another_ca() {
    let ca_a = ca("CA A");
    let ca_b = ca("CA B");
    let server_id = leaf_identity(&ca_a);
    let client_id = leaf_identity(&ca_b);
    let server = server_config(&server_id, roots(&ca_a)).unwrap();
    let client = client_config(Some(&client_id), roots(&ca_a)).unwrap();
    let outcome = handshake(server, client, Transport::Unix).await;
    assert_failed(&outcome.client, "client");
    let text = assert_failed(&outcome.server, "server");
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[test]
fn empty_or_bad_roots_are_typed_errors() {
    let id = identity(KeyType::EcP256);
    assert!(matches!(
        server_config(id, PeerTrust::Roots(Vec::new())),
        Err(CertError::NoTrustedCertificates)
    ));
    assert!(matches!(
        client_config(None, PeerTrust::Roots(Vec::new())),
        Err(CertError::NoTrustedCertificates)
    ));
    let junk = rustls_pki_types::CertificateDer::from(vec![1, 2, 3]);
    assert!(matches!(
        client_config(None, PeerTrust::Roots(vec![id.cert_der().clone(), junk])),
        Err(CertError::BadTrustAnchor { index: 1, .. })
    ));
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn files_load_and_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = identity(KeyType::EcP256);
    let b = other_key();
    let cert = write(dir.path(), "cert.pem", a.cert_pem());
    let key = write(dir.path(), "key.pem", a.key_pem());
    let wrong_key = write(dir.path(), "wrong-key.pem", b);
    let garbage = write(dir.path(), "garbage.pem", "this is not PEM\n");
    let broken = write(
        dir.path(),
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\n!!notbase64!!\n-----END CERTIFICATE-----\n",
    );
    let unterminated = write(
        dir.path(),
        "unterminated.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
    );
    let not_a_cert = write(
        dir.path(),
        "not-a-cert.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let bad_key = write(
        dir.path(),
        "bad-key.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let missing = dir.path().join("missing.pem");

    let loaded = Identity::from_files(&cert, &key).unwrap();
    assert_eq!(loaded.cert_der(), a.cert_der());

    // Key and certificate do not belong together: both files are named.
    let err = Identity::from_files(&cert, &wrong_key).unwrap_err();
    assert!(
        matches!(err, CertError::KeyMismatchInFiles { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("wrong-key.pem") && text.contains("cert.pem"),
        "{text}"
    );

    // Unreadable files.
    let err = Identity::from_files(&missing, &key).unwrap_err();
    assert!(
        matches!(&err, CertError::ReadFile { path, .. } if path == &missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let err = Identity::from_files(&cert, dir.path()).unwrap_err();
    assert!(
        matches!(&err, CertError::ReadFile { path, .. } if path == dir.path()),
        "{err:?}"
    );

    // Garbage, in either position.
    let in_file = |err: CertError, expected: &Path| -> CertError {
        let text = err.to_string();
        match err {
            CertError::InFile { path, source } => {
                assert_eq!(path, expected, "{text}");
                assert!(text.contains(expected.to_str().unwrap()), "{text}");
                *source
            }
            other => panic!("expected InFile, got {other:?}"),
        }
    };
    let err = in_file(Identity::from_files(&garbage, &key).unwrap_err(), &garbage);
    assert!(matches!(err, CertError::NoCertificate), "{err:?}");
    let err = in_file(Identity::from_files(&cert, &garbage).unwrap_err(), &garbage);
    assert!(matches!(err, CertError::NoPrivateKey), "{err:?}");
    let err = in_file(Identity::from_files(&cert, &cert).unwrap_err(), &cert);
    assert!(matches!(err, CertError::NoPrivateKey), "{err:?}");
    let err = in_file(Identity::from_files(&broken, &key).unwrap_err(), &broken);
    assert!(matches!(err, CertError::Pem { .. }), "{err:?}");
    let err = in_file(
        Identity::from_files(&unterminated, &key).unwrap_err(),
        &unterminated,
    );
    assert!(matches!(err, CertError::Pem { .. }), "{err:?}");
    let err = in_file(
        Identity::from_files(&not_a_cert, &key).unwrap_err(),
        &not_a_cert,
    );
    assert!(matches!(err, CertError::BadCertificate { .. }), "{err:?}");
    let err = in_file(Identity::from_files(&cert, &bad_key).unwrap_err(), &bad_key);
    assert!(matches!(err, CertError::BadPrivateKey { .. }), "{err:?}");
}

/// A private key that belongs to no certificate used here.
fn other_key() -> String {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .serialize_pem()
}
