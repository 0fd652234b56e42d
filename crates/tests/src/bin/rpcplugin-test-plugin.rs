//! The plugin the end-to-end tests launch.
//!
//! It serves the KV service (an in-memory store) plus the usual go-plugin
//! services, and turns a few KV keys into commands (see
//! `rpcplugin_tests::keys`). `RPCPLUGIN_TEST_MODE` makes it misbehave in
//! one specific way instead (see `rpcplugin_tests::mode`). The knobs of the
//! `kv-plugin` example (`RPCPLUGIN_KV_TRANSPORT`,
//! `RPCPLUGIN_KV_SERVER_KEY_TYPE`, `RPCPLUGIN_KV_TLS_{CERT,KEY,CA}`) work
//! here too.

use rpcplugin::HealthReporter;
use rpcplugin::{Identity, KeyType, Network, PeerTrust, PluginContext, PluginServer, Routes};
use rpcplugin_handshake::env;
use rpcplugin_kv::MemoryKv;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::kv_server::Kv;
use rpcplugin_kv::proto::{Empty, GetRequest, GetResponse, PutRequest};
use rpcplugin_tests::{COOKIE_KEY, COOKIE_VALUE, MODE_ENV, REPORT_ENV, Report, keys, mode};
use rpcplugin_transport::{ListenConfig, Listener};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;
use tonic::{Request, Response, Status};

type BoxError = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    write_report();
    let mode = var(MODE_ENV).unwrap_or_else(|| mode::NORMAL.to_owned());
    match run(&mode) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("rpcplugin-test-plugin ({mode}): {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(mode: &str) -> Result<ExitCode, BoxError> {
    match mode {
        mode::NORMAL => Ok(server(false)?.run()),
        mode::UNHEALTHY => Ok(server(true)?.run()),
        mode::DEBUG => debug(),
        mode::EXIT_EARLY => {
            eprintln!("test plugin: giving up before the handshake, on purpose");
            Ok(ExitCode::from(3))
        }
        mode::GARBAGE => announce_and_hang("Hello from the plugin!\n"),
        mode::CORE_VERSION => announce_and_hang("2|1|unix|/nonexistent/plugin|grpc|\n"),
        mode::UNKNOWN_NETWORK => announce_and_hang("1|1|udp|127.0.0.1:1234|grpc|\n"),
        mode::NETRPC => announce_and_hang("1|1|unix|/nonexistent/plugin|netrpc|\n"),
        mode::BAD_CERT => announce_and_hang(&format!(
            "1|1|unix|/nonexistent/plugin|grpc|{}\n",
            "not*base64!".repeat(8)
        )),
        mode::IGNORE_CLIENT_CERT => Err(reexec(|cmd| {
            cmd.env_remove(env::PLUGIN_CLIENT_CERT);
        })
        .into()),
        mode::INJECT_CLIENT_CERT | mode::PIN_OTHER_HOST => {
            // Either way the plugin ends up pinning a host certificate that
            // the host does not have.
            let stranger = Identity::generate(KeyType::EcP256)?;
            Err(reexec(|cmd| {
                cmd.env(env::PLUGIN_CLIENT_CERT, stranger.cert_pem());
            })
            .into())
        }
        mode::WRONG_CERT => wrong_cert(),
        mode::SILENT => hang(),
        mode::HUGE_LINE => {
            let mut line = vec![b'x'; 10 << 20];
            line.push(b'\n');
            announce_and_hang_bytes(&line)
        }
        mode::EXIT_AFTER_HANDSHAKE => exit_after_handshake(),
        mode::STDOUT_BEFORE_HANDSHAKE => {
            println!("rpcplugin-test-plugin 0.1.0 starting up");
            Ok(server(false)?.run())
        }
        mode::BAD_DER_CERT => {
            let line = rpcplugin_handshake::HandshakeLine {
                core_version: 1,
                app_version: 1,
                network: rpcplugin::Network::Unix,
                address: "/nonexistent/plugin".into(),
                protocol: rpcplugin_handshake::Protocol::Grpc,
                server_cert: Some(b"not a DER certificate ".repeat(30)),
                multiplex: None,
            };
            announce_and_hang(&line.to_line())
        }
        mode::IGNORE_SHUTDOWN => {
            let code = server(false)?.run();
            // fd 2 now leads to a pipe nobody reads: eprintln! would panic.
            let _ = writeln!(
                std::io::stderr(),
                "test plugin: serving ended ({code:?}); staying up anyway"
            );
            hang()
        }
        mode::FLOOD => flood(),
        mode::GRANDCHILD => {
            spawn_grandchild()?;
            Ok(server(false)?.run())
        }
        mode::GRANDCHILD_EXIT_EARLY => {
            spawn_grandchild()?;
            eprintln!("test plugin: started a grandchild, giving up before the handshake");
            Ok(ExitCode::from(5))
        }
        other => Err(format!("unknown {MODE_ENV} {other:?}").into()),
    }
}

