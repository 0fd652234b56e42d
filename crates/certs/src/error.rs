//! The crate's error type.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::key_type::{KeyType, valid_key_type_names};

/// Everything that can go wrong while generating, loading or checking
/// certificates, or while building TLS configurations.
///
/// Errors that concern a file wrap the underlying problem and name the file
/// ([`CertError::ReadFile`], [`CertError::InFile`],
/// [`CertError::KeyMismatchInFiles`]).
///
/// The verifiers built by [`server_config`](crate::server_config) and
/// [`client_config`](crate::client_config) report pin failures
/// ([`CertError::NotPinned`], [`CertError::UnexpectedIntermediates`]) inside a
/// [`rustls::Error`]; [`CertError::find_in`] digs them out again.
///
/// # Example
///
/// ```
/// use rpcplugin_certs::{CertError, parse_cert_pem};
///
/// let err = parse_cert_pem(b"no PEM here").unwrap_err();
/// assert!(matches!(err, CertError::NoCertificate));
/// assert_eq!(err.to_string(), "no CERTIFICATE PEM block found");
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// [`KeyType::from_str`](std::str::FromStr::from_str) was given a name it
    /// does not know. The message lists the accepted names.
    #[error("unknown key type {input:?}; valid names: {}", valid_key_type_names())]
    UnknownKeyType {
        /// The text that was given.
        input: String,
    },

    /// Generating a key pair or signing the certificate failed.
    #[error("generating a {key_type} certificate failed: {reason}")]
    Generate {
        /// The key type that was asked for.
        key_type: KeyType,
        /// What the underlying library reported.
        reason: String,
    },

    /// PEM text is malformed (bad base64, a block without its END line, ...).
    #[error("malformed PEM: {reason}")]
    Pem {
        /// What is wrong with the PEM text.
        reason: String,
    },

    /// The PEM text holds no `CERTIFICATE` block.
    #[error("no CERTIFICATE PEM block found")]
    NoCertificate,

    /// The PEM text holds no private key block.
    #[error(
        "no private key PEM block found (expected \"EC PRIVATE KEY\", \"PRIVATE KEY\" or \"RSA PRIVATE KEY\")"
    )]
    NoPrivateKey,

    /// Bytes that should be a DER X.509 certificate are not one.
    #[error("not a valid X.509 certificate: {reason}")]
    BadCertificate {
        /// What the parser reported.
        reason: String,
    },

    /// A private key could not be loaded (unsupported algorithm, corrupt
    /// encoding, RSA key of an unsupported size, ...).
    #[error("unusable private key: {reason}")]
    BadPrivateKey {
        /// What the crypto provider reported.
        reason: String,
    },

    /// The private key does not belong to the certificate's public key.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,

    /// A certificate's public key uses an algorithm other than ECDSA or RSA.
    #[error(
        "unsupported public key algorithm {name} (OID {oid}); supported: ECDSA P-256, P-384, P-521 and RSA 2048, 3072, 4096"
    )]
    UnsupportedAlgorithm {
        /// The algorithm's object identifier, dotted.
        oid: String,
        /// A human name for the algorithm, or `"unknown"`.
        name: &'static str,
    },

    /// A certificate's ECDSA key is on a curve other than P-256, P-384, P-521.
    #[error("unsupported elliptic curve {name} (OID {oid}); supported: P-256, P-384, P-521")]
    UnsupportedCurve {
        /// The curve's object identifier, dotted (`"none"` if absent).
        oid: String,
        /// A human name for the curve, or `"unknown"`.
        name: &'static str,
    },

    /// A certificate's RSA key has a size other than 2048, 3072 or 4096 bits.
    #[error("unsupported RSA key size of {bits} bits; supported: 2048, 3072, 4096")]
    UnsupportedRsaKeySize {
        /// The modulus size in bits.
        bits: usize,
    },

    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        /// The file or directory.
        path: PathBuf,
        /// Why it could not be written.
        source: io::Error,
    },

    /// The contents of a file were rejected.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<CertError>,
    },

    /// The private key file does not belong to the certificate file.
    #[error(
        "the private key in {} does not match the certificate in {}",
        key_path.display(),
        cert_path.display()
    )]
    KeyMismatchInFiles {
        /// The certificate file.
        cert_path: PathBuf,
        /// The private key file.
        key_path: PathBuf,
    },

    /// [`PeerTrust::Roots`](crate::PeerTrust::Roots) was given an empty list.
    #[error("no trusted CA certificates given")]
    NoTrustedCertificates,

    /// A certificate given as a trusted root cannot be used as a trust anchor.
    #[error("trusted certificate #{index} cannot be used as a trust anchor: {reason}")]
    BadTrustAnchor {
        /// Its position in the list, from 0.
        index: usize,
        /// What rustls reported.
        reason: String,
    },

    /// rustls refused to build a verifier or a configuration.
    #[error("building the TLS configuration failed: {reason}")]
    TlsConfig {
        /// What rustls reported.
        reason: String,
    },

    /// Verification failure: the peer's certificate is not byte-for-byte the
    /// pinned certificate.
    #[error(
        "the peer presented a certificate other than the pinned one (presented SHA-256 {presented}, pinned SHA-256 {pinned})"
    )]
    NotPinned {
        /// SHA-256 fingerprint of what the peer presented (hex).
        presented: String,
        /// SHA-256 fingerprint of the pinned certificate (hex).
        pinned: String,
    },

    /// Verification failure: the peer sent its pinned certificate together
    /// with further certificates, which a pinned peer never does.
    #[error(
        "the peer sent {count} certificate(s) after its pinned certificate; a pinned peer must send exactly one"
    )]
    UnexpectedIntermediates {
        /// How many extra certificates were sent.
        count: usize,
    },
}

