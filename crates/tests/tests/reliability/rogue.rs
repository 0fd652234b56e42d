//! Hostile clients against a running Rust plugin (started by hand, see
//! `plugin.rs`). Each rogue connection is judged by whether the plugin's
//! HTTP/2 server ever answers it (a SETTINGS frame); the real host, which
//! holds the certificate and key the plugin pins, must get that answer
//! before and after every rogue attempt.

use crate::census::{Census, Row, ms, serial};
use crate::plugin::{BOUND, RowText, Running, Setup, plugin_case, start_plugin};
use crate::support::Scratch;
use rpcplugin::{Addr, Identity, KeyType, PeerTrust};
use rpcplugin_certs::internal::client_config_with_versions;
use rpcplugin_certs::server_name;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio_rustls::rustls::{ClientConfig, SupportedProtocolVersion, version};

const TLS13: &[&SupportedProtocolVersion] = &[&version::TLS13];
const TLS12: &[&SupportedProtocolVersion] = &[&version::TLS12];
const BOTH: &[&SupportedProtocolVersion] = &[&version::TLS13, &version::TLS12];

/// How a connection attempt ended.
#[derive(Debug)]
enum Outcome {
    /// The plugin's HTTP/2 server answered (a SETTINGS frame came back).
    Answered,
    /// It never did; why.
    Refused(String),
}

/// Connects to the plugin, does TLS with `tls` (or none), and sends the
/// HTTP/2 preface and an empty SETTINGS frame.
async fn attempt(addr: &Addr, tls: Option<ClientConfig>, junk: Option<&[u8]>) -> Outcome {
    let stream = match rpcplugin_transport::dial(addr).await {
        Ok(stream) => stream,
        Err(err) => return Outcome::Refused(format!("dial: {err}")),
    };
    let Some(tls) = tls else {
        return h2_exchange(stream, junk).await;
    };
    let connect = TlsConnector::from(Arc::new(tls)).connect(server_name(), stream);
    match tokio::time::timeout(BOUND, connect).await {
        Err(_) => Outcome::Refused("TLS handshake timed out".into()),
        Ok(Err(err)) => Outcome::Refused(format!("TLS handshake: {err}")),
        Ok(Ok(stream)) => h2_exchange(stream, junk).await,
    }
}

async fn h2_exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, junk: Option<&[u8]>) -> Outcome {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    let mut hello = match junk {
        Some(junk) => junk.to_vec(),
        None => PREFACE.to_vec(),
    };
    hello.extend_from_slice(&SETTINGS);
    if let Err(err) = async {
        s.write_all(&hello).await?;
        s.flush().await
    }
    .await
    {
        return Outcome::Refused(format!("write: {err}"));
    }
    let mut header = [0u8; 9];
    match tokio::time::timeout(BOUND, s.read_exact(&mut header)).await {
        Err(_) => Outcome::Refused("no answer".into()),
        Ok(Err(err)) => Outcome::Refused(format!("read: {err}")),
        Ok(Ok(_)) if header[3] == 4 => Outcome::Answered,
        Ok(Ok(_)) => Outcome::Refused(format!("first bytes {header:02x?} are no SETTINGS frame")),
    }
}

/// Runs one rogue-peer case on an AutoMTLS plugin: the real host is
/// served, the rogue attempt must be refused within the bound, and the
/// rest is [`plugin_case`]'s.
fn rogue_case(case: &str, rogue: impl FnOnce(&Running) -> (Option<ClientConfig>, Option<Vec<u8>>)) {
    let text = RowText {
        group: "rogue peer",
        case,
        expected: "refused; the real host is still served",
        bound: "2 s",
    };
    let setup = Setup {
        tls: true,
        ulimit: None,
    };
    plugin_case(text, setup, async |plugin| {
        plugin
            .serves_the_real_host()
            .await
            .map_err(|err| format!("before: {err}"))?;
        let (tls, junk) = rogue(plugin);
        let started = Instant::now();
        let outcome = attempt(&plugin.addr, tls, junk.as_deref()).await;
        let took = started.elapsed();
        let reason = match outcome {
            Outcome::Answered => return Err("the plugin's HTTP/2 server answered".into()),
            Outcome::Refused(reason) => reason,
        };
        if took > BOUND {
            return Err(format!("refused only after {}", ms(took)));
        }
        // Give the plugin's log line a moment to arrive.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(match plugin.last_refusal_log() {
            Some(log) => format!("refused in {}; plugin: {log}", ms(took)),
            None => format!("refused in {}; client: {reason}", ms(took)),
        })
    });
}

