//! Hostile clients against a running Rust plugin, and the plugin's socket
//! hygiene.
//!
//! The plugin is started here by hand, as a host would: magic cookie,
//! `PLUGIN_CLIENT_CERT` holding a certificate made with
//! `rpcplugin_certs::Identity`, `TMPDIR` pointing into a scratch
//! directory. Each rogue connection is judged by whether the plugin's
//! HTTP/2 server ever answers it (a SETTINGS frame); the real host, which
//! holds the certificate and key the plugin pins, must get that answer
//! before and after every rogue attempt.

use crate::census::{Census, MARK_ENV, Row, mark, ms, serial};
use crate::support::{PLUGIN, Scratch};
use rpcplugin::certs::{client_config_with_versions, server_name};
use rpcplugin::handshake::HandshakeLine;
use rpcplugin::runtime::proto::plugin::Empty;
use rpcplugin::runtime::proto::plugin::grpc_controller_client::GrpcControllerClient;
use rpcplugin::{Addr, Client, ClientTls, Identity, KeyType, PeerTrust, ReattachConfig};
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use rpcplugin_tests::{COOKIE_KEY, COOKIE_VALUE, MODE_ENV, mode};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio_rustls::rustls::{ClientConfig, SupportedProtocolVersion, version};

/// Each refusal, and each answer to the real host, must come within this.
const BOUND: Duration = Duration::from_secs(2);

const TLS13: &[&SupportedProtocolVersion] = &[&version::TLS13];
const TLS12: &[&SupportedProtocolVersion] = &[&version::TLS12];
const BOTH: &[&SupportedProtocolVersion] = &[&version::TLS13, &version::TLS12];

