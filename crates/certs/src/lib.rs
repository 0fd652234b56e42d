//! Certificates and TLS configurations for go-plugin peers.
//!
//! go-plugin's AutoMTLS gives each side a fresh self-signed certificate. The
//! host passes its certificate to the plugin as PEM in `PLUGIN_CLIENT_CERT`;
//! the plugin answers with its own certificate, base64 DER, in the
//! handshake line. Each side then trusts exactly the other's certificate.
//! This crate provides the pieces:
//!
//! - [`Identity`]: a certificate with its private key, generated with
//!   [`Identity::generate`] in go-plugin's shape (self-signed, `CA:TRUE`,
//!   `DNS:localhost`, serverAuth + clientAuth) or loaded from PEM for
//!   manual TLS ([`Identity::from_pem`], [`Identity::from_files`]);
//! - [`KeyType`]: P-256 (the default), P-384, P-521, RSA 2048/3072/4096;
//! - [`server_config`] and [`client_config`]: rustls configurations for
//!   mutual TLS with ALPN `h2`, trusting either one pinned certificate
//!   ([`PeerTrust::Pinned`], AutoMTLS) or a CA bundle ([`PeerTrust::Roots`],
//!   manual TLS);
//! - [`parse_cert_pem`], [`parse_certs_pem`], [`cert_key_type`] for what
//!   arrives from the other side.
//!
//! ```
//! use rpcplugin_certs::{Identity, KeyType, PeerTrust, client_config, server_config};
//!
//! let host = Identity::generate(KeyType::EcP256)?;
//! let plugin = Identity::generate(KeyType::EcP256)?;
//! // Plugin side: serve with its identity, accept only the host.
//! let server = server_config(&plugin, PeerTrust::Pinned(host.cert_der().clone()))?;
//! // Host side: connect with its identity, accept only the plugin.
//! let client = client_config(Some(&host), PeerTrust::Pinned(plugin.cert_der().clone()))?;
//! # Ok::<(), rpcplugin_certs::CertError>(())
//! ```
//!
//! # Why pinned verifiers
//!
//! A go-plugin certificate is a CA certificate used as its own end entity.
//! WebPKI path validation, and therefore rustls' `WebPkiServerVerifier` and
//! `WebPkiClientVerifier`, refuse that (`CaUsedAsEndEntity`). Go accepts it
//! because a leaf that is byte-identical to a trusted certificate is trusted
//! without building a path. [`PinnedServerCertVerifier`] and
//! [`PinnedClientCertVerifier`] do the same: byte equality with the pinned
//! certificate, no intermediates, the validity period, and on the client
//! side the name `localhost`. The server side sends an empty list of
//! acceptable CAs and offers every signature scheme it can verify, which
//! is what makes a Go client send its certificate at all.
//!
//! A rejected peer shows up as a [`rustls::Error`] (inside an
//! [`std::io::Error`] when it comes through `tokio-rustls`);
//! [`CertError::find_in`] recovers [`CertError::NotPinned`] or
//! [`CertError::UnexpectedIntermediates`] from it. With TLS 1.3 a client
//! learns that the server refused its certificate only on its first read.
//!
//! # Why aws-lc-rs and not ring
//!
//! go-plugin's certificates are ECDSA P-521 signed with SHA-512. *ring*
//! can neither sign nor verify P-521 (so a Go peer's certificate cannot even
//! be checked), and rcgen on *ring* cannot generate RSA keys. Everything
//! here therefore uses rustls' aws-lc-rs [`provider`], passed explicitly to
//! every configuration builder. Do not enable rustls' `ring` feature in the
//! same build: with two providers compiled in, rustls' process-wide default
//! cannot be chosen and `ClientConfig::builder()` panics.
//!
//! aws-lc seeds its random generator from CPU-jitter entropy by default,
//! which costs tens of milliseconds on the first draw in each process
//! (every plugin start). Building with the environment variable
//! `AWS_LC_SYS_NO_JITTER_ENTROPY=1` seeds it from the operating system
//! instead. The first [`Identity::generate`] of a process times that first
//! draw and, when it took over [`SLOW_FIRST_DRAW`], logs one `info` line
//! naming the variable and the `.cargo/config.toml` fix
//! ([`first_random_draw`], [`slow_first_draw_notice`]).
//!
//! # Logging
//!
//! Generation runs in a `tracing` span `generate_identity` and logs its
//! duration at debug level. Pinned verifiers log acceptance at debug level
//! and rejection at warn level, with both SHA-256 fingerprints.

#![warn(unreachable_pub)]

mod config;
mod entropy;
mod error;
mod identity;
mod key_type;
mod pem;
mod pki;
mod verify;

pub use crate::config::{PeerTrust, client_config, provider, server_config, server_name};
pub use crate::entropy::{SLOW_FIRST_DRAW, first_random_draw, slow_first_draw_notice};
pub use crate::error::CertError;
pub use crate::identity::{Identity, cert_fingerprint};
pub use crate::key_type::{KeyType, cert_key_type};
pub use crate::pem::{parse_cert_pem, parse_certs_pem};
pub use crate::verify::{PinnedClientCertVerifier, PinnedServerCertVerifier};

/// Helpers for this workspace's own tools and tests, outside the supported
/// API: they may change in any release.
///
/// - [`DevPki`](internal::DevPki), a throw-away CA for manual TLS, is used by
///   `cargo xtask pki`, `rpcplugin validate-connection` and the manual-TLS
///   tests;
/// - [`server_config_with_versions`](internal::server_config_with_versions)
///   and [`client_config_with_versions`](internal::client_config_with_versions)
///   pin the TLS versions, for the TLS 1.2 and 1.3 interop and refusal tests
///   of this crate and the reliability suite.
#[doc(hidden)]
pub mod internal {
    pub use crate::config::{client_config_with_versions, server_config_with_versions};
    pub use crate::pki::DevPki;
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
