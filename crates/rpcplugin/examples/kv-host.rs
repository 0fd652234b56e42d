//! A KV host: launches any KV plugin (Rust, Go or Python), Puts a value,
//! Gets it back, stops the plugin and prints one JSON line describing the
//! exchange. This is the Rust side of the cross-language matrix's host
//! contract (peers/CONTRACT.md).
//!
//! ```text
//! cargo run --example kv-host -- --plugin target/debug/examples/kv-plugin --tls auto --key-type p384
//! ```

use clap::Parser;
use rpcplugin::{Client, ClientTls, Identity, KeyType, PeerTrust};
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use serde_json::{Value, json};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Launch a KV plugin, Put then Get, print one JSON line")]
struct Args {
    /// Path of the plugin executable.
    #[arg(long)]
    plugin: PathBuf,
    /// off, auto (AutoMTLS) or manual.
    #[arg(long, default_value = "auto")]
    tls: String,
    /// Key type of the host certificate for AutoMTLS (auto = P-256).
    #[arg(long, default_value = "auto")]
    key_type: String,
    /// Manual TLS: the host's certificate (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Manual TLS: the host's private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Manual TLS: the CA that signed the plugin's certificate (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Key to Put.
    #[arg(long, default_value = "hello")]
    put_key: String,
    /// Value to Put.
    #[arg(long, default_value = "world")]
    put_value: String,
    /// Bound on the whole exchange, in milliseconds.
    #[arg(long, default_value_t = 15000)]
    timeout_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging();
    let timeout = Duration::from_millis(args.timeout_ms);
    let report = match tokio::time::timeout(timeout, exchange(&args)).await {
        Ok(Ok(report)) => report,
        Ok(Err(err)) => failure(&args, err.to_string()),
        Err(_) => failure(&args, format!("timed out after {timeout:?}")),
    };
    let ok = report.get("ok").and_then(Value::as_bool).unwrap_or(false);
    println!("{report}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Logs (the runtime's own and the plugin's, relayed at their level) go to
/// stderr at info unless `RUST_LOG` says otherwise; stdout is for the JSON
/// line. Colour only on a terminal, and never with `NO_COLOR` set.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .init();
}

fn failure(args: &Args, error: String) -> Value {
    json!({"client": "rust", "ok": false, "error": error, "tls_mode": args.tls})
}

fn client_tls(args: &Args) -> Result<(ClientTls, Option<KeyType>), Box<dyn std::error::Error>> {
    Ok(match args.tls.as_str() {
        "off" => (ClientTls::Disabled, None),
        "auto" => {
            let key_type: KeyType = args.key_type.parse()?;
            (ClientTls::Auto(key_type), Some(key_type))
        }
        "manual" => {
            let (Some(cert), Some(key), Some(ca)) = (&args.cert, &args.key, &args.ca) else {
                return Err("--tls manual needs --cert, --key and --ca".into());
            };
            let identity = Identity::from_files(cert, key)?;
            let key_type = identity.key_type();
            let roots = rpcplugin::parse_certs_pem(&std::fs::read(ca)?)?;
            (
                ClientTls::Manual {
                    identity,
                    server_trust: PeerTrust::Roots(roots),
                },
                Some(key_type),
            )
        }
        other => return Err(format!("unknown --tls {other:?}: use off, auto or manual").into()),
    })
}

async fn exchange(args: &Args) -> Result<Value, Box<dyn std::error::Error>> {
    let (tls, host_key_type) = client_tls(args)?;
    let launched = Instant::now();
    let mut plugin = Client::builder(&args.plugin)
        .cookie("BASIC_PLUGIN", "hello")
        .versions([1])
        .tls(tls)
        .start_timeout(Duration::from_millis(args.timeout_ms))
        .start()
        .await?;
    let start_ms = ms(launched.elapsed());
    let mut kv = KvClient::new(plugin.channel());
    let put = kv
        .put(PutRequest {
            key: args.put_key.clone(),
            value: args.put_value.clone().into_bytes().into(),
        })
        .await;
    let first_rpc_ms = ms(launched.elapsed());
    let result = match put {
        Ok(_) => kv
            .get(GetRequest {
                key: args.put_key.clone(),
            })
            .await
            .map(|r| r.into_inner().value),
        Err(status) => Err(status),
    };
    let tls_info = plugin.tls_info().cloned();
    let addr = plugin.addr().clone();
    let version = plugin.protocol_version();
    plugin.kill().await?;
    let total_ms = ms(launched.elapsed());
    let (ok, error, value_ok) = match result {
        Ok(value) => {
            let value_ok = value.as_ref() == args.put_value.as_bytes();
            let error = (!value_ok).then(|| "value did not round-trip".to_string());
            (value_ok, error, value_ok)
        }
        Err(status) => (
            false,
            Some(rpcplugin::Error::from(status).to_string()),
            false,
        ),
    };
    Ok(json!({
        "client": "rust",
        "ok": ok,
        "error": error,
        "protocol_version": version,
        "transport": addr.network().to_string(),
        "address": addr.to_string(),
        "tls_mode": args.tls,
        "tls_version": tls_info.as_ref().map(|t| t.version.clone()),
        "cipher": tls_info.as_ref().map(|t| t.cipher.clone()),
        "peer_key_type": tls_info.as_ref().and_then(|t| t.peer_key_type).map(|k| k.to_string()),
        "host_key_type": host_key_type.map(|k| k.to_string()),
        "value_ok": value_ok,
        "start_ms": start_ms,
        "first_rpc_ms": first_rpc_ms,
        "total_ms": total_ms,
    }))
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
