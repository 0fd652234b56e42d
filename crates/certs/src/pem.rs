//! PEM decoding and encoding, and X.509 sanity checks.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::certificate::X509Certificate;

use crate::error::CertError;

/// Decodes the first `CERTIFICATE` block of PEM text.
///
/// This is how the `PLUGIN_CLIENT_CERT` environment variable is read. Text
/// around the block and blocks of other kinds are skipped; further
/// certificates are ignored. The block's contents must be a well-formed
/// X.509 certificate.
///
/// # Errors
///
/// [`CertError::NoCertificate`] if there is no such block,
/// [`CertError::Pem`] if the PEM text is malformed, and
/// [`CertError::BadCertificate`] if the block does not hold a certificate.
///
/// # Example
///
/// ```
/// use rpcplugin_certs::{Identity, KeyType, parse_cert_pem};
///
/// let identity = Identity::generate(KeyType::EcP256)?;
/// let der = parse_cert_pem(identity.cert_pem().as_bytes())?;
/// assert_eq!(&der, identity.cert_der());
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
pub fn parse_cert_pem(pem: &[u8]) -> Result<CertificateDer<'static>, CertError> {
    match CertificateDer::pem_slice_iter(pem).next() {
        Some(Ok(der)) => {
            parse_x509(&der)?;
            Ok(der)
        }
        Some(Err(err)) => Err(pem_error(&err)),
        None => Err(CertError::NoCertificate),
    }
}

/// Decodes every `CERTIFICATE` block of PEM text, in order.
///
/// Used for CA bundles and for certificate chains (leaf first).
///
/// # Errors
///
/// As [`parse_cert_pem`]: no block at all, malformed PEM, or a block that is
/// not a certificate.
///
/// # Example
///
/// ```
/// use rpcplugin_certs::{Identity, KeyType, parse_certs_pem};
///
/// let a = Identity::generate(KeyType::EcP256)?;
/// let b = Identity::generate(KeyType::EcP384)?;
/// let bundle = format!("{}{}", a.cert_pem(), b.cert_pem());
/// let certs = parse_certs_pem(bundle.as_bytes())?;
/// assert_eq!(certs, vec![a.cert_der().clone(), b.cert_der().clone()]);
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
pub fn parse_certs_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let der = item.map_err(|err| pem_error(&err))?;
        parse_x509(&der)?;
        certs.push(der);
    }
    if certs.is_empty() {
        return Err(CertError::NoCertificate);
    }
    Ok(certs)
}

/// Decodes the first private key block: SEC1 `EC PRIVATE KEY`, PKCS#8
/// `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`.
pub(crate) fn parse_key_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, CertError> {
    match PrivateKeyDer::pem_slice_iter(pem).next() {
        Some(Ok(key)) => Ok(key),
        Some(Err(err)) => Err(pem_error(&err)),
        None => Err(CertError::NoPrivateKey),
    }
}

fn pem_error(err: &rustls_pki_types::pem::Error) -> CertError {
    use rustls_pki_types::pem::Error;
    let reason = match err {
        Error::MissingSectionEnd { end_marker } => format!(
            "a \"{}\" block has no END line",
            String::from_utf8_lossy(end_marker)
        ),
        Error::IllegalSectionStart { .. } => "a BEGIN line is malformed".to_owned(),
        Error::Base64Decode(reason) => format!("invalid base64 ({reason})"),
        other => other.to_string(),
    };
    CertError::Pem { reason }
}

/// Parses DER as an X.509 certificate, refusing trailing bytes.
pub(crate) fn parse_x509(der: &[u8]) -> Result<X509Certificate<'_>, CertError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(CertError::BadCertificate {
            reason: format!("{} trailing bytes after the certificate", rest.len()),
        }),
        Err(err) => Err(CertError::BadCertificate {
            reason: err.to_string(),
        }),
    }
}

/// Encodes DER as one PEM block: 64-column base64 lines, trailing newline.
pub(crate) fn encode_pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // Base64 output is ASCII, so splitting the bytes yields valid UTF-8.
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Lower-case hex SHA-256 of some bytes (a certificate fingerprint).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = String::with_capacity(64);
    for byte in digest.as_ref() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_lines_are_64_columns() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = encode_pem("CERTIFICATE", &der);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines.first(), Some(&"-----BEGIN CERTIFICATE-----"));
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
        assert!(pem.ends_with("-----\n"));
        for line in &lines[1..lines.len() - 1] {
            assert!(line.len() <= 64);
        }
        assert_eq!(lines[1].len(), 64);
        let decoded: String = lines[1..lines.len() - 1].concat();
        assert_eq!(STANDARD.decode(decoded).unwrap(), der);
    }

    #[test]
    fn malformed_pem_is_an_error_not_a_panic() {
        let inputs: [&[u8]; 6] = [
            b"",
            b"-----BEGIN CERTIFICATE-----\n",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            b"-----BEGIN CERTIFICATE--\n",
            b"\xff\xfe\x00garbage",
        ];
        for input in inputs {
            assert!(parse_cert_pem(input).is_err());
            assert!(parse_certs_pem(input).is_err());
            assert!(parse_key_pem(input).is_err());
        }
    }
}
