//! Shared test machinery: launching the test plugin, per-test scratch
//! directories and leak checks, output sinks, log capture, manual-TLS PKI.

use rpcplugin::PluginChannel;
use rpcplugin::{Client, ClientBuilder, ClientTls, Identity, KeyType, PeerTrust};
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use rpcplugin_tests::{COOKIE_KEY, COOKIE_VALUE, MODE_ENV, REPORT_ENV, Report};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Level;

/// The test plugin executable.
pub const PLUGIN: &str = env!("CARGO_BIN_EXE_rpcplugin-test-plugin");

/// Every failure case must be reported within this time.
pub const FAILURE_BUDGET: Duration = Duration::from_secs(2);

/// How long a test waits for something the plugin was asked to do.
pub const SIGNAL_TIMEOUT: Duration = Duration::from_secs(5);

/// A string no other test uses, to find this test's output among all.
pub fn nonce(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The temp directory of this test process: launched plugins (`TMPDIR`)
/// and the host ([`ClientBuilder::socket_dir`]) make their socket
/// directories here, so leak checks see only what this process made, not
/// what another test run on the same machine is doing in `/tmp`.
///
/// It lives as long as the process; directories of earlier runs whose
/// process is gone are removed when it is made.
pub fn suite_tmp() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        const PREFIX: &str = "rpcplugin-e2e-scratch-suite-";
        let base = std::env::temp_dir();
        if let Ok(entries) = std::fs::read_dir(&base) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let pid = name.to_str().and_then(|n| n.strip_prefix(PREFIX));
                // A dead process's, or one left by an earlier process with our pid.
                if let Some(pid) = pid
                    && (pid == std::process::id().to_string()
                        || !Path::new(&format!("/proc/{pid}")).exists())
                {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(format!("{PREFIX}{}", std::process::id()));
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&dir)
            .expect("suite temp dir");
        dir
    })
}

/// A per-test directory (report file, certificates) and the leak check
/// for the plugin processes launched with it.
pub struct Scratch {
    dir: TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("rpcplugin-e2e-scratch-")
                .tempdir()
                .expect("scratch dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn report_path(&self) -> PathBuf {
        self.dir.path().join("plugin-report")
    }

    /// What the plugin wrote when it started.
    pub fn report(&self) -> Report {
        let path = self.report_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("the plugin wrote no report at {path:?}: {err}"));
        Report::parse(&text).unwrap_or_else(|| panic!("unreadable plugin report {text:?}"))
    }

    /// The launched plugin process is gone (exited and reaped) and its
    /// socket directory removed.
    pub fn assert_plugin_gone(&self) {
        let leftovers = self.leftovers();
        assert!(leftovers.is_empty(), "{}", leftovers.join("; "));
    }

    /// What the launched plugin left behind: its process (running or
    /// unreaped), its socket directory.
    pub fn leftovers(&self) -> Vec<String> {
        let report = self.report();
        let mut found = Vec::new();
        if self.is_our_process(report.pid) || plugin_children().contains(&report.pid) {
            found.push(format!(
                "plugin process {} is still there (running or unreaped)",
                report.pid
            ));
        }
        if !report.socket_dir.is_empty() && Path::new(&report.socket_dir).exists() {
            found.push(format!(
                "the plugin's socket directory {} was left behind",
                report.socket_dir
            ));
        }
        found
    }

    /// Whether `pid` is still a process launched with this scratch dir: a
    /// running one carries our report path in its environment, an unreaped
    /// one is a zombie child of this test process. (A reused pid is neither.)
    fn is_our_process(&self, pid: u32) -> bool {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
            return false;
        };
        let environ = std::fs::read(proc_dir.join("environ")).unwrap_or_default();
        let marker = format!("{REPORT_ENV}={}", self.report_path().display());
        if environ
            .split(|b| *b == 0)
            .any(|var| var == marker.as_bytes())
        {
            return true;
        }
        // Fields after the command name (which may hold spaces): state, ppid.
        let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let mut fields = after_comm.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        state == "Z" && ppid == std::process::id()
    }
}

