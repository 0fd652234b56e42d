//! A certificate with its private key: generated for AutoMTLS or loaded
//! from PEM for manual TLS.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, RsaKeySize, SerialNumber,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::CertError;
use crate::key_type::{KeyType, cert_key_type};
use crate::pem::{encode_pem, parse_certs_pem, parse_key_pem, sha256_hex};

/// Subject and issuer of generated certificates: `O=rpcplugin, CN=localhost`.
const ORGANIZATION: &str = "rpcplugin";
/// The only name generated certificates are valid for.
const HOST_NAME: &str = "localhost";
/// go-plugin backdates NotBefore by 30 s against clock skew between processes.
const BACKDATE: time::Duration = time::Duration::seconds(30);
/// go-plugin's validity period: 262 980 hours (about 30 years).
const LIFETIME: time::Duration = time::Duration::hours(262_980);

/// A certificate and its private key, ready to be presented in a TLS
/// handshake.
///
/// Make one with [`Identity::generate`] (AutoMTLS) or load one with
/// [`Identity::from_pem`] / [`Identity::from_files`] (manual TLS). Cloning is
/// cheap apart from copying the key bytes. `Debug` never shows the key.
///
/// # Example
///
/// ```
/// use rpcplugin_certs::{Identity, KeyType};
///
/// let identity = Identity::generate(KeyType::EcP256)?;
/// // The PEM goes to the plugin in PLUGIN_CLIENT_CERT ...
/// assert!(identity.cert_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
/// // ... and the plugin answers with unpadded base64 DER in the handshake.
/// assert!(!identity.cert_base64().contains('='));
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
pub struct Identity {
    key_type: KeyType,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    certified: Arc<CertifiedKey>,
}

impl Identity {
    /// Generates a fresh key pair and a self-signed certificate shaped like
    /// go-plugin's AutoMTLS certificates.
    ///
    /// The certificate has subject and issuer `O=rpcplugin, CN=localhost`,
    /// a random 128-bit serial number, validity from 30 seconds ago for
    /// 262 980 hours, a critical `CA:TRUE` basic constraint, a critical key
    /// usage (digitalSignature, keyEncipherment, keyAgreement, keyCertSign),
    /// extended key usages serverAuth and clientAuth, the single subject
    /// alternative name `DNS:localhost`, and a subject key identifier. It is
    /// signed with ecdsa-with-SHA256/SHA384/SHA512 for P-256/P-384/P-521
    /// and sha256WithRSAEncryption for RSA.
    ///
    /// # Errors
    ///
    /// [`CertError::Generate`] if the crypto library fails (in practice only
    /// when the system's random number source does).
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::{Identity, KeyType};
    ///
    /// let identity = Identity::generate(KeyType::EcP521)?;
    /// assert_eq!(identity.key_type(), KeyType::EcP521);
    /// # Ok::<(), rpcplugin_certs::CertError>(())
    /// ```
    pub fn generate(key_type: KeyType) -> Result<Identity, CertError> {
        let span = tracing::debug_span!("generate_identity", key_type = %key_type);
        let _entered = span.enter();
        let started = Instant::now();
        let fail = |reason: String| CertError::Generate { key_type, reason };
        crate::entropy::check_first_draw();

        let key_pair =
            new_key_pair(key_type).map_err(|err| fail(format!("key generation: {err}")))?;
        let key_generated = started.elapsed();

        let params = automtls_params().map_err(fail)?;
        let cert = params
            .self_signed(&key_pair)
            .map_err(|err| fail(format!("signing: {err}")))?;
        let cert = cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let identity = Identity::assemble(vec![cert], key).map_err(|err| fail(err.to_string()))?;

        tracing::debug!(
            key_us = key_generated.as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            fingerprint = %identity.fingerprint(),
            "generated certificate"
        );
        Ok(identity)
    }