/// Runs this executable again in place (same pid and stdio), in normal mode
/// with `adjust` applied to its environment. Returns only on failure.
fn reexec(adjust: impl FnOnce(&mut std::process::Command)) -> std::io::Error {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => return err,
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.env(MODE_ENV, mode::NORMAL);
    adjust(&mut cmd);
    cmd.exec()
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Tells the test our pid and socket directory, before anything can fail.
fn write_report() {
    if let Some(path) = var(REPORT_ENV) {
        let report = Report {
            pid: std::process::id(),
            socket_dir: var(env::PLUGIN_UNIX_SOCKET_DIR).unwrap_or_default(),
        };
        if let Err(err) = std::fs::write(&path, report.to_text()) {
            eprintln!("rpcplugin-test-plugin: cannot write {path}: {err}");
        }
    }
}

fn server(unhealthy: bool) -> Result<PluginServer, BoxError> {
    let mut server = PluginServer::new(COOKIE_KEY, COOKIE_VALUE).version(1, move |ctx| {
        if unhealthy {
            ctx.health()
                .set_serving(rpcplugin::PLUGIN_HEALTH_SERVICE, false);
        }
        let kv = TestKv {
            store: MemoryKv::default(),
            ctx: ctx.clone(),
        };
        Routes::new(
            rpcplugin_kv::proto::kv_server::KvServer::new(kv)
                .max_decoding_message_size(rpcplugin::MAX_MESSAGE_SIZE)
                .max_encoding_message_size(rpcplugin::MAX_MESSAGE_SIZE),
        )
    });
    if let Some(transport) = var(rpcplugin_tests::TRANSPORT_ENV) {
        server = server.transport(transport.trim().to_ascii_lowercase().parse::<Network>()?);
    }
    if let Some(ms) = var(rpcplugin_tests::BROKER_TIMEOUT_ENV) {
        server = server.broker_timeout(std::time::Duration::from_millis(ms.parse()?));
    }
    if let Some(key_type) = var(rpcplugin_tests::KEY_TYPE_ENV) {
        server = server.key_type(key_type.parse::<KeyType>()?);
    }
    if let (Some(cert), Some(key), Some(ca)) = (
        var(rpcplugin_tests::TLS_CERT_ENV),
        var(rpcplugin_tests::TLS_KEY_ENV),
        var(rpcplugin_tests::TLS_CA_ENV),
    ) {
        let identity = Identity::from_files(cert.as_ref(), key.as_ref())?;
        let roots = rpcplugin::parse_certs_pem(&std::fs::read(&ca)?)?;
        server = server.manual_tls(identity, PeerTrust::Roots(roots));
    }
    Ok(server)
}

/// Debug (reattach) mode: the reattach configuration goes to stdout as one
/// JSON line; serves until SIGINT, SIGTERM or the host's Shutdown.
fn debug() -> Result<ExitCode, BoxError> {
    let server = server(false)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(server.serve_debug(|config| {
        let json = serde_json::to_string(config).unwrap_or_default();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{json}").and_then(|()| out.flush());
    }))?;
    Ok(ExitCode::SUCCESS)
}

fn announce_and_hang(line: &str) -> Result<ExitCode, BoxError> {
    announce_and_hang_bytes(line.as_bytes())
}

fn announce_and_hang_bytes(line: &[u8]) -> Result<ExitCode, BoxError> {
    let mut out = std::io::stdout().lock();
    out.write_all(line)?;
    out.flush()?;
    drop(out);
    hang()
}

/// Waits to be killed (the host must do it).
fn hang() -> Result<ExitCode, BoxError> {
    loop {
        std::thread::park();
    }
}

/// Serves TLS with one fresh certificate while the handshake line announces
/// another: the host must refuse the connection.
fn wrong_cert() -> Result<ExitCode, BoxError> {
    let host_pem = var(env::PLUGIN_CLIENT_CERT).ok_or("PLUGIN_CLIENT_CERT is not set")?;
    let host_cert = rpcplugin::parse_cert_pem(host_pem.as_bytes())?;
    let presented = Identity::generate(KeyType::EcP256)?;
    let announced = Identity::generate(KeyType::EcP256)?;
    let config = rpcplugin_certs::server_config(&presented, PeerTrust::Pinned(host_cert))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = Listener::bind(&ListenConfig::from_env(Network::Unix)?)?;
        let addr = listener.local_addr();
        announce(&format!(
            "1|1|{}|{addr}|grpc|{}\n",
            addr.network(),
            announced.cert_base64()
        ))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        loop {
            let stream = listener.accept().await?;
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Err(err) = acceptor.accept(stream).await {
                    eprintln!("wrong-cert plugin: TLS handshake failed as intended: {err}");
                }
            });
        }
    })
}