/// Children of this test process running the test plugin (all tests).
pub fn plugin_children() -> Vec<u32> {
    let me = std::process::id();
    rpcplugin_tests::processes()
        .into_iter()
        .filter(|(pid, _, ppid)| {
            *ppid == me
                && std::fs::read_link(format!("/proc/{pid}/exe"))
                    .ok()
                    .as_deref()
                    == Some(Path::new(PLUGIN))
        })
        .map(|(pid, _, _)| pid)
        .collect()
}

/// A client builder for the test plugin in `mode`, with a clean
/// environment (nothing inherited from the test process).
pub fn builder(mode: &str, scratch: &Scratch) -> ClientBuilder {
    builder_for(PLUGIN, mode, scratch)
}

/// [`builder`] for a copy of the test plugin at `program`.
pub fn builder_for(program: impl AsRef<Path>, mode: &str, scratch: &Scratch) -> ClientBuilder {
    Client::builder(program)
        .cookie(COOKIE_KEY, COOKIE_VALUE)
        .versions([1])
        .skip_host_env(true)
        .socket_dir(suite_tmp())
        .env("TMPDIR", suite_tmp())
        .env(MODE_ENV, mode)
        .env(REPORT_ENV, scratch.report_path())
}

/// TLS setups of the matrix.
#[derive(Debug, Clone, Copy)]
pub enum Tls {
    Off,
    Auto {
        host: KeyType,
        plugin: KeyType,
    },
    Manual {
        ca: KeyType,
        host: KeyType,
        plugin: KeyType,
    },
}

impl Tls {
    /// Applies this setup to both sides; returns the builder and the key
    /// type the host should see on the plugin's certificate.
    pub fn apply(
        self,
        builder: ClientBuilder,
        scratch: &Scratch,
    ) -> (ClientBuilder, Option<KeyType>) {
        match self {
            Tls::Off => (builder.tls(ClientTls::Disabled), None),
            Tls::Auto { host, plugin } => (
                builder
                    .tls(ClientTls::Auto(host))
                    .env(rpcplugin_tests::KEY_TYPE_ENV, key_type_name(plugin)),
                Some(plugin),
            ),
            Tls::Manual { ca, host, plugin } => {
                let pki = Pki::generate(scratch.path(), ca, host, plugin);
                let identity =
                    Identity::from_files(&pki.host_cert, &pki.host_key).expect("host identity");
                let roots =
                    rpcplugin::parse_certs_pem(&std::fs::read(&pki.ca_cert).expect("read CA"))
                        .expect("CA PEM");
                (
                    builder
                        .tls(ClientTls::Manual {
                            identity,
                            server_trust: PeerTrust::Roots(roots),
                        })
                        .env(rpcplugin_tests::TLS_CERT_ENV, &pki.plugin_cert)
                        .env(rpcplugin_tests::TLS_KEY_ENV, &pki.plugin_key)
                        .env(rpcplugin_tests::TLS_CA_ENV, &pki.ca_cert),
                    Some(plugin),
                )
            }
        }
    }
}

pub fn key_type_name(key_type: KeyType) -> &'static str {
    match key_type {
        KeyType::EcP256 => "p256",
        KeyType::EcP384 => "p384",
        KeyType::EcP521 => "p521",
        KeyType::Rsa2048 => "rsa2048",
        KeyType::Rsa3072 => "rsa3072",
        KeyType::Rsa4096 => "rsa4096",
    }
}

/// A CA and two leaf certificates (host and plugin, both `DNS:localhost`,
/// serverAuth and clientAuth) written as PEM files, for manual TLS.
pub struct Pki {
    pub ca_cert: PathBuf,
    pub host_cert: PathBuf,
    pub host_key: PathBuf,
    pub plugin_cert: PathBuf,
    pub plugin_key: PathBuf,
}