/// A plugin process started by hand, and what it announced.
struct Running {
    child: tokio::process::Child,
    addr: Addr,
    /// `None` when the plugin serves plaintext.
    plugin_cert: Option<CertificateDer<'static>>,
    host: Identity,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// Starts the test plugin as a host would (AutoMTLS), with `TMPDIR` = `tmp`.
async fn start_plugin(tmp: &Path, extra_env: &[(&str, &str)]) -> Result<Running, String> {
    start_plugin_with(tmp, extra_env, true).await
}

async fn start_plugin_with(
    tmp: &Path,
    extra_env: &[(&str, &str)],
    tls: bool,
) -> Result<Running, String> {
    let host = Identity::generate(KeyType::EcP256).map_err(|e| e.to_string())?;
    let mut cmd = tokio::process::Command::new(PLUGIN);
    cmd.env_clear()
        .env(COOKIE_KEY, COOKIE_VALUE)
        .env(MODE_ENV, mode::NORMAL)
        .env(MARK_ENV, mark())
        .env("PLUGIN_PROTOCOL_VERSIONS", "1")
        .env("TMPDIR", tmp)
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if tls {
        cmd.env("PLUGIN_CLIENT_CERT", host.cert_pem());
    }
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    let stderr = Arc::new(Mutex::new(Vec::new()));
    if let Some(pipe) = child.stderr.take() {
        let lines = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut pipe = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = pipe.next_line().await {
                if let Ok(mut lines) = lines.lock()
                    && lines.len() < 1000
                {
                    lines.push(line);
                }
            }
        });
    }
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    tokio::time::timeout(BOUND * 5, BufReader::new(stdout).read_line(&mut line))
        .await
        .map_err(|_| "no handshake line".to_owned())?
        .map_err(|e| e.to_string())?;
    let hs = HandshakeLine::parse(line.as_bytes()).map_err(|e| format!("{e}: {line:?}"))?;
    let addr = Addr::parse(hs.network, &hs.address).map_err(|e| e.to_string())?;
    let plugin_cert = hs.server_cert.map(CertificateDer::from);
    if plugin_cert.is_some() != tls {
        return Err(format!(
            "TLS {tls}, but the handshake says otherwise: {line:?}"
        ));
    }
    Ok(Running {
        child,
        addr,
        plugin_cert,
        host,
        stderr,
    })
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// How the real host connects: pinned AutoMTLS, or plaintext.
    fn host_tls(&self) -> ClientTls {
        match &self.plugin_cert {
            Some(cert) => ClientTls::Manual {
                identity: self.host.clone(),
                server_trust: PeerTrust::Pinned(cert.clone()),
            },
            None => ClientTls::Disabled,
        }
    }

    /// The pinned plugin certificate (AutoMTLS plugins only).
    fn cert(&self) -> CertificateDer<'static> {
        self.plugin_cert.clone().expect("an AutoMTLS plugin")
    }

    /// Peak resident set size of the plugin, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// The real host: reattaches with the pinned certificates, Put + Get +
    /// health, all within the bound.
    async fn serves_the_real_host(&self) -> Result<Duration, String> {
        let started = Instant::now();
        let work = async {
            let config = ReattachConfig::new(1, &self.addr, self.pid(), true);
            let tls = self.host_tls();
            let mut client = Client::reattach(&config, tls)
                .await
                .map_err(|e| e.to_string())?;
            let mut kv = KvClient::new(client.channel());
            kv.put(PutRequest {
                key: "real".into(),
                value: b"host".to_vec().into(),
            })
            .await
            .map_err(|e| e.to_string())?;
            let got = kv
                .get(GetRequest { key: "real".into() })
                .await
                .map_err(|e| e.to_string())?;
            if got.get_ref().value.as_ref() != b"host" {
                return Err("wrong value".to_owned());
            }
            client.ping().await.map_err(|e| e.to_string())?;
            client.kill().await.map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        };
        match tokio::time::timeout(BOUND, work).await {
            Ok(Ok(())) => Ok(started.elapsed()),
            Ok(Err(err)) => Err(format!("the real host was not served: {err}")),
            Err(_) => Err(format!("the real host got no answer within {BOUND:?}")),
        }
    }

    /// Rustls client configuration for the real host, restricted to
    /// `versions`; callers spoil one aspect of it.
    fn host_config(&self, versions: &[&'static SupportedProtocolVersion]) -> ClientConfig {
        let config =
            client_config_with_versions(Some(&self.host), PeerTrust::Pinned(self.cert()), versions)
                .expect("client config");
        Arc::unwrap_or_clone(config)
    }

    /// The plugin's last "TLS handshake with a client failed" log message.
    fn last_refusal_log(&self) -> Option<String> {
        let lines = self.stderr.lock().ok()?;
        let line = lines
            .iter()
            .rev()
            .find(|l| l.contains("TLS handshake with a client") || l.contains("ALPN h2"))?;
        let json: serde_json::Value = serde_json::from_str(line).ok()?;
        let text = json
            .get("err")
            .and_then(|v| v.as_str())
            .or_else(|| json.get("@message").and_then(|v| v.as_str()))?;
        // Fingerprints make some messages long; the start names the cause.
        Some(match text.char_indices().nth(110) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_owned(),
        })
    }

    /// Stops the plugin the way a host does (Shutdown); it must exit 0
    /// within the bound and remove its socket and socket directory.
    async fn stop(mut self, tmp: &Path) -> Result<(), String> {
        let config = ReattachConfig::new(1, &self.addr, self.pid(), true);
        let tls = self.host_tls();
        if let Ok(mut client) = Client::reattach(&config, tls).await {
            let mut controller = GrpcControllerClient::new(client.channel());
            let _ = tokio::time::timeout(BOUND, controller.shutdown(Empty {})).await;
            let _ = client.kill().await;
        }
        let status = match tokio::time::timeout(BOUND, self.child.wait()).await {
            Ok(Ok(status)) => status,
            _ => {
                let _ = self.child.kill().await;
                return Err("the plugin did not exit after Shutdown".into());
            }
        };
        if !status.success() {
            return Err(format!("the plugin exited with {status}"));
        }
        let left: Vec<_> = std::fs::read_dir(tmp)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if !left.is_empty() {
            return Err(format!("the plugin left {left:?}"));
        }
        Ok(())
    }
}

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
    let stream = match rpcplugin::transport::dial(addr).await {
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

/// Runs one rogue-peer case: starts a plugin, checks the real host is
/// served, makes the rogue attempt (which must be refused within the
/// bound), checks the real host is still served, stops the plugin, and
/// records the row.
fn rogue_case(case: &str, rogue: impl FnOnce(&Running) -> (Option<ClientConfig>, Option<Vec<u8>>)) {
    serial(|| async {
        let before = Census::take();
        let scratch = Scratch::new();
        let mut failures = Vec::new();
        let mut measured = String::new();
        match start_plugin(scratch.path(), &[]).await {
            Err(err) => failures.push(format!("start: {err}")),
            Ok(plugin) => {
                if let Err(err) = plugin.serves_the_real_host().await {
                    failures.push(format!("before: {err}"));
                }
                let (tls, junk) = rogue(&plugin);
                let peak_before = plugin.peak_rss_kib();
                let started = Instant::now();
                let outcome = attempt(&plugin.addr, tls, junk.as_deref()).await;
                let took = started.elapsed();
                match outcome {
                    Outcome::Answered => {
                        failures.push("the plugin's HTTP/2 server answered".into())
                    }
                    Outcome::Refused(reason) => {
                        if took > BOUND {
                            failures.push(format!("refused only after {}", ms(took)));
                        }
                        // Give the plugin's log line a moment to arrive.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        measured = match plugin.last_refusal_log() {
                            Some(log) => format!("refused in {}; plugin: {log}", ms(took)),
                            None => format!("refused in {}; client: {reason}", ms(took)),
                        };
                    }
                }
                let growth_mib = plugin.peak_rss_kib().saturating_sub(peak_before) / 1024;
                if growth_mib > 64 {
                    failures.push(format!("the plugin's peak RSS grew by {growth_mib} MiB"));
                }
                match plugin.serves_the_real_host().await {
                    Ok(took) => measured.push_str(&format!(
                        "; plugin peak RSS +{growth_mib} MiB; real host served in {}",
                        ms(took)
                    )),
                    Err(err) => failures.push(format!("after: {err}")),
                }
                if let Err(err) = plugin.stop(scratch.path()).await {
                    failures.push(err);
                }
            }
        }
        let leaks = Census::leaks_since(&before).await;
        if !leaks.is_empty() {
            Census::kill_marked();
            failures.extend(leaks);
        }
        let row = Row {
            group: "rogue peer",
            case: case.to_owned(),
            expected: "refused; the real host is still served".to_owned(),
            measured,
            bound: format!("{BOUND:?}"),
            failure: failures.join("; "),
        };
        row.record();
        assert!(row.failure.is_empty(), "{case}: {}", row.failure);
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
    let signer = rpcplugin::certs::provider()
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

/// A header block of one 4000-byte header added to the HPACK dynamic
/// table, then `refs` one-byte references to it, after the preface and an
/// empty SETTINGS frame.
fn hpack_bomb(refs: usize) -> Vec<u8> {
    let mut block = vec![0x40, 1, b'x', 0x7f];
    // 4000 - 127 as an HPACK integer continuation (RFC 7541 5.1).
    let mut rest = 4000 - 127;
    while rest >= 128 {
        block.push(u8::try_from(rest % 128).unwrap() | 0x80);
        rest /= 128;
    }
    block.push(u8::try_from(rest).unwrap());
    block.extend(std::iter::repeat_n(b'v', 4000));
    block.extend(std::iter::repeat_n(0xbe, refs));
    let len = u32::try_from(block.len()).unwrap().to_be_bytes();
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&[len[1], len[2], len[3], 1, 4, 0, 0, 0, 1]);
    bytes.extend_from_slice(&block);
    bytes
}

/// Sends `bytes` on a plaintext connection and reads frames until the
/// plugin closes it; returns the frame types it sent.
async fn send_until_closed(addr: &Addr, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut stream = rpcplugin::transport::dial(addr)
        .await
        .map_err(|e| e.to_string())?;
    // The plugin may close before it has read everything: ignore that.
    let _ = stream.write_all(bytes).await;
    let mut kinds = Vec::new();
    let read = async {
        loop {
            let mut header = [0u8; 9];
            if stream.read_exact(&mut header).await.is_err() {
                return;
            }
            kinds.push(header[3]);
            let len =
                usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            let mut payload = vec![0u8; len];
            if stream.read_exact(&mut payload).await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .map_err(|_| "the connection stayed open".to_owned())?;
    Ok(kinds)
}

#[test]
fn hpack_bomb_over_plaintext() {
    serial(|| async {
        let before = Census::take();
        let scratch = Scratch::new();
        let mut failures = Vec::new();
        let mut measured = String::new();
        match start_plugin_with(scratch.path(), &[], false).await {
            Err(err) => failures.push(format!("start: {err}")),
            Ok(plugin) => {
                let peak_before = plugin.peak_rss_kib();
                let started = Instant::now();
                match send_until_closed(&plugin.addr, &hpack_bomb(250_000)).await {
                    Err(err) => failures.push(err),
                    // 1 = HEADERS: a response means the block was accepted.
                    Ok(kinds) if kinds.contains(&1) => {
                        failures.push(format!("the plugin answered the request: frames {kinds:?}"))
                    }
                    Ok(kinds) => {
                        measured = format!(
                            "connection closed in {} (frames {kinds:?})",
                            ms(started.elapsed())
                        )
                    }
                }
                let growth_mib = plugin.peak_rss_kib().saturating_sub(peak_before) / 1024;
                if growth_mib > 64 {
                    failures.push(format!("the plugin's peak RSS grew by {growth_mib} MiB"));
                }
                match plugin.serves_the_real_host().await {
                    Ok(took) => measured.push_str(&format!(
                        "; plugin peak RSS +{growth_mib} MiB; real host served in {}",
                        ms(took)
                    )),
                    Err(err) => failures.push(format!("after: {err}")),
                }
                if let Err(err) = plugin.stop(scratch.path()).await {
                    failures.push(err);
                }
            }
        }
        let leaks = Census::leaks_since(&before).await;
        if !leaks.is_empty() {
            Census::kill_marked();
            failures.extend(leaks);
        }
        let row = Row {
            group: "rogue peer",
            case: "HPACK bomb: a 254 KB header block that decodes to 1 GB (plaintext plugin)"
                .to_owned(),
            expected: "connection closed, no memory blow-up; the real host is still served"
                .to_owned(),
            measured,
            bound: format!("{BOUND:?}"),
            failure: failures.join("; "),
        };
        row.record();
        assert!(row.failure.is_empty(), "{}", row.failure);
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
                    match rpcplugin::transport::dial(&plugin.addr).await {
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
        let leaks = Census::leaks_since(&before).await;
        if !leaks.is_empty() {
            Census::kill_marked();
            failures.extend(leaks);
        }
        let row = Row {
            group: "rogue peer",
            case: "64 connections that never start TLS".to_owned(),
            expected: "the real host is served meanwhile".to_owned(),
            measured,
            bound: format!("{BOUND:?}"),
            failure: failures.join("; "),
        };
        row.record();
        assert!(row.failure.is_empty(), "{}", row.failure);
    });
}

// ----- socket hygiene -----

/// Records a socket-hygiene row; `check` returns what it measured.
fn socket_case(
    case: &str,
    expected: &str,
    check: impl AsyncFnOnce(&Path) -> Result<String, String>,
) {
    serial(|| async {
        let before = Census::take();
        let scratch = Scratch::new();
        let result = check(scratch.path()).await;
        let mut failures = Vec::new();
        let measured = match result {
            Ok(measured) => measured,
            Err(err) => {
                failures.push(err);
                String::new()
            }
        };
        let leaks = Census::leaks_since(&before).await;
        if !leaks.is_empty() {
            Census::kill_marked();
            failures.extend(leaks);
        }
        let row = Row {
            group: "socket",
            case: case.to_owned(),
            expected: expected.to_owned(),
            measured,
            bound: String::new(),
            failure: failures.join("; "),
        };
        row.record();
        assert!(row.failure.is_empty(), "{case}: {}", row.failure);
    });
}

fn mode_of(path: &Path) -> Result<(u32, u32, u32), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((meta.permissions().mode() & 0o7777, meta.uid(), meta.gid()))
}

/// Our uid and a group we may hand sockets to (a supplementary group when
/// there is one, so the check differs from the default).
fn ids(tmp: &Path) -> Result<(u32, u32), String> {
    let probe = tmp.join("probe");
    std::fs::write(&probe, b"").map_err(|e| e.to_string())?;
    let meta = std::fs::metadata(&probe).map_err(|e| e.to_string())?;
    std::fs::remove_file(&probe).map_err(|e| e.to_string())?;
    let supplementary = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .and_then(|g| {
            g.split_whitespace()
                .filter_map(|g| g.parse::<u32>().ok())
                .find(|g| *g != meta.gid())
        });
    Ok((meta.uid(), supplementary.unwrap_or(meta.gid())))
}

fn socket_path(addr: &Addr) -> Result<PathBuf, String> {
    match addr {
        Addr::Unix(path) => Ok(path.clone()),
        other => Err(format!("not a unix socket: {other}")),
    }
}

#[test]
fn plugin_socket_is_owner_only() {
    socket_case(
        "unix socket the plugin creates (own private dir)",
        "dir 0700, socket 0600, owned by the user; both removed on exit",
        async |tmp| {
            let (uid, _) = ids(tmp)?;
            let plugin = start_plugin(tmp, &[]).await?;
            let socket = socket_path(&plugin.addr)?;
            let dir = socket.parent().ok_or("no parent")?.to_path_buf();
            let (dir_mode, dir_uid, _) = mode_of(&dir)?;
            let (sock_mode, sock_uid, _) = mode_of(&socket)?;
            plugin.stop(tmp).await?;
            if (dir_mode, sock_mode, dir_uid, sock_uid) != (0o700, 0o600, uid, uid) {
                return Err(format!(
                    "dir {dir_mode:o} uid {dir_uid}, socket {sock_mode:o} uid {sock_uid}"
                ));
            }
            Ok(format!(
                "dir {dir_mode:o}, socket {sock_mode:o}, uid {uid}; removed"
            ))
        },
    );
}

#[test]
fn plugin_socket_with_a_group() {
    socket_case(
        "unix socket with PLUGIN_UNIX_SOCKET_GROUP",
        "dir 0710 and socket 0660, both of that group",
        async |tmp| {
            let (_, gid) = ids(tmp)?;
            let gid_text = gid.to_string();
            let plugin = start_plugin(tmp, &[("PLUGIN_UNIX_SOCKET_GROUP", &gid_text)]).await?;
            let socket = socket_path(&plugin.addr)?;
            let dir = socket.parent().ok_or("no parent")?.to_path_buf();
            let (dir_mode, _, dir_gid) = mode_of(&dir)?;
            let (sock_mode, _, sock_gid) = mode_of(&socket)?;
            plugin.stop(tmp).await?;
            if (dir_mode, sock_mode, dir_gid, sock_gid) != (0o710, 0o660, gid, gid) {
                return Err(format!(
                    "dir {dir_mode:o} gid {dir_gid}, socket {sock_mode:o} gid {sock_gid}"
                ));
            }
            Ok(format!("dir {dir_mode:o}, socket {sock_mode:o}, gid {gid}"))
        },
    );
}

#[test]
fn host_socket_dir_is_owner_only() {
    socket_case(
        "socket dir the host creates (PLUGIN_UNIX_SOCKET_DIR)",
        "dir 0700, the plugin's socket in it 0600; removed by kill",
        async |_| {
            let scratch = Scratch::new();
            let mut client = crate::support::builder(mode::NORMAL, &scratch)
                .env(MARK_ENV, mark())
                .start()
                .await
                .map_err(|e| e.to_string())?;
            let socket = socket_path(client.addr())?;
            let dir = PathBuf::from(scratch.report().socket_dir);
            let (dir_mode, _, _) = mode_of(&dir)?;
            let (sock_mode, _, _) = mode_of(&socket)?;
            let parent_ok = socket.parent() == Some(dir.as_path());
            client.kill().await.map_err(|e| e.to_string())?;
            if dir.exists() {
                return Err(format!("{} left after kill", dir.display()));
            }
            if (dir_mode, sock_mode, parent_ok) != (0o700, 0o600, true) {
                return Err(format!(
                    "dir {dir_mode:o}, socket {sock_mode:o}, socket in it: {parent_ok}"
                ));
            }
            Ok(format!("dir {dir_mode:o}, socket {sock_mode:o}; removed"))
        },
    );
}

/// LISTEN entries of /proc/net/tcp{,6} on `port`: (file, local address).
fn tcp_listeners(port: u16) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let table = std::fs::read_to_string(file).unwrap_or_default();
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let Some((ip, hex_port)) = local.rsplit_once(':') else {
                continue;
            };
            if *state == "0A" && u16::from_str_radix(hex_port, 16).ok() == Some(port) {
                found.push((file.to_owned(), ip.to_owned()));
            }
        }
    }
    found
}

#[test]
fn tcp_listens_on_loopback_only() {
    socket_case(
        "TCP listener (RPCPLUGIN_KV_TRANSPORT=tcp)",
        "one LISTEN socket, 127.0.0.1 only (/proc/net/tcp, tcp6)",
        async |tmp| {
            let plugin = start_plugin(
                tmp,
                &[
                    (rpcplugin_tests::TRANSPORT_ENV, "tcp"),
                    ("PLUGIN_MIN_PORT", "10000"),
                    ("PLUGIN_MAX_PORT", "25000"),
                ],
            )
            .await?;
            let Addr::Tcp(addr) = plugin.addr.clone() else {
                return Err(format!("announced {}", plugin.addr));
            };
            let listeners = tcp_listeners(addr.port());
            plugin.serves_the_real_host().await?;
            plugin.stop(tmp).await?;
            let loopback = ("/proc/net/tcp".to_owned(), "0100007F".to_owned());
            if listeners != vec![loopback] || !addr.ip().is_loopback() {
                return Err(format!("announced {addr}, listening: {listeners:?}"));
            }
            Ok(format!(
                "announced {addr}; LISTEN entries: 0100007F:{:04X} only",
                addr.port()
            ))
        },
    );
}

/// Runs the plugin binary directly with `cookie` (or none).
async fn run_without_host(tmp: &Path, cookie: Option<&str>) -> Result<String, String> {
    let socket_dir = tmp.join("sockets");
    std::fs::create_dir(&socket_dir).map_err(|e| e.to_string())?;
    let mut cmd = tokio::process::Command::new(PLUGIN);
    cmd.env_clear()
        .env(MARK_ENV, mark())
        .env("TMPDIR", tmp)
        .env("PLUGIN_UNIX_SOCKET_DIR", &socket_dir)
        .env("PLUGIN_PROTOCOL_VERSIONS", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(cookie) = cookie {
        cmd.env(COOKIE_KEY, cookie);
    }
    let started = Instant::now();
    let output = tokio::time::timeout(BOUND, cmd.output())
        .await
        .map_err(|_| "still running".to_owned())?
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let created: Vec<_> = std::fs::read_dir(tmp)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| *p != socket_dir)
        .chain(
            std::fs::read_dir(&socket_dir)
                .map_err(|e| e.to_string())?
                .flatten()
                .map(|e| e.path()),
        )
        .collect();
    if output.status.code() != Some(1)
        || !output.stdout.is_empty()
        || !stderr.contains("This binary is a plugin")
        || !created.is_empty()
    {
        return Err(format!(
            "{}, stdout {:?}, stderr {stderr:?}, created {created:?}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        ));
    }
    let first = stderr.lines().next().unwrap_or_default();
    let first: String = first.chars().take(60).collect();
    Ok(format!(
        "{} in {}, stdout empty, stderr \"{first}…\", nothing created",
        output.status,
        ms(took)
    ))
}

#[test]
fn cookie_missing() {
    socket_case(
        "run directly, no magic cookie",
        "exit 1, human message on stderr, nothing on stdout, no socket",
        async |tmp| run_without_host(tmp, None).await,
    );
}

#[test]
fn cookie_wrong() {
    socket_case(
        "run with a wrong magic cookie",
        "exit 1, human message on stderr, nothing on stdout, no socket",
        async |tmp| run_without_host(tmp, Some("not-the-cookie")).await,
    );
}