fn announce(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.flush()
}

/// The KV store with command keys (see `rpcplugin_tests::keys`).
struct TestKv {
    store: MemoryKv,
    ctx: PluginContext,
}

fn internal(err: impl std::fmt::Display) -> Status {
    Status::internal(err.to_string())
}

impl TestKv {
    fn health(&self) -> &HealthReporter {
        self.ctx.health()
    }

    /// Starts a brokered KV server holding the greeting; returns its id.
    async fn serve_broker(&self) -> Result<u32, Status> {
        let brokered = MemoryKv::default();
        brokered
            .put(Request::new(PutRequest {
                key: keys::BROKERED_GREETING.into(),
                value: keys::BROKERED_GREETING_VALUE.as_bytes().to_vec().into(),
            }))
            .await?;
        let broker = self.ctx.broker();
        let id = broker.next_id();
        broker
            .accept_and_serve(id, Routes::new(brokered.into_service()))
            .await
            .map_err(internal)?;
        Ok(id)
    }

    /// Dials the host's brokered KV server `id` and writes into it.
    async fn dial_broker(&self, id: &str, value: tonic::codegen::Bytes) -> Result<(), Status> {
        let id: u32 = id
            .parse()
            .map_err(|_| Status::invalid_argument(format!("bad broker id {id:?}")))?;
        let channel = self.ctx.broker().dial(id).await.map_err(internal)?;
        KvClient::new(channel)
            .put(PutRequest {
                key: keys::FROM_PLUGIN.into(),
                value,
            })
            .await?;
        Ok(())
    }
}

#[tonic::async_trait]
impl Kv for TestKv {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let reply = |text: String| Ok(Response::new(GetResponse { value: text.into() }));
        match request.get_ref().key.as_str() {
            keys::SERVE_BROKER => reply(self.serve_broker().await?.to_string()),
            keys::PID => reply(std::process::id().to_string()),
            _ => self.store.get(request).await,
        }
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<Empty>, Status> {
        let PutRequest { key, value } = request.get_ref();
        let text = String::from_utf8_lossy(value).into_owned();
        match key.as_str() {
            keys::STDOUT => {
                let mut out = std::io::stdout().lock();
                out.write_all(value)
                    .and_then(|()| out.flush())
                    .map_err(internal)?;
            }
            keys::STDERR => {
                let mut err = std::io::stderr().lock();
                err.write_all(value)
                    .and_then(|()| err.flush())
                    .map_err(internal)?;
            }
            keys::LOG_INFO => tracing::info!("{text}"),
            keys::LOG_WARN => tracing::warn!(source = "e2e", "{text}"),
            keys::LOG_ERROR => tracing::error!("{text}"),
            keys::LOG_HUGE => {
                tracing::info!("{}", "y".repeat(10 << 20));
                tracing::warn!("{text}");
            }
            keys::HEALTH => self
                .health()
                .set_serving(rpcplugin::PLUGIN_HEALTH_SERVICE, text == "serving"),
            keys::EXIT => std::process::exit(text.trim().parse().unwrap_or(1)),
            keys::ABORT => std::process::abort(),
            #[allow(clippy::panic)]
            keys::PANIC => panic!("{}", String::from_utf8_lossy(value)),
            keys::ALLOC_FAILURE => match std::alloc::Layout::from_size_align(1 << 40, 8) {
                Ok(layout) => std::alloc::handle_alloc_error(layout),
                Err(_) => std::process::abort(),
            },
            keys::HANG => std::future::pending::<()>().await,
            other => match other.strip_prefix(keys::BROKER_DIAL_PREFIX) {
                Some(id) => self.dial_broker(id, value.clone()).await?,
                None => return self.store.put(request).await,
            },
        }
        Ok(Response::new(Empty {}))
    }
}

