//! Damaged input gives errors, never panics.

use rpcplugin_certs::{
    Identity, KeyType, PinnedClientCertVerifier, PinnedServerCertVerifier, cert_key_type,
    parse_cert_pem, parse_certs_pem,
};
use rustls_pki_types::CertificateDer;

use crate::support::{data, identity};

/// Every single-bit flip and every truncation of some certificates.
fn damaged_certs() -> Vec<Vec<u8>> {
    let originals = [
        identity(KeyType::EcP256).cert_der().to_vec(),
        identity(KeyType::Rsa2048).cert_der().to_vec(),
        parse_cert_pem(&data("goplugin-p521.crt")).unwrap().to_vec(),
    ];
    let mut out = Vec::new();
    for original in originals {
        for bit in 0..original.len() * 8 {
            let mut damaged = original.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            out.push(damaged);
        }
        for len in 0..original.len() {
            out.push(original[..len].to_vec());
        }
    }
    out
}

#[test]
fn damaged_certificates_do_not_panic() {
    let key_pem = identity(KeyType::EcP256).key_pem();
    for (i, der) in damaged_certs().into_iter().enumerate() {
        let _ = cert_key_type(&der);
        let _ = PinnedServerCertVerifier::new(CertificateDer::from(der.clone()));
        let _ = PinnedClientCertVerifier::new(CertificateDer::from(der.clone()));
        if i % 8 != 0 {
            // Loading the key dominates the cost; a sample is enough.
            continue;
        }
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der)
        );
        let _ = Identity::from_pem(pem.as_bytes(), key_pem.as_bytes());
    }
}

#[test]
fn damaged_pem_does_not_panic() {
    let good = format!(
        "{}{}",
        identity(KeyType::EcP384).cert_pem(),
        identity(KeyType::EcP384).key_pem()
    );
    let bytes = good.as_bytes();
    for i in 0..bytes.len() {
        for replacement in [b'-', b'\n', b'=', 0xff] {
            let mut damaged = bytes.to_vec();
            damaged[i] = replacement;
            let _ = parse_cert_pem(&damaged);
            let _ = parse_certs_pem(&damaged);
            let _ = Identity::from_pem(&damaged, &damaged);
        }
        let _ = Identity::from_pem(&bytes[..i], &bytes[..i]);
    }
}
