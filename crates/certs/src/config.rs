//! rustls client and server configurations.

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, DnsName, ServerName};

use crate::error::CertError;
use crate::identity::Identity;
use crate::verify::{PinnedClientCertVerifier, PinnedServerCertVerifier};

/// The only ALPN protocol offered and accepted: gRPC runs over HTTP/2, and
/// grpc-go (>= 1.67) and grpcio refuse TLS connections without ALPN `h2`.
const ALPN_H2: &[u8] = b"h2";

/// TLS 1.3 and TLS 1.2, the versions Go peers use (go-plugin sets TLS 1.2 as
/// the minimum).
const DEFAULT_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Which certificates a peer may present.
///
/// # Example
///
/// ```
/// use rpcplugin_certs::{Identity, KeyType, PeerTrust, parse_certs_pem};
///
/// // AutoMTLS: trust exactly the certificate the other side announced.
/// let host = Identity::generate(KeyType::EcP256)?;
/// let automtls = PeerTrust::Pinned(host.cert_der().clone());
///
/// // Manual TLS: trust any certificate issued under these CAs.
/// let ca_bundle = host.cert_pem(); // normally read from a file
/// let manual = PeerTrust::Roots(parse_certs_pem(ca_bundle.as_bytes())?);
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerTrust {
    /// Accept only this certificate, compared byte for byte, presented
    /// without intermediates (AutoMTLS). It may be self-signed and
    /// `CA:TRUE`.
    Pinned(CertificateDer<'static>),
    /// Ordinary WebPKI chain validation up to one of these CA certificates
    /// (manual TLS with a CA bundle). The peer's certificate must not be a
    /// CA certificate itself.
    Roots(Vec<CertificateDer<'static>>),
}

/// The crypto provider every configuration of this crate uses: rustls'
/// aws-lc-rs provider, built once.
///
/// aws-lc-rs, unlike ring, signs and verifies ECDSA P-521, which go-plugin's
/// certificates use. Key exchange groups offered: X25519MLKEM768, X25519,
/// secp256r1, secp384r1.
///
/// # Example
///
/// ```
/// let config = rustls::ClientConfig::builder_with_provider(rpcplugin_certs::provider())
///     .with_safe_default_protocol_versions()
///     .unwrap();
/// ```
#[must_use]
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())))
}

/// The TLS server name clients use, for unix sockets and TCP alike:
/// `localhost`.
///
/// (An IP address as server name sends no SNI and is checked against IP
/// subject alternative names, which go-plugin certificates do not have.)
///
/// # Example
///
/// ```
/// assert_eq!(rpcplugin_certs::server_name().to_str(), "localhost");
/// ```
#[must_use]
pub fn server_name() -> ServerName<'static> {
    match DnsName::try_from_str("localhost") {
        Ok(name) => ServerName::DnsName(name),
        // Unreachable: "localhost" is a valid DNS name.
        Err(_) => ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
    }
}

/// A TLS server configuration (TLS 1.2 and 1.3, ALPN `h2`) that presents
/// `identity` and requires a client certificate accepted by `client_trust`.
///
/// With [`PeerTrust::Pinned`] the client must present exactly that
/// certificate (see [`PinnedClientCertVerifier`]); with
/// [`PeerTrust::Roots`] it must present a certificate chaining to one of the
/// roots, checked by rustls' WebPKI verifier.
///
/// # Errors
///
/// [`CertError::BadCertificate`] for a pinned certificate that is not a
/// certificate, [`CertError::NoTrustedCertificates`] or
/// [`CertError::BadTrustAnchor`] for unusable roots.
///
/// # Example
///
/// ```
/// use rpcplugin_certs::{Identity, KeyType, PeerTrust, parse_cert_pem, server_config};
///
/// // In the plugin: the host's certificate came in PLUGIN_CLIENT_CERT.
/// # let host = Identity::generate(KeyType::EcP256)?;
/// # let plugin_client_cert = host.cert_pem();
/// let host_cert = parse_cert_pem(plugin_client_cert.as_bytes())?;
/// let identity = Identity::generate(KeyType::EcP256)?;
/// let config = server_config(&identity, PeerTrust::Pinned(host_cert))?;
/// assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
pub fn server_config(
    identity: &Identity,
    client_trust: PeerTrust,
) -> Result<Arc<ServerConfig>, CertError> {
    server_config_with_versions(identity, client_trust, DEFAULT_VERSIONS)
}

