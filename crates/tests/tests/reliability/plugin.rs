//! A Rust plugin started by hand, as a host would start it, for the
//! rogue-peer and denial-of-service cases: magic cookie,
//! `PLUGIN_CLIENT_CERT` holding a certificate made with
//! `rpcplugin_certs::Identity` (or none, for a plaintext plugin), `TMPDIR`
//! pointing into a scratch directory, the handshake line read from its
//! stdout and its stderr kept.

use crate::census::{Census, MARK_ENV, Row, mark, ms, serial};
use crate::support::{PLUGIN, Scratch};
use rpcplugin::{Addr, Client, ClientTls, Identity, KeyType, PeerTrust, ReattachConfig};
use rpcplugin_certs::internal::client_config_with_versions;
use rpcplugin_handshake::HandshakeLine;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use rpcplugin_runtime::internal::proto::plugin::Empty;
use rpcplugin_runtime::internal::proto::plugin::grpc_controller_client::GrpcControllerClient;
use rpcplugin_tests::{COOKIE_KEY, COOKIE_VALUE, MODE_ENV, mode};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, SupportedProtocolVersion};

/// Each refusal, and each answer to the real host, must come within this.
pub(crate) const BOUND: Duration = Duration::from_secs(2);

/// Largest peak-RSS growth of the plugin a case may cause.
pub(crate) const RSS_LIMIT_MIB: u64 = 32;

/// How a case starts its plugin.
pub(crate) struct Setup {
    /// AutoMTLS (a `PLUGIN_CLIENT_CERT`), or plaintext.
    pub(crate) tls: bool,
    /// `ulimit` arguments for the plugin's shell wrapper.
    pub(crate) ulimit: Option<&'static str>,
}

/// The fixed texts of a case's row.
pub(crate) struct RowText<'a> {
    pub(crate) group: &'static str,
    pub(crate) case: &'a str,
    pub(crate) expected: &'a str,
    pub(crate) bound: &'a str,
}

/// Runs one case against a plugin started by hand: starts it, runs
/// `attack` (which returns what it measured, or why the plugin failed),
/// checks the plugin's peak RSS grew by less than [`RSS_LIMIT_MIB`] and
/// reports it, checks the real host is served afterwards, stops the
/// plugin, counts leaks, and records the row.
pub(crate) fn plugin_case(
    text: RowText<'_>,
    setup: Setup,
    attack: impl AsyncFnOnce(&Running) -> Result<String, String>,
) {
    serial(|| async {
        let before = Census::take();
        let scratch = Scratch::new();
        let mut failures = Vec::new();
        let mut measured = String::new();
        match start_plugin_limited(scratch.path(), &[], setup.tls, setup.ulimit).await {
            Err(err) => failures.push(format!("start: {err}")),
            Ok(plugin) => {
                let rss_before = plugin.rss_kib();
                let peak_before = plugin.peak_rss_kib();
                match attack(&plugin).await {
                    Ok(text) => measured = text,
                    Err(err) => failures.push(err),
                }
                let peak_after = plugin.peak_rss_kib();
                let growth_mib = peak_after.saturating_sub(peak_before.max(rss_before)) / 1024;
                if growth_mib >= RSS_LIMIT_MIB {
                    failures.push(format!(
                        "the plugin's peak RSS grew by {growth_mib} MiB (limit {RSS_LIMIT_MIB} MiB)"
                    ));
                }
                measured.push_str(&format!(
                    "; plugin RSS {} MiB before, peak {} MiB after (+{growth_mib} MiB)",
                    rss_before / 1024,
                    peak_after / 1024
                ));
                plugin
                    .serve_then_stop(scratch.path(), &mut measured, &mut failures)
                    .await;
            }
        }
        Census::check_since(&before, &mut failures).await;
        Row {
            group: text.group,
            case: text.case.to_owned(),
            expected: text.expected.to_owned(),
            measured,
            bound: text.bound.to_owned(),
            failure: failures.join("; "),
        }
        .finish();
    });
}

/// A plugin process started by hand, and what it announced.
pub(crate) struct Running {
    pub(crate) child: tokio::process::Child,
    pub(crate) addr: Addr,
    /// `None` when the plugin serves plaintext.
    pub(crate) plugin_cert: Option<CertificateDer<'static>>,
    pub(crate) host: Identity,
    pub(crate) stderr: Arc<Mutex<Vec<String>>>,
}

