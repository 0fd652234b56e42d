//! Verifiers that trust exactly one certificate.
//!
//! go-plugin's certificates are self-signed `CA:TRUE` certificates used as
//! end entities, which webpki's path building refuses (`CaUsedAsEndEntity`).
//! Go accepts them because a leaf byte-identical to a pool member is
//! trusted without building a path; these verifiers do the same.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::error::{CertError, Rejection};
use crate::pem::{parse_x509, sha256_hex};

/// The pinned certificate and what is checked about it on every handshake.
#[derive(Debug)]
struct Pin {
    der: CertificateDer<'static>,
    fingerprint: String,
    not_before: UnixTime,
    not_after: UnixTime,
}

impl Pin {
    fn new(der: CertificateDer<'static>) -> Result<Pin, CertError> {
        let cert = parse_x509(&der)?;
        let validity = cert.validity();
        let as_unix = |timestamp: i64| {
            UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(timestamp).unwrap_or(0)))
        };
        let not_before = as_unix(validity.not_before.timestamp());
        let not_after = as_unix(validity.not_after.timestamp());
        Ok(Pin {
            fingerprint: sha256_hex(&der),
            der,
            not_before,
            not_after,
        })
    }

    /// Accepts only the pinned certificate, alone, within its validity.
    fn check(
        &self,
        role: &'static str,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let result = self.check_inner(end_entity, intermediates, now);
        match &result {
            Ok(()) => tracing::debug!(
                peer = role,
                fingerprint = %self.fingerprint,
                "pinned certificate accepted"
            ),
            Err(err) => tracing::warn!(
                peer = role,
                pinned = %self.fingerprint,
                presented = %sha256_hex(end_entity),
                error = %err,
                "peer certificate rejected"
            ),
        }
        result
    }

    fn check_inner(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        if end_entity.as_ref() != self.der.as_ref() {
            return Err(Rejection::into_rustls(CertError::NotPinned {
                presented: sha256_hex(end_entity),
                pinned: self.fingerprint.clone(),
            }));
        }
        if !intermediates.is_empty() {
            return Err(Rejection::into_rustls(CertError::UnexpectedIntermediates {
                count: intermediates.len(),
            }));
        }
        if now < self.not_before {
            return Err(CertificateError::NotValidYetContext {
                time: now,
                not_before: self.not_before,
            }
            .into());
        }
        if now > self.not_after {
            return Err(CertificateError::ExpiredContext {
                time: now,
                not_after: self.not_after,
            }
            .into());
        }
        Ok(())
    }
}

/// A rustls [`ServerCertVerifier`] for TLS clients that accepts exactly one
/// server certificate.
///
/// It accepts a server whose end-entity certificate is byte-for-byte the
/// pinned one, sent without further certificates, currently within its
/// validity period, and valid for the server name the client asked for
/// (`localhost`, checked against the certificate's subject alternative
/// names). Handshake signatures are checked with the crate's
/// [`provider`](crate::provider), which covers P-256, P-384, P-521 and RSA.
///
/// [`client_config`](crate::client_config) uses it for
/// [`PeerTrust::Pinned`](crate::PeerTrust::Pinned).
///
/// # Example
///
/// ```
/// use std::sync::Arc;
///
/// use rpcplugin_certs::{Identity, KeyType, PinnedServerCertVerifier};
///
/// let plugin = Identity::generate(KeyType::EcP256)?;
/// let verifier = PinnedServerCertVerifier::new(plugin.cert_der().clone())?;
/// let config = rustls::ClientConfig::builder_with_provider(rpcplugin_certs::provider())
///     .with_protocol_versions(&[&rustls::version::TLS13])
///     .unwrap()
///     .dangerous()
///     .with_custom_certificate_verifier(Arc::new(verifier))
///     .with_no_client_auth();
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
#[derive(Debug)]
pub struct PinnedServerCertVerifier {
    pin: Pin,
    provider: Arc<CryptoProvider>,
}

