//! The shape of generated certificates (go-plugin's AutoMTLS shape, with
//! our own subject).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use rpcplugin_certs::{Identity, KeyType, cert_key_type, parse_cert_pem};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::support::identity;

fn expected_signature(key_type: KeyType) -> (&'static str, &'static dyn VerificationAlgorithm) {
    match key_type {
        KeyType::EcP256 => ("1.2.840.10045.4.3.2", &signature::ECDSA_P256_SHA256_ASN1),
        KeyType::EcP384 => ("1.2.840.10045.4.3.3", &signature::ECDSA_P384_SHA384_ASN1),
        KeyType::EcP521 => ("1.2.840.10045.4.3.4", &signature::ECDSA_P521_SHA512_ASN1),
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => (
            "1.2.840.113549.1.1.11",
            &signature::RSA_PKCS1_2048_8192_SHA256,
        ),
    }
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[test]
fn generated_certs_have_the_automtls_shape() {
    for key_type in KeyType::ALL {
        let id = identity(key_type);
        assert_eq!(id.key_type(), key_type);
        assert_eq!(cert_key_type(id.cert_der()).unwrap(), key_type);
        let (rest, cert) = X509Certificate::from_der(id.cert_der()).unwrap();
        assert!(rest.is_empty());

        // Self-signed, O=rpcplugin CN=localhost.
        let subject = cert.subject();
        assert_eq!(
            subject.to_string(),
            "O=rpcplugin, CN=localhost",
            "{key_type}"
        );
        assert_eq!(cert.issuer().as_raw(), subject.as_raw());
        let (oid, algorithm) = expected_signature(key_type);
        assert_eq!(
            cert.signature_algorithm.algorithm.to_id_string(),
            oid,
            "{key_type}"
        );
        UnparsedPublicKey::new(algorithm, &cert.public_key().subject_public_key.data)
            .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
            .unwrap_or_else(|_| panic!("{key_type}: self-signature does not verify"));

        // CA:TRUE, critical, no path length.
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(bc.critical);
        assert!(bc.value.ca);
        assert_eq!(bc.value.path_len_constraint, None);

        // Key usage, critical.
        let ku = cert.key_usage().unwrap().unwrap();
        assert!(ku.critical);
        assert!(ku.value.digital_signature());
        assert!(ku.value.key_encipherment());
        assert!(ku.value.key_agreement());
        assert!(ku.value.key_cert_sign());
        assert!(!ku.value.crl_sign());
        assert!(!ku.value.non_repudiation());

        // serverAuth and clientAuth, nothing else.
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        assert!(!eku.any && !eku.code_signing && eku.other.is_empty());

        // SAN: DNS localhost only.
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        assert_eq!(san.general_names, vec![GeneralName::DNSName("localhost")]);

        // A subject key identifier, no authority key identifier.
        let has = |oid: &str| {
            cert.extensions()
                .iter()
                .any(|ext| ext.oid.to_id_string() == oid)
        };
        assert!(has("2.5.29.14"), "{key_type}: no SKI");
        assert!(!has("2.5.29.35"), "{key_type}: unexpected AKI");

        // Valid from 30 s ago for 262 980 hours.
        let not_before = cert.validity().not_before.timestamp();
        let not_after = cert.validity().not_after.timestamp();
        assert_eq!(not_after - not_before, 262_980 * 3600 + 30, "{key_type}");
        assert!(not_before <= now() - 29, "{key_type}");
        assert!(not_before > now() - 600, "{key_type}");
        assert_eq!(cert.version().0, 2, "X.509 v3");

        // Serial: positive, at most 128 bits.
        assert!(cert.tbs_certificate.serial.bits() <= 128);
        assert!(cert.raw_serial().len() <= 17);
    }
}

#[test]
fn serials_and_keys_differ_between_generations() {
    let a = Identity::generate(KeyType::EcP256).unwrap();
    let b = Identity::generate(KeyType::EcP256).unwrap();
    let serial = |id: &Identity| {
        let (_, cert) = X509Certificate::from_der(id.cert_der()).unwrap();
        cert.raw_serial().to_vec()
    };
    assert_ne!(serial(&a), serial(&b));
    assert_ne!(a.cert_der(), b.cert_der());
    assert_ne!(a.key_pem(), b.key_pem());
}

#[test]
fn encodings_for_the_wire() {
    let id = identity(KeyType::EcP521);

    // PLUGIN_CLIENT_CERT: one PEM block, 64-column lines, trailing newline.
    let pem = id.cert_pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(pem.ends_with("-----END CERTIFICATE-----\n"));
    assert_eq!(pem.matches("-----BEGIN").count(), 1);
    let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for line in &body[..body.len() - 1] {
        assert_eq!(line.len(), 64);
    }
    assert!(body.last().unwrap().len() <= 64);
    assert_eq!(&parse_cert_pem(pem.as_bytes()).unwrap(), id.cert_der());

    // Handshake field: unpadded standard base64 of the DER.
    let field = id.cert_base64();
    assert!(!field.contains('=') && !field.contains('\n'));
    assert_eq!(
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&field)
            .unwrap(),
        id.cert_der().as_ref()
    );

    // Identity round-trips through its own PEM output.
    let again = Identity::from_pem(pem.as_bytes(), id.key_pem().as_bytes()).unwrap();
    assert_eq!(again.cert_der(), id.cert_der());
    assert_eq!(again.key_type(), KeyType::EcP521);

    // Debug shows no key material.
    let debug = format!("{id:?}");
    assert!(debug.contains("EcP521") && debug.contains(&id.fingerprint()));
    assert!(!debug.contains("PRIVATE"));
}
