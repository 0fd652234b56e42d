//! `rpcplugin probe`: launch a plugin, report what it negotiated.

use anyhow::{Context, Result, bail};
use rpcplugin::{Client, ClientTls, Identity, KeyType, PeerTrust};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The plugin executable.
    path: PathBuf,
    /// Arguments for the plugin.
    #[arg(long = "arg")]
    args: Vec<String>,
    /// Cookie and versions of a known host: kv (go-plugin's examples:
    /// BASIC_PLUGIN=hello, version 1) or terraform (TF_PLUGIN_MAGIC_COOKIE,
    /// versions 5 and 6; also reads and lists the provider's schema).
    #[arg(long, default_value = "kv")]
    preset: String,
    /// Magic cookie as KEY=VALUE (overrides the preset's).
    #[arg(long)]
    cookie: Option<String>,
    /// App protocol versions to offer, comma-separated (overrides the preset's).
    #[arg(long, value_delimiter = ',')]
    versions: Vec<u32>,
    /// off, auto (AutoMTLS) or manual.
    #[arg(long, default_value = "auto")]
    tls: String,
    /// Key type of the host certificate with AutoMTLS (p256, p384, p521, rsa2048, ...).
    #[arg(long, default_value = "p256")]
    key_type: KeyType,
    /// Manual TLS: host certificate, key and the CA that signed the plugin's certificate.
    #[arg(long, requires_all = ["key", "ca"])]
    cert: Option<PathBuf>,
    /// Manual TLS: the host's private key.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Manual TLS: CA bundle for the plugin's certificate.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Start timeout in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Health checks to time.
    #[arg(long, default_value_t = 20)]
    pings: u32,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Whether the preset is a Terraform/OpenTofu host (the schema is read).
fn is_terraform(args: &Args) -> bool {
    matches!(args.preset.as_str(), "terraform" | "tofu" | "opentofu")
}

fn cookie_and_versions(args: &Args) -> Result<((String, String), Vec<u32>)> {
    let (cookie, versions) = match args.preset.as_str() {
        "kv" => (("BASIC_PLUGIN".to_owned(), "hello".to_owned()), vec![1]),
        "terraform" | "tofu" | "opentofu" => (
            (
                rpcplugin_tfplugin::MAGIC_COOKIE_KEY.to_owned(),
                rpcplugin_tfplugin::MAGIC_COOKIE_VALUE.to_owned(),
            ),
            vec![5, 6],
        ),
        other => bail!("unknown preset {other:?}: use kv or terraform"),
    };
    let cookie = match &args.cookie {
        Some(kv) => {
            let (k, v) = kv.split_once('=').context("--cookie takes KEY=VALUE")?;
            (k.to_owned(), v.to_owned())
        }
        None => cookie,
    };
    let versions = if args.versions.is_empty() {
        versions
    } else {
        args.versions.clone()
    };
    Ok((cookie, versions))
}