impl Pki {
    pub fn generate(dir: &Path, ca: KeyType, host: KeyType, plugin: KeyType) -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "rpcplugin e2e CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(ca_params, rcgen_key(ca)).expect("CA cert");

        // Both roles for both leaves: the host's certificate also serves
        // its brokered servers, the plugin's also dials the host's.
        let leaf = |name: &str, key_type: KeyType| {
            let mut params =
                CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            let key = rcgen_key(key_type);
            let cert = params.signed_by(&key, &issuer).expect("leaf cert");
            (cert.pem(), key.serialize_pem())
        };
        let (host_pem, host_key) = leaf("e2e host", host);
        let (plugin_pem, plugin_key) = leaf("e2e plugin", plugin);
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        Pki {
            ca_cert: write("ca.pem", &issuer.pem()),
            host_cert: write("host.pem", &host_pem),
            host_key: write("host-key.pem", &host_key),
            plugin_cert: write("plugin.pem", &plugin_pem),
            plugin_key: write("plugin-key.pem", &plugin_key),
        }
    }
}

fn rcgen_key(key_type: KeyType) -> rcgen::KeyPair {
    use rcgen::{KeyPair, RsaKeySize};
    match key_type {
        KeyType::EcP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::EcP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::EcP521 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512),
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048),
        KeyType::Rsa3072 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072),
        KeyType::Rsa4096 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096),
    }
    .expect("key generation")
}

/// Waits until `cond` holds, re-checking whenever `changes` ticks.
pub async fn wait_until(
    changes: &watch::Sender<u64>,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> bool {
    let mut rx = changes.subscribe();
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return cond(),
        }
    }
}

/// An output sink for `ClientBuilder::stdout`/`stderr` that tells waiters
/// when bytes arrive.
#[derive(Clone)]
pub struct Sink {
    buf: Arc<Mutex<Vec<u8>>>,
    changes: Arc<watch::Sender<u64>>,
}

impl Sink {
    pub fn new() -> Sink {
        Sink {
            buf: Arc::default(),
            changes: Arc::new(watch::Sender::new(0)),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().expect("sink lock")).into_owned()
    }

    pub async fn wait_for(&self, needle: &str) -> bool {
        wait_until(&self.changes, SIGNAL_TIMEOUT, || {
            self.text().contains(needle)
        })
        .await
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.lock().expect("sink lock").extend_from_slice(data);
        self.changes.send_modify(|n| *n += 1);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One `tracing` event of target `rpcplugin::plugin` seen by the host.
#[derive(Debug, Clone)]
pub struct PluginLog {
    pub level: Level,
    pub plugin: String,
    pub message: String,
    /// The line's other JSON keys, `key=value` separated by spaces.
    pub fields: String,
}

struct Captured {
    events: Mutex<Vec<PluginLog>>,
    changes: watch::Sender<u64>,
}

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| Captured {
        events: Mutex::new(Vec::new()),
        changes: watch::Sender::new(0),
    })
}

/// A layer keeping the host's `rpcplugin::plugin` events (the plugin's
/// relayed logs).
struct CaptureLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CaptureLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            plugin: String,
            message: String,
            fields: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                match field.name() {
                    "plugin" => self.plugin = value.to_owned(),
                    "message" => self.message = value.to_owned(),
                    "fields" => self.fields = value.to_owned(),
                    _ => {}
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "plugin" => self.plugin = format!("{value:?}"),
                    "message" => self.message = format!("{value:?}"),
                    "fields" => self.fields = format!("{value:?}"),
                    _ => {}
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        // Waiters scan every kept message: keep huge ones short.
        if fields.message.len() > 4096 {
            let mut cut = 4096;
            while !fields.message.is_char_boundary(cut) {
                cut -= 1;
            }
            fields.message.truncate(cut);
        }
        let log = PluginLog {
            level: *event.metadata().level(),
            plugin: fields.plugin,
            message: fields.message,
            fields: fields.fields,
        };
        let captured = captured();
        if let Ok(mut events) = captured.events.lock() {
            events.push(log);
        }
        captured.changes.send_modify(|n| *n += 1);
    }
}