/// Starts the test plugin as a host would (AutoMTLS), with `TMPDIR` = `tmp`.
pub(crate) async fn start_plugin(
    tmp: &Path,
    extra_env: &[(&str, &str)],
) -> Result<Running, String> {
    start_plugin_with(tmp, extra_env, true).await
}

/// Starts the test plugin with AutoMTLS when `tls`, else plaintext.
pub(crate) async fn start_plugin_with(
    tmp: &Path,
    extra_env: &[(&str, &str)],
    tls: bool,
) -> Result<Running, String> {
    start_plugin_limited(tmp, extra_env, tls, None).await
}

/// Starts the test plugin through `sh -c 'ulimit <ulimit>; exec plugin'`
/// when `ulimit` is set (`-Sn 256`, say), so it starts with those limits.
pub(crate) async fn start_plugin_limited(
    tmp: &Path,
    extra_env: &[(&str, &str)],
    tls: bool,
    ulimit: Option<&str>,
) -> Result<Running, String> {
    let host = Identity::generate(KeyType::EcP256).map_err(|e| e.to_string())?;
    let mut cmd = match ulimit {
        Some(limits) => {
            let mut cmd = tokio::process::Command::new("/bin/sh");
            cmd.arg("-c")
                .arg(format!("ulimit {limits} && exec \"$0\""))
                .arg(PLUGIN);
            cmd
        }
        None => tokio::process::Command::new(PLUGIN),
    };
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
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// How the real host connects: pinned AutoMTLS, or plaintext.
    pub(crate) fn host_tls(&self) -> ClientTls {
        match &self.plugin_cert {
            Some(cert) => ClientTls::Manual {
                identity: self.host.clone(),
                server_trust: PeerTrust::Pinned(cert.clone()),
            },
            None => ClientTls::Disabled,
        }
    }

    /// The pinned plugin certificate (AutoMTLS plugins only).
    pub(crate) fn cert(&self) -> CertificateDer<'static> {
        self.plugin_cert.clone().expect("an AutoMTLS plugin")
    }

    /// Peak resident set size of the plugin, in KiB.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// Resident set size of the plugin now, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Virtual memory size of the plugin, in KiB.
    pub(crate) fn vm_size_kib(&self) -> u64 {
        self.status_kib("VmSize:")
    }

    /// A `kB` field of the plugin's /proc/<pid>/status.
    fn status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Open file descriptors of the plugin.
    pub(crate) fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The plugin's (soft, hard) RLIMIT_NOFILE, from /proc/<pid>/limits.
    pub(crate) fn nofile_limits(&self) -> Option<(String, String)> {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.pid())).ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        let mut fields = line.trim_start_matches("Max open files").split_whitespace();
        Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
    }

    /// How many of the plugin's stderr lines contain `needle`.
    pub(crate) fn stderr_lines_with(&self, needle: &str) -> usize {
        self.stderr
            .lock()
            .map(|lines| lines.iter().filter(|l| l.contains(needle)).count())
            .unwrap_or(0)
    }

    /// The real host: reattaches with the pinned certificates, Put + Get +
    /// health, all within the bound.
    pub(crate) async fn serves_the_real_host(&self) -> Result<Duration, String> {
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
    pub(crate) fn host_config(
        &self,
        versions: &[&'static SupportedProtocolVersion],
    ) -> ClientConfig {
        let config =
            client_config_with_versions(Some(&self.host), PeerTrust::Pinned(self.cert()), versions)
                .expect("client config");
        Arc::unwrap_or_clone(config)
    }

    /// The plugin's last "TLS handshake with a client failed" log message.
    pub(crate) fn last_refusal_log(&self) -> Option<String> {
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

    /// The end of every case: the real host must still be served (its time
    /// goes to `measured`), then the plugin is stopped as a host does.
    pub(crate) async fn serve_then_stop(
        self,
        tmp: &Path,
        measured: &mut String,
        failures: &mut Vec<String>,
    ) {
        match self.serves_the_real_host().await {
            Ok(took) => measured.push_str(&format!("; real host served in {}", ms(took))),
            Err(err) => failures.push(format!("after: {err}")),
        }
        if let Err(err) = self.stop(tmp).await {
            failures.push(err);
        }
    }

    /// Stops the plugin the way a host does (Shutdown); it must exit 0
    /// within the bound and remove its socket and socket directory.
    pub(crate) async fn stop(mut self, tmp: &Path) -> Result<(), String> {
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