/// [`server_config`] restricted to some TLS versions, e.g.
/// `&[&rustls::version::TLS12]`.
///
/// # Errors
///
/// As [`server_config`]; also [`CertError::TlsConfig`] if `versions` is
/// empty.
///
/// # Example
///
/// ```
/// use rpcplugin_certs::internal::server_config_with_versions;
/// use rpcplugin_certs::{Identity, KeyType, PeerTrust};
///
/// let host = Identity::generate(KeyType::EcP256)?;
/// let identity = Identity::generate(KeyType::EcP256)?;
/// let config = server_config_with_versions(
///     &identity,
///     PeerTrust::Pinned(host.cert_der().clone()),
///     &[&rustls::version::TLS13],
/// )?;
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
pub fn server_config_with_versions(
    identity: &Identity,
    client_trust: PeerTrust,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<ServerConfig>, CertError> {
    let provider = provider();
    let verifier: Arc<dyn ClientCertVerifier> = match client_trust {
        PeerTrust::Pinned(cert) => Arc::new(PinnedClientCertVerifier::new(cert)?),
        PeerTrust::Roots(roots) => {
            WebPkiClientVerifier::builder_with_provider(root_store(roots)?, Arc::clone(&provider))
                .build()
                .map_err(|err| CertError::TlsConfig {
                    reason: err.to_string(),
                })?
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(tls_config_error)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified_key())));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// A TLS client configuration (TLS 1.2 and 1.3, ALPN `h2`) that presents
/// `identity` if given, and accepts only servers `server_trust` accepts.
///
/// With [`PeerTrust::Pinned`] the server must present exactly that
/// certificate, valid for the [`server_name`] `localhost` (see
/// [`PinnedServerCertVerifier`]); with [`PeerTrust::Roots`] it must present
/// a chain to one of the roots, checked by rustls' WebPKI verifier. Connect
/// with [`server_name`] as the server name.
///
/// # Errors
///
/// As [`server_config`].
///
/// # Example
///
/// ```
/// use rpcplugin_certs::{Identity, KeyType, PeerTrust, client_config};
///
/// // In the host: the plugin's certificate came in its handshake line.
/// # let plugin = Identity::generate(KeyType::EcP256)?;
/// # let field = plugin.cert_base64();
/// use base64::Engine as _;
/// let der = base64::engine::general_purpose::STANDARD_NO_PAD.decode(field).unwrap();
/// let host = Identity::generate(KeyType::EcP256)?;
/// let config = client_config(Some(&host), PeerTrust::Pinned(der.into()))?;
/// assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
pub fn client_config(
    identity: Option<&Identity>,
    server_trust: PeerTrust,
) -> Result<Arc<ClientConfig>, CertError> {
    client_config_with_versions(identity, server_trust, DEFAULT_VERSIONS)
}

/// [`client_config`] restricted to some TLS versions, e.g.
/// `&[&rustls::version::TLS12]`.
///
/// # Errors
///
/// As [`client_config`]; also [`CertError::TlsConfig`] if `versions` is
/// empty.
///
/// # Example
///
/// ```
/// use rpcplugin_certs::internal::client_config_with_versions;
/// use rpcplugin_certs::{Identity, KeyType, PeerTrust};
///
/// let plugin = Identity::generate(KeyType::EcP256)?;
/// let config = client_config_with_versions(
///     None,
///     PeerTrust::Pinned(plugin.cert_der().clone()),
///     &[&rustls::version::TLS12],
/// )?;
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
pub fn client_config_with_versions(
    identity: Option<&Identity>,
    server_trust: PeerTrust,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<ClientConfig>, CertError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match server_trust {
        PeerTrust::Pinned(cert) => Arc::new(PinnedServerCertVerifier::new(cert)?),
        PeerTrust::Roots(roots) => {
            WebPkiServerVerifier::builder_with_provider(root_store(roots)?, Arc::clone(&provider))
                .build()
                .map_err(|err| CertError::TlsConfig {
                    reason: err.to_string(),
                })?
        }
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(tls_config_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(identity) => builder
            .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified_key()))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// A root store holding every given CA certificate.
fn root_store(roots: Vec<CertificateDer<'static>>) -> Result<Arc<RootCertStore>, CertError> {
    if roots.is_empty() {
        return Err(CertError::NoTrustedCertificates);
    }
    let mut store = RootCertStore::empty();
    for (index, root) in roots.into_iter().enumerate() {
        store.add(root).map_err(|err| CertError::BadTrustAnchor {
            index,
            reason: err.to_string(),
        })?;
    }
    Ok(Arc::new(store))
}

fn tls_config_error(err: rustls::Error) -> CertError {
    CertError::TlsConfig {
        reason: err.to_string(),
    }
}