/// Binds a real listener, announces it, and exits with status 4 without
/// serving anything.
fn exit_after_handshake() -> Result<ExitCode, BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = Listener::bind(&ListenConfig::from_env(Network::Unix)?)?;
        let addr = listener.local_addr();
        let cert = match var(env::PLUGIN_CLIENT_CERT) {
            Some(_) => Identity::generate(KeyType::EcP256)?.cert_base64(),
            None => String::new(),
        };
        announce(&format!("1|1|{}|{addr}|grpc|{cert}\n", addr.network()))?;
        Ok::<(), BoxError>(())
    })?;
    std::process::exit(4)
}

/// Starts this executable again, in silent mode, as a grandchild of the
/// host that inherits the plugin's stdout and stderr pipes.
fn spawn_grandchild() -> Result<(), BoxError> {
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.env(MODE_ENV, mode::SILENT);
    match var(REPORT_ENV) {
        Some(report) => cmd.env(
            REPORT_ENV,
            format!("{report}{}", rpcplugin_tests::GRANDCHILD_REPORT_SUFFIX),
        ),
        None => cmd.env_remove(REPORT_ENV),
    };
    // Not waited for: it outlives this process on purpose.
    let _child = cmd.spawn()?;
    Ok(())
}

/// Serves KV while flooding every output the host reads, from the moment
/// the handshake line is out.
fn flood() -> Result<ExitCode, BoxError> {
    use std::os::fd::AsFd;
    // Copies of the host's pipes, kept past the handshake on purpose.
    let raw_out = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let raw_err = std::fs::File::from(std::io::stderr().as_fd().try_clone_to_owned()?);
    std::thread::spawn(move || {
        // The runtime starts catching SIGINT (to ignore it) right after it
        // has written the handshake line.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !catches_sigint() {
            if std::time::Instant::now() > deadline {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let text = "flood ".repeat(40);
        let long = "L".repeat(200 << 10);
        flood_with(raw_out, move |out, i| {
            writeln!(out, "raw stdout {i} {text}")
        });
        let json = r#"{"@level":"info","@message":"flood","@timestamp":"2026-03-01T12:00:00.123456Z","n":1}"#;
        flood_with(raw_err, move |out, i| match i % 100 {
            0 => writeln!(out, "{long}"),
            n if n % 2 == 0 => writeln!(out, "{json}"),
            _ => writeln!(out, "[INFO] raw stderr {i}"),
        });
        flood_with(std::io::stdout(), |out, i| {
            writeln!(out, "captured stdout {i}")
        });
        flood_with(std::io::stderr(), |out, i| {
            writeln!(out, "captured stderr {i}")
        });
        std::thread::spawn(|| {
            for i in 0u64.. {
                tracing::info!(i, "flooding the log");
            }
        });
    });
    Ok(server(false)?.run())
}

/// Whether this process has a handler for SIGINT (from /proc/self/status).
fn catches_sigint() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (2 - 1)) != 0)
}

/// Writes `line(out, i)` for i = 0, 1, ... on a thread until a write fails.
fn flood_with<W: Write + Send + 'static>(
    mut out: W,
    line: impl Fn(&mut W, u64) -> std::io::Result<()> + Send + 'static,
) {
    std::thread::spawn(move || {
        for i in 0u64.. {
            if line(&mut out, i).is_err() {
                return;
            }
        }
    });
}