    /// Wraps a certificate made here and its rcgen key pair.
    pub(crate) fn from_generated(
        cert: CertificateDer<'static>,
        key_pair: &KeyPair,
    ) -> Result<Identity, CertError> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        Identity::assemble(vec![cert], key)
    }

    /// Loads a certificate and its private key from PEM text.
    ///
    /// `cert_pem` holds one or more `CERTIFICATE` blocks: the first is this
    /// identity's certificate, any others are presented after it as its
    /// chain (intermediates up to, not including, the root). `key_pem` holds
    /// the private key as SEC1 `EC PRIVATE KEY`, PKCS#8 `PRIVATE KEY` or
    /// PKCS#1 `RSA PRIVATE KEY` (unencrypted); other blocks around it are
    /// skipped.
    ///
    /// # Errors
    ///
    /// [`CertError::NoCertificate`], [`CertError::NoPrivateKey`],
    /// [`CertError::Pem`] or [`CertError::BadCertificate`] for unusable
    /// input; [`CertError::UnsupportedAlgorithm`],
    /// [`CertError::UnsupportedCurve`] or
    /// [`CertError::UnsupportedRsaKeySize`] if the certificate's key is not
    /// one of the [`KeyType`]s; [`CertError::BadPrivateKey`] if the key
    /// cannot be loaded; [`CertError::KeyMismatch`] if it is not the
    /// certificate's key.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::{CertError, Identity, KeyType};
    ///
    /// let original = Identity::generate(KeyType::EcP384)?;
    /// let loaded = Identity::from_pem(original.cert_pem().as_bytes(), original.key_pem().as_bytes())?;
    /// assert_eq!(loaded.cert_der(), original.cert_der());
    ///
    /// let other = Identity::generate(KeyType::EcP384)?;
    /// let err = Identity::from_pem(original.cert_pem().as_bytes(), other.key_pem().as_bytes());
    /// assert!(matches!(err, Err(CertError::KeyMismatch)));
    /// # Ok::<(), CertError>(())
    /// ```
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Identity, CertError> {
        let chain = parse_certs_pem(cert_pem)?;
        let key = parse_key_pem(key_pem)?;
        Identity::assemble(chain, key)
    }

    /// Loads a certificate (chain) and its private key from PEM files, as
    /// [`Identity::from_pem`] does.
    ///
    /// # Errors
    ///
    /// Every error names the file it concerns: [`CertError::ReadFile`] if a
    /// file cannot be read, [`CertError::KeyMismatchInFiles`] if the key
    /// does not belong to the certificate, and otherwise
    /// [`CertError::InFile`] wrapping the problem found in that file.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::{CertError, Identity, KeyType};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    /// let original = Identity::generate(KeyType::EcP256)?;
    /// std::fs::write(&cert_path, original.cert_pem()).unwrap();
    /// std::fs::write(&key_path, original.key_pem()).unwrap();
    ///
    /// let loaded = Identity::from_files(&cert_path, &key_path)?;
    /// assert_eq!(loaded.cert_der(), original.cert_der());
    ///
    /// let err = Identity::from_files(&dir.path().join("missing.pem"), &key_path).unwrap_err();
    /// assert!(matches!(err, CertError::ReadFile { .. }));
    /// assert!(err.to_string().contains("missing.pem"));
    /// # Ok::<(), CertError>(())
    /// ```
    pub fn from_files(cert_path: &Path, key_path: &Path) -> Result<Identity, CertError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| CertError::ReadFile {
                path: path.to_path_buf(),
                source,
            })
        };
        let in_file = |path: &Path| {
            let path = path.to_path_buf();
            move |err: CertError| CertError::InFile {
                path,
                source: Box::new(err),
            }
        };
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let chain = parse_certs_pem(&cert_pem).map_err(in_file(cert_path))?;
        let key = parse_key_pem(&key_pem).map_err(in_file(key_path))?;
        Identity::assemble(chain, key).map_err(|err| match err {
            CertError::KeyMismatch => CertError::KeyMismatchInFiles {
                cert_path: cert_path.to_path_buf(),
                key_path: key_path.to_path_buf(),
            },
            err @ CertError::BadPrivateKey { .. } => in_file(key_path)(err),
            err => in_file(cert_path)(err),
        })
    }

    /// Checks and packages a chain (leaf first) and the leaf's key.
    fn assemble(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Identity, CertError> {
        let Some(cert) = chain.first().cloned() else {
            return Err(CertError::NoCertificate);
        };
        let key_type = cert_key_type(&cert)?;
        let signing_key = crate::provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|err| CertError::BadPrivateKey {
                reason: err.to_string(),
            })?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(CertError::KeyMismatch);
            }
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(CertError::BadPrivateKey {
                    reason: "its public key cannot be derived to check it against the certificate"
                        .to_owned(),
                });
            }
            Err(err) => {
                return Err(CertError::BadCertificate {
                    reason: err.to_string(),
                });
            }
        }
        Ok(Identity {
            key_type,
            cert,
            key,
            certified: Arc::new(certified),
        })
    }

    /// The kind of key in the certificate.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::{Identity, KeyType};
    ///
    /// assert_eq!(Identity::generate(KeyType::Rsa2048)?.key_type(), KeyType::Rsa2048);
    /// # Ok::<(), rpcplugin_certs::CertError>(())
    /// ```
    #[must_use]
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The certificate, DER-encoded.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::{Identity, KeyType, PeerTrust};
    ///
    /// let host = Identity::generate(KeyType::EcP256)?;
    /// // The plugin pins exactly these bytes.
    /// let trust = PeerTrust::Pinned(host.cert_der().clone());
    /// # Ok::<(), rpcplugin_certs::CertError>(())
    /// ```
    #[must_use]
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The certificate chain presented in handshakes: the certificate
    /// first, then any chain certificates loaded with it.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::{Identity, KeyType};
    ///
    /// let identity = Identity::generate(KeyType::EcP256)?;
    /// assert_eq!(identity.chain(), std::slice::from_ref(identity.cert_der()));
    /// # Ok::<(), rpcplugin_certs::CertError>(())
    /// ```
    #[must_use]
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.certified.cert
    }

    /// The certificate as one PEM `CERTIFICATE` block with 64-column lines
    /// and a trailing newline: the value of `PLUGIN_CLIENT_CERT`.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::{Identity, KeyType, parse_cert_pem};
    ///
    /// let identity = Identity::generate(KeyType::EcP256)?;
    /// let pem = identity.cert_pem();
    /// assert!(pem.ends_with("-----END CERTIFICATE-----\n"));
    /// assert_eq!(&parse_cert_pem(pem.as_bytes())?, identity.cert_der());
    /// # Ok::<(), rpcplugin_certs::CertError>(())
    /// ```
    #[must_use]
    pub fn cert_pem(&self) -> String {
        encode_pem("CERTIFICATE", &self.cert)
    }

    /// The certificate's DER in standard base64 without `=` padding: the
    /// sixth field of the plugin's handshake line.
    ///
    /// # Example
    ///
    /// ```
    /// use base64::Engine as _;
    /// use rpcplugin_certs::{Identity, KeyType};
    ///
    /// let identity = Identity::generate(KeyType::EcP256)?;
    /// let field = identity.cert_base64();
    /// let der = base64::engine::general_purpose::STANDARD_NO_PAD.decode(&field).unwrap();
    /// assert_eq!(der, identity.cert_der().as_ref());
    /// # Ok::<(), rpcplugin_certs::CertError>(())
    /// ```
    #[must_use]
    pub fn cert_base64(&self) -> String {
        STANDARD_NO_PAD.encode(&self.cert)
    }

    /// The private key as PEM, in the form it was loaded in (`EC PRIVATE
    /// KEY`, `RSA PRIVATE KEY`), or PKCS#8 `PRIVATE KEY` for generated keys.
    /// For writing key files for manual TLS; never send it anywhere.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::{Identity, KeyType};
    ///
    /// let identity = Identity::generate(KeyType::EcP256)?;
    /// assert!(identity.key_pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
    /// # Ok::<(), rpcplugin_certs::CertError>(())
    /// ```
    #[must_use]
    pub fn key_pem(&self) -> String {
        let label = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        encode_pem(label, self.key.secret_der())
    }

    /// The lower-case hex SHA-256 fingerprint of the certificate's DER, for
    /// logs and error messages.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::{Identity, KeyType, cert_fingerprint};
    ///
    /// let identity = Identity::generate(KeyType::EcP256)?;
    /// assert_eq!(identity.fingerprint().len(), 64);
    /// assert_eq!(identity.fingerprint(), cert_fingerprint(identity.cert_der()));
    /// # Ok::<(), rpcplugin_certs::CertError>(())
    /// ```
    #[must_use]
    pub fn fingerprint(&self) -> String {
        sha256_hex(&self.cert)
    }

    /// The certificate chain and signing key as rustls uses them.
    pub(crate) fn certified_key(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.certified)
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            key_type: self.key_type,
            cert: self.cert.clone(),
            key: self.key.clone_key(),
            certified: Arc::clone(&self.certified),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("key_type", &self.key_type)
            .field("fingerprint", &self.fingerprint())
            .field("chain_len", &self.certified.cert.len())
            .finish_non_exhaustive()
    }
}