pub(crate) async fn run(args: Args) -> Result<bool> {
    let ((cookie_key, cookie_value), versions) = cookie_and_versions(&args)?;
    let (tls, host_key_type) = match args.tls.as_str() {
        "off" => (ClientTls::Disabled, None),
        "auto" => (ClientTls::Auto(args.key_type), Some(args.key_type)),
        "manual" => {
            let (Some(cert), Some(key), Some(ca)) = (&args.cert, &args.key, &args.ca) else {
                bail!("--tls manual needs --cert, --key and --ca");
            };
            let identity = Identity::from_files(cert, key)?;
            let key_type = identity.key_type();
            let roots = rpcplugin::parse_certs_pem(
                &std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?,
            )?;
            (
                ClientTls::Manual {
                    identity,
                    server_trust: PeerTrust::Roots(roots),
                },
                Some(key_type),
            )
        }
        other => bail!("unknown --tls {other:?}: use off, auto or manual"),
    };
    let mut builder = Client::builder(&args.path)
        .cookie(cookie_key, cookie_value)
        .versions(versions.clone())
        .tls(tls)
        .start_timeout(Duration::from_millis(args.timeout_ms));
    for arg in &args.args {
        builder = builder.arg(arg);
    }
    let started = Instant::now();
    let mut client = match builder.start().await {
        Ok(client) => client,
        Err(err) => {
            let report = json!({"ok": false, "plugin": args.path, "error": err.to_string(), "diagnosis": diagnosis(&err)});
            print_report(&report, args.json);
            return Ok(false);
        }
    };
    let start_ms = ms(started.elapsed());
    let mut rtts = Vec::new();
    let mut ping_error = None;
    for _ in 0..args.pings.max(1) {
        let t = Instant::now();
        if let Err(err) = client.ping().await {
            ping_error = Some(err.to_string());
            break;
        }
        rtts.push(t.elapsed());
    }
    rtts.sort();
    let schema = if is_terraform(&args) {
        Some(
            crate::schema::read(
                client.channel(),
                client.protocol_version(),
                Duration::from_millis(args.timeout_ms),
            )
            .await
            .map_err(|err| format!("{:#}", anyhow::Error::new(err))),
        )
    } else {
        None
    };
    let tls_info = client.tls_info().cloned();
    let handshake = client.handshake().map(|hs| {
        json!({
            "line": hs.to_line().trim_end().chars().take(120).collect::<String>(),
            "core_version": hs.core_version,
            "app_version": hs.app_version,
            "network": hs.network.to_string(),
            "address": hs.address,
            "protocol": hs.protocol.to_string(),
            "server_cert_bytes": hs.server_cert.as_ref().map(Vec::len),
            "server_cert_key_type": hs.server_cert.as_deref().and_then(|der| rpcplugin_certs::cert_key_type(der).ok()).map(|k| k.to_string()),
            "multiplex": hs.multiplex,
        })
    });
    let schema_ok = !matches!(schema, Some(Err(_)));
    let report = json!({
        "ok": ping_error.is_none() && schema_ok,
        "plugin": args.path,
        "pid": client.pid(),
        "protocol_version": client.protocol_version(),
        "handshake": handshake,
        "offered_versions": versions,
        "network": client.addr().network().to_string(),
        "address": client.addr().to_string(),
        "protocol": "grpc",
        "tls": tls_info.as_ref().map(|t| json!({
            "version": t.version,
            "cipher": t.cipher,
            "peer_key_type": t.peer_key_type.map(|k| k.to_string()),
            "host_key_type": host_key_type.map(|k| k.to_string()),
        })),
        "health": if ping_error.is_none() { "SERVING" } else { "FAILED" },
        "health_error": ping_error,
        "start_ms": start_ms,
        "ping_median_us": rtts.get(rtts.len() / 2).map(|d| d.as_micros()),
        "ping_min_us": rtts.first().map(|d| d.as_micros()),
        "schema": schema.as_ref().and_then(|s| s.as_ref().ok()),
        "schema_error": schema.as_ref().and_then(|s| s.as_ref().err()),
        "stderr_tail": client.stderr_tail(),
    });
    let status = client.kill().await?;
    let mut report = report;
    if let Some(obj) = report.as_object_mut() {
        obj.insert(
            "exit_status".into(),
            Value::from(status.map(|s| s.to_string())),
        );
    }
    print_report(&report, args.json);
    Ok(report.get("ok").and_then(Value::as_bool).unwrap_or(false))
}

/// A plain-words reading of a start failure.
pub(crate) fn diagnosis(err: &rpcplugin::Error) -> &'static str {
    use rpcplugin::Error as E;
    match err {
        E::Spawn { .. } => {
            "the executable could not be started: check the path, its execute permission and its architecture"
        }
        E::PluginExited { .. } => {
            "the plugin exited before its handshake: read its stderr above (missing library, bad config, crash)"
        }
        E::CookieRejected { .. } => {
            "the plugin expects another magic cookie: pass the host's cookie with --cookie KEY=VALUE or --preset"
        }
        E::StartTimeout { .. } => {
            "the plugin printed nothing: it may wait for input, or not be a go-plugin plugin"
        }
        E::InvalidHandshake { .. } => {
            "the first stdout line is not a handshake: the plugin prints to stdout before its handshake, or is not a go-plugin plugin"
        }
        E::IncompatibleVersion { .. } => {
            "no common app protocol version: offer the plugin's version with --versions"
        }
        E::IncompatibleCoreVersion { .. } => "the plugin speaks another go-plugin core version",
        E::UnsupportedProtocol { .. } => "the plugin speaks net/rpc, which rpcplugin does not",
        E::MissingServerCert => "the plugin ignored AutoMTLS: try --tls off",
        E::UnexpectedServerCert => "the plugin uses TLS: try --tls auto",
        E::Connect { .. } | E::ConnectTimeout { .. } | E::Rpc { .. } => {
            "the connection or TLS handshake failed: see the likely cause in the error; try --key-type p256 or --tls off to narrow it down"
        }
        E::Unhealthy(_) => "the plugin runs but reports itself not serving",
        _ => "see the error",
    }
}

fn print_report(report: &Value, as_json: bool) {
    if as_json {
        println!("{report}");
        return;
    }
    let Some(obj) = report.as_object() else {
        return;
    };
    for (key, value) in obj {
        match value {
            Value::Null => {}
            Value::String(s) if key == "stderr_tail" => {
                if !s.trim().is_empty() {
                    println!("{key}:\n{}", s.trim_end());
                }
            }
            Value::String(s) => println!("{key}: {s}"),
            Value::Object(_) if key == "schema" => crate::schema::print_text(value),
            Value::Object(inner) => {
                println!("{key}:");
                for (k, v) in inner {
                    if !v.is_null() {
                        println!(
                            "  {k}: {}",
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                        );
                    }
                }
            }
            other => println!("{key}: {other}"),
        }
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