/// Installs (once) the global subscriber: the capture layer for
/// `rpcplugin::plugin`, plus readable output filtered by `RUST_LOG` (off
/// by default) for debugging the suite.
pub fn capture_plugin_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        let only_plugin_logs = tracing_subscriber::filter::Targets::new()
            .with_target("rpcplugin::plugin", Level::TRACE);
        let debug_output = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
            );
        let subscriber = tracing_subscriber::registry()
            .with(CaptureLayer.with_filter(only_plugin_logs))
            .with(debug_output);
        tracing::subscriber::set_global_default(subscriber).expect("global subscriber");
    });
}

/// Waits for a relayed plugin log whose message contains `needle`.
pub async fn wait_for_plugin_log(needle: &str) -> Option<PluginLog> {
    wait_until(&captured().changes, SIGNAL_TIMEOUT, || {
        plugin_log_seen(needle).is_some()
    })
    .await;
    plugin_log_seen(needle)
}

/// A relayed plugin log whose message contains `needle`, if one has
/// arrived already.
pub fn plugin_log_seen(needle: &str) -> Option<PluginLog> {
    captured()
        .events
        .lock()
        .ok()
        .and_then(|events| events.iter().find(|e| e.message.contains(needle)).cloned())
}

/// KV helpers on a channel.
pub async fn put(channel: PluginChannel, key: &str, value: impl Into<Vec<u8>>) {
    KvClient::new(channel)
        .max_decoding_message_size(rpcplugin::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(rpcplugin::MAX_MESSAGE_SIZE)
        .put(PutRequest {
            key: key.to_owned(),
            value: value.into().into(),
        })
        .await
        .unwrap_or_else(|status| panic!("Put {key:?} failed: {status}"));
}

pub async fn get(channel: PluginChannel, key: &str) -> Vec<u8> {
    KvClient::new(channel)
        .max_decoding_message_size(rpcplugin::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(rpcplugin::MAX_MESSAGE_SIZE)
        .get(GetRequest {
            key: key.to_owned(),
        })
        .await
        .unwrap_or_else(|status| panic!("Get {key:?} failed: {status}"))
        .into_inner()
        .value
        .to_vec()
}

/// Stops the plugin and checks it exited by itself (successfully, so before
/// the SIGKILL deadline) and left nothing behind.
/// Asks the plugin to serve a brokered server, dials it through the host's
/// broker and checks its greeting; returns the brokered channel.
pub async fn host_dials_plugin(client: &Client) -> PluginChannel {
    rpcplugin_tests::broker_calls::host_dials_plugin(client)
        .await
        .expect("the host dials the plugin's brokered server")
}

/// Serves a KV store on the host's broker under a fresh id; returns both.
pub async fn host_serves(client: &Client) -> (u32, rpcplugin_kv::MemoryKv) {
    rpcplugin_tests::broker_calls::host_serves(client)
        .await
        .expect("serve on the host")
}

/// Asks the plugin to dial the host's brokered server `id` (serving
/// `host_store`) and write there; checks the write arrived.
pub async fn plugin_dials_host(client: &Client, id: u32, host_store: &rpcplugin_kv::MemoryKv) {
    rpcplugin_tests::broker_calls::plugin_dials_host(
        client,
        id,
        host_store,
        &nonce("via-host-broker"),
    )
    .await
    .expect("the plugin writes into the host's brokered server");
}

pub async fn kill_cleanly(client: &mut Client, scratch: &Scratch) -> Duration {
    let started = Instant::now();
    let status = client.kill().await.expect("kill").expect("an exit status");
    let elapsed = started.elapsed();
    eprintln!("kill: plugin exited with {status} after {elapsed:?}");
    assert!(
        status.success(),
        "the plugin did not exit cleanly: {status} (stderr: {})",
        client.stderr_tail()
    );
    scratch.assert_plugin_gone();
    elapsed
}
