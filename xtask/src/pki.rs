//! Manual-TLS material for the matrix: per key type, a CA and a server and
//! client certificate it signed, as PEM files.

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, RsaKeySize, SanType,
};
use std::fs;
use std::path::Path;

fn key_pair(key_type: &str) -> Result<KeyPair> {
    Ok(match key_type {
        "p256" => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
        "p384" => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?,
        "p521" => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)?,
        "rsa2048" => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)?,
        other => bail!("no PKI recipe for key type {other:?}"),
    })
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "rpcplugin matrix");
    dn.push(DnType::CommonName, cn);
    dn
}

/// Writes `ca.pem`, `server.pem`/`server.key` and `client.pem`/`client.key`
/// under `dir/<key type>/` for each key type.
pub(crate) fn write_all(dir: &Path, key_types: &[&str]) -> Result<()> {
    for kt in key_types {
        let out = dir.join(kt);
        fs::create_dir_all(&out)?;
        let ca_key = key_pair(kt)?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name = name(&format!("rpcplugin matrix CA {kt}"));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key)?;
        fs::write(out.join("ca.pem"), ca_cert.pem())?;
        let issuer = Issuer::new(ca, ca_key);
        for (role, eku) in [
            ("server", ExtendedKeyUsagePurpose::ServerAuth),
            ("client", ExtendedKeyUsagePurpose::ClientAuth),
        ] {
            let key = key_pair(kt)?;
            let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
            params
                .subject_alt_names
                .push(SanType::IpAddress([127, 0, 0, 1].into()));
            params.distinguished_name = name(&format!("localhost {role}"));
            params.extended_key_usages = vec![eku];
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            let cert = params
                .signed_by(&key, &issuer)
                .with_context(|| format!("signing {role} {kt}"))?;
            fs::write(out.join(format!("{role}.pem")), cert.pem())?;
            fs::write(out.join(format!("{role}.key")), key.serialize_pem())?;
        }
    }
    Ok(())
}