impl CertError {
    /// Finds one of this crate's errors inside another error: a
    /// [`rustls::Error`] produced by a pinned verifier, an [`io::Error`]
    /// wrapping one (as `tokio-rustls` returns them), or any error whose
    /// [`source`](StdError::source) chain leads to one.
    ///
    /// Returns `None` if the failure did not come from this crate (for
    /// example an expired certificate, which rustls reports as
    /// [`rustls::CertificateError::ExpiredContext`]).
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::{CertError, Identity, KeyType, PeerTrust};
    /// use rustls::client::danger::ServerCertVerifier;
    /// use rustls_pki_types::UnixTime;
    ///
    /// let pinned = Identity::generate(KeyType::EcP256)?;
    /// let impostor = Identity::generate(KeyType::EcP256)?;
    /// let verifier = rpcplugin_certs::PinnedServerCertVerifier::new(pinned.cert_der().clone())?;
    /// let err = verifier
    ///     .verify_server_cert(
    ///         impostor.cert_der(),
    ///         &[],
    ///         &rpcplugin_certs::server_name(),
    ///         &[],
    ///         UnixTime::now(),
    ///     )
    ///     .unwrap_err();
    /// assert!(matches!(CertError::find_in(&err), Some(CertError::NotPinned { .. })));
    /// # Ok::<(), CertError>(())
    /// ```
    pub fn find_in<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a CertError> {
        let mut current: Option<&'a (dyn StdError + 'static)> = Some(err);
        while let Some(err) = current {
            if let Some(found) = err.downcast_ref::<CertError>() {
                return Some(found);
            }
            if let Some(rejection) = err.downcast_ref::<Rejection>() {
                return Some(&rejection.0);
            }
            if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))) =
                err.downcast_ref::<rustls::Error>()
            {
                let inner: &(dyn StdError + 'static) = other.0.as_ref();
                if let Some(found) = Self::find_in(inner) {
                    return Some(found);
                }
            }
            if let Some(io_err) = err.downcast_ref::<io::Error>()
                && let Some(inner) = io_err.get_ref()
            {
                let inner: &(dyn StdError + 'static) = inner;
                if let Some(found) = Self::find_in(inner) {
                    return Some(found);
                }
            }
            current = err.source();
        }
        None
    }
}

/// Carries a [`CertError`] through rustls' `CertificateError::Other`.
///
/// rustls formats that variant with `Debug`, so `Debug` here prints the
/// human message: a rejected handshake then reads
/// `invalid peer certificate: Other(OtherError(the peer presented a
/// certificate other than the pinned one ...))`.
pub(crate) struct Rejection(pub(crate) CertError);

impl Rejection {
    /// Wraps `err` as the rustls error a verifier returns.
    pub(crate) fn into_rustls(err: CertError) -> rustls::Error {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
            std::sync::Arc::new(Rejection(err)),
        )))
    }
}

impl fmt::Debug for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for Rejection {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_is_found_through_rustls_and_io() {
        let err = Rejection::into_rustls(CertError::UnexpectedIntermediates { count: 2 });
        assert!(
            err.to_string()
                .contains("a pinned peer must send exactly one")
        );
        assert!(matches!(
            CertError::find_in(&err),
            Some(CertError::UnexpectedIntermediates { count: 2 })
        ));
        let io_err = io::Error::new(io::ErrorKind::InvalidData, err);
        assert!(matches!(
            CertError::find_in(&io_err),
            Some(CertError::UnexpectedIntermediates { count: 2 })
        ));
        let other = rustls::Error::NoCertificatesPresented;
        assert!(CertError::find_in(&other).is_none());
    }
}