/// The SHA-256 fingerprint (lower-case hex) of a DER certificate.
///
/// # Example
///
/// ```
/// use rpcplugin_certs::cert_fingerprint;
///
/// assert_eq!(
///     cert_fingerprint(b""),
///     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// ```
#[must_use]
pub fn cert_fingerprint(der: &[u8]) -> String {
    sha256_hex(der)
}

/// Certificate parameters for a generated AutoMTLS certificate.
fn automtls_params() -> Result<CertificateParams, String> {
    let mut params = CertificateParams::new(vec![HOST_NAME.to_owned()])
        .map_err(|err| format!("subject alternative name: {err}"))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, ORGANIZATION);
    name.push(DnType::CommonName, HOST_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now
        .checked_sub(BACKDATE)
        .ok_or("the system clock is out of range")?;
    params.not_after = now
        .checked_add(LIFETIME)
        .ok_or("the system clock is out of range")?;
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    Ok(params)
}

/// A uniformly random serial number in [0, 2^128), big-endian.
fn random_serial() -> Result<[u8; 16], String> {
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| "the random number source failed".to_owned())?;
    Ok(serial)
}

/// A fresh key pair of `key_type`, signing with the hash go-plugin pairs with it.
pub(crate) fn new_key_pair(key_type: KeyType) -> Result<KeyPair, rcgen::Error> {
    match key_type {
        KeyType::EcP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::EcP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::EcP521 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512),
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048),
        KeyType::Rsa3072 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072),
        KeyType::Rsa4096 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096),
    }
}