#[test]
fn client_without_a_certificate() {
    rogue_case("TLS client presenting no certificate", |p| {
        let config =
            client_config_with_versions(None, PeerTrust::Pinned(p.cert()), BOTH).expect("config");
        (Some(Arc::unwrap_or_clone(config)), None)
    });
}

#[test]
fn client_with_a_self_made_certificate() {
    rogue_case(
        "TLS client presenting a self-made AutoMTLS-style certificate",
        |p| {
            let stranger = Identity::generate(KeyType::EcP256).expect("identity");
            let config =
                client_config_with_versions(Some(&stranger), PeerTrust::Pinned(p.cert()), BOTH)
                    .expect("config");
            (Some(Arc::unwrap_or_clone(config)), None)
        },
    );
}

/// The real host's configuration, presenting the host's certificate but
/// signing with another key. rustls refuses to build such a pair through
/// `with_client_auth_cert` (it checks the key against the certificate), so
/// the pair is put together by hand.
fn right_cert_wrong_key(
    p: &Running,
    versions: &[&'static SupportedProtocolVersion],
) -> ClientConfig {
    let mut config = p.host_config(versions);
    let other = Identity::generate(KeyType::EcP256).expect("identity");
    let key = PrivateKeyDer::from_pem_slice(other.key_pem().as_bytes()).expect("key PEM");
    let signer = rpcplugin_certs::provider()
        .key_provider
        .load_private_key(key)
        .expect("signing key");
    let certified = CertifiedKey::new(vec![p.host.cert_der().clone()], signer);
    config.client_auth_cert_resolver = Arc::new(SingleCertAndKey::from(certified));
    config
}

#[test]
fn client_with_the_right_certificate_and_a_wrong_key_tls13() {
    rogue_case(
        "TLS 1.3 client presenting the host's certificate, signing with another key",
        |p| (Some(right_cert_wrong_key(p, TLS13)), None),
    );
}

#[test]
fn client_with_the_right_certificate_and_a_wrong_key_tls12() {
    rogue_case(
        "TLS 1.2 client presenting the host's certificate, signing with another key",
        |p| (Some(right_cert_wrong_key(p, TLS12)), None),
    );
}

#[test]
fn plaintext_client() {
    rogue_case("plaintext HTTP/2 client", |_| (None, None));
}

#[test]
fn tls_client_without_alpn() {
    rogue_case(
        "TLS client with the host's certificate and key, offering no ALPN",
        |p| {
            let mut config = p.host_config(BOTH);
            config.alpn_protocols.clear();
            (Some(config), None)
        },
    );
}

#[test]
fn tls_client_offering_only_http11() {
    rogue_case(
        "TLS client with the host's certificate and key, offering only ALPN http/1.1",
        |p| {
            let mut config = p.host_config(BOTH);
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            (Some(config), None)
        },
    );
}

#[test]
fn garbage_bytes() {
    rogue_case("4 KiB of garbage instead of a TLS ClientHello", |_| {
        let junk: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        (None, Some(junk))
    });
}

#[test]
fn idle_connections_do_not_block_the_real_host() {
    serial(|| async {
        let before = Census::take();
        let scratch = Scratch::new();
        let mut failures = Vec::new();
        let mut measured = String::new();
        match start_plugin(scratch.path(), &[]).await {
            Err(err) => failures.push(format!("start: {err}")),
            Ok(plugin) => {
                let mut idle = Vec::new();
                for _ in 0..64 {
                    match rpcplugin_transport::dial(&plugin.addr).await {
                        Ok(stream) => idle.push(stream),
                        Err(err) => {
                            failures.push(format!("dial: {err}"));
                            break;
                        }
                    }
                }
                match plugin.serves_the_real_host().await {
                    Ok(took) => {
                        measured = format!(
                            "{} idle connections open; real host served in {}",
                            idle.len(),
                            ms(took)
                        )
                    }
                    Err(err) => failures.push(err),
                }
                drop(idle);
                if let Err(err) = plugin.stop(scratch.path()).await {
                    failures.push(err);
                }
            }
        }
        Census::check_since(&before, &mut failures).await;
        Row {
            group: "rogue peer",
            case: "64 connections that never start TLS".to_owned(),
            expected: "the real host is served meanwhile".to_owned(),
            measured,
            bound: format!("{BOUND:?}"),
            failure: failures.join("; "),
        }
        .finish();
    });
}
