//! The Rust host of the matrix's multiplexing cells: launches a KV plugin
//! (any language) with broker multiplexing asked for, Puts and Gets a value,
//! optionally makes brokered calls in both directions and holds the
//! connection idle across yamux keepalives, stops the plugin and prints one
//! JSON line as peers/CONTRACT.md describes (plus `mux`, `broker`,
//! `hold_ms`).
//!
//! ```text
//! rpcplugin-mux-host --plugin peers/go/bin/broker-plugin --tls auto --mux --broker
//! ```
//!
//! With `--broker` the plugin must speak the test plugin's commands and
//! cookie (`rpcplugin_tests::keys`; the Go twin is `broker-plugin`);
//! without it, the KV example's cookie (`BASIC_PLUGIN=hello`).

use rpcplugin::{Client, ClientTls, KeyType};
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use rpcplugin_tests::broker_calls::{self, BoxError};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    plugin: PathBuf,
    tls: String,
    key_type: KeyType,
    mux: bool,
    broker: bool,
    hold: Duration,
    timeout: Duration,
}

const USAGE: &str = "usage: rpcplugin-mux-host --plugin PATH [--tls off|auto] [--key-type K] [--mux] [--broker] \
                     [--hold-ms N] [--timeout-ms N]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        plugin: PathBuf::new(),
        tls: "auto".into(),
        key_type: KeyType::default(),
        mux: false,
        broker: false,
        hold: Duration::ZERO,
        timeout: Duration::from_secs(15),
    };
    let mut it = std::env::args().skip(1);
    let millis = |v: Option<String>| -> Result<Duration, String> {
        v.and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .ok_or_else(|| USAGE.to_owned())
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--plugin" => args.plugin = it.next().ok_or(USAGE)?.into(),
            "--tls" => args.tls = it.next().ok_or(USAGE)?,
            "--key-type" => {
                let name = it.next().ok_or(USAGE)?;
                if name != "auto" {
                    args.key_type = name
                        .parse()
                        .map_err(|_| format!("unknown --key-type {name:?}"))?;
                }
            }
            "--mux" => args.mux = true,
            "--broker" => args.broker = true,
            "--hold-ms" => args.hold = millis(it.next())?,
            "--timeout-ms" => args.timeout = millis(it.next())?,
            _ => return Err(format!("{USAGE} (unknown argument {arg:?})")),
        }
    }
    if args.plugin.as_os_str().is_empty() {
        return Err(USAGE.into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let report = match parse_args() {
        Ok(args) => run(&args),
        Err(usage) => json!({"client": "rust", "ok": false, "error": format!("usage: {usage}")}),
    };
    println!("{report}");
    if report.get("ok").and_then(Value::as_bool) == Some(true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run(args: &Args) -> Value {
    rpcplugin_tests::init_host_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return failure(args, format!("start: {err}")),
    };
    let bound = args.timeout + args.hold;
    runtime.block_on(async {
        match tokio::time::timeout(bound, exchange(args)).await {
            Ok(Ok(report)) => report,
            Ok(Err(err)) => failure(args, err.to_string()),
            Err(_) => failure(args, format!("timeout: no result within {bound:?}")),
        }
    })
}

fn failure(args: &Args, error: String) -> Value {
    json!({"client": "rust", "ok": false, "error": error, "tls_mode": args.tls, "mux": args.mux})
}

async fn exchange(args: &Args) -> Result<Value, BoxError> {
    let tls = match args.tls.as_str() {
        "off" => ClientTls::Disabled,
        "auto" => ClientTls::Auto(args.key_type),
        other => return Err(format!("usage: unknown --tls {other:?}: use off or auto").into()),
    };
    let (key, value) = match args.broker {
        true => (rpcplugin_tests::COOKIE_KEY, rpcplugin_tests::COOKIE_VALUE),
        false => ("BASIC_PLUGIN", "hello"),
    };
    let launched = Instant::now();
    let mut plugin = Client::builder(&args.plugin)
        .cookie(key, value)
        .versions([1])
        .tls(tls)
        .multiplex(args.mux)
        .start_timeout(args.timeout)
        .start()
        .await
        .map_err(|err| format!("start: {err}"))?;
    let start_ms = ms(launched.elapsed());
    let exchanged = calls(&plugin, args).await;
    let addr = plugin.addr().clone();
    let tls_info = plugin.tls_info().cloned();
    let multiplexed = plugin.handshake().and_then(|hs| hs.multiplex);
    plugin.kill().await?;
    let error = exchanged.err().map(|err| err.to_string());
    Ok(json!({
        "client": "rust",
        "ok": error.is_none(),
        "error": error,
        "protocol_version": plugin.protocol_version(),
        "transport": addr.network().to_string(),
        "address": addr.to_string(),
        "tls_mode": args.tls,
        "tls_version": tls_info.as_ref().map(|t| t.version.clone()),
        "cipher": tls_info.as_ref().map(|t| t.cipher.clone()),
        "mux": multiplexed == Some(true),
        "broker": args.broker,
        "hold_ms": args.hold.as_millis() as u64,
        "start_ms": start_ms,
        "total_ms": ms(launched.elapsed()),
    }))
}

/// Put and Get; brokered calls both ways when asked; then the same again
/// after the idle hold, over the same connection.
async fn calls(plugin: &Client, args: &Args) -> Result<(), BoxError> {
    round(plugin, args, "").await?;
    if !args.hold.is_zero() {
        tokio::time::sleep(args.hold).await;
        round(plugin, args, " after the hold").await?;
    }
    Ok(())
}

async fn round(plugin: &Client, args: &Args, when: &str) -> Result<(), BoxError> {
    let mut kv = KvClient::new(plugin.channel());
    kv.put(PutRequest {
        key: "hello".into(),
        value: b"world".to_vec().into(),
    })
    .await
    .map_err(|status| format!("put{when}: {}", rpcplugin::Error::from(status)))?;
    let got = kv
        .get(GetRequest {
            key: "hello".into(),
        })
        .await
        .map_err(|status| format!("get{when}: {}", rpcplugin::Error::from(status)))?
        .into_inner()
        .value;
    if got.as_ref() != b"world" {
        return Err(format!("value mismatch{when}: got {got:?}").into());
    }
    if args.broker {
        let message = format!("from-rust-host-{}", std::process::id());
        broker_calls::both_ways(plugin, &message)
            .await
            .map_err(|err| format!("broker{when}: {err}"))?;
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