impl PinnedServerCertVerifier {
    /// Pins `cert`, the DER the plugin sent in its handshake line.
    ///
    /// # Errors
    ///
    /// [`CertError::BadCertificate`] if `cert` is not an X.509 certificate.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::{Identity, KeyType, PinnedServerCertVerifier};
    ///
    /// let plugin = Identity::generate(KeyType::EcP521)?;
    /// let verifier = PinnedServerCertVerifier::new(plugin.cert_der().clone())?;
    /// assert!(PinnedServerCertVerifier::new(b"junk".to_vec().into()).is_err());
    /// # Ok::<(), rpcplugin_certs::CertError>(())
    /// ```
    pub fn new(cert: CertificateDer<'static>) -> Result<Self, CertError> {
        Ok(PinnedServerCertVerifier {
            pin: Pin::new(cert)?,
            provider: crate::provider(),
        })
    }
}

impl ServerCertVerifier for PinnedServerCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.pin.check("server", end_entity, intermediates, now)?;
        let parsed = ParsedCertificate::try_from(end_entity)?;
        if let Err(err) = rustls::client::verify_server_name(&parsed, server_name) {
            tracing::warn!(
                server_name = ?server_name,
                error = %err,
                "pinned server certificate is not valid for the server name"
            );
            return Err(err);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls [`ClientCertVerifier`] for TLS servers that requires a client
/// certificate and accepts exactly one.
///
/// Client authentication is mandatory. The verifier sends an empty list of
/// acceptable CA names (a Go client only sends its certificate if the list
/// is empty or names its issuer) and offers every signature scheme the
/// crate's [`provider`](crate::provider) verifies, including
/// `ecdsa_secp521r1_sha512` (without it a Go client with a P-521 key sends
/// no certificate over TLS 1.3). It accepts a client whose certificate is
/// byte-for-byte the pinned one, sent without further certificates, and
/// currently within its validity period.
///
/// [`server_config`](crate::server_config) uses it for
/// [`PeerTrust::Pinned`](crate::PeerTrust::Pinned).
///
/// # Example
///
/// ```
/// use std::sync::Arc;
///
/// use rpcplugin_certs::{Identity, KeyType, PinnedClientCertVerifier};
/// use rustls::server::danger::ClientCertVerifier;
///
/// let host = Identity::generate(KeyType::EcP256)?;
/// let verifier = PinnedClientCertVerifier::new(host.cert_der().clone())?;
/// assert!(verifier.client_auth_mandatory());
/// assert!(verifier.root_hint_subjects().is_empty());
/// assert!(verifier.supported_verify_schemes().contains(&rustls::SignatureScheme::ECDSA_NISTP521_SHA512));
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
#[derive(Debug)]
pub struct PinnedClientCertVerifier {
    pin: Pin,
    provider: Arc<CryptoProvider>,
}

impl PinnedClientCertVerifier {
    /// Pins `cert`, the certificate the host sent in `PLUGIN_CLIENT_CERT`.
    ///
    /// # Errors
    ///
    /// [`CertError::BadCertificate`] if `cert` is not an X.509 certificate.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::{Identity, KeyType, PinnedClientCertVerifier, parse_cert_pem};
    ///
    /// let host = Identity::generate(KeyType::EcP256)?;
    /// let env_value = host.cert_pem();
    /// let verifier = PinnedClientCertVerifier::new(parse_cert_pem(env_value.as_bytes())?)?;
    /// # Ok::<(), rpcplugin_certs::CertError>(())
    /// ```
    pub fn new(cert: CertificateDer<'static>) -> Result<Self, CertError> {
        Ok(PinnedClientCertVerifier {
            pin: Pin::new(cert)?,
            provider: crate::provider(),
        })
    }
}

impl ClientCertVerifier for PinnedClientCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.pin.check("client", end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
