//! A Rust host for the matrix's broker and lifecycle cells, with the same
//! command line as `peers/go/cmd/broker-host` (go-plugin v1.8.0). It
//! launches a plugin that speaks the test plugin's KV command keys
//! (`rpcplugin_tests::keys`: the Rust test plugin, the Go broker-plugin),
//! runs one scenario and prints one JSON line on stdout:
//!
//! - `plugin-serves`: the plugin serves a brokered KV server, the host
//!   dials it and reads the greeting;
//! - `host-serves`: the host serves a brokered KV server, the plugin dials
//!   it and writes into it;
//! - `exit-status`: the plugin exits with status 7 in the middle of a
//!   call; the host must report exactly that status;
//! - `managed-stop`: a `ClientSet` stops the plugin; it must exit by
//!   itself with status 0 (the matrix also fails the cell on any warning
//!   or error line the host printed, plugin lines included);
//! - `hold`: prints the plugin's pid and waits to be killed (the matrix
//!   kills this host with SIGKILL and watches the plugin).

use clap::{Parser, ValueEnum};
use rpcplugin::{Client, ClientSet, ClientTls, PluginExit, Routes};
use rpcplugin_kv::MemoryKv;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::kv_server::Kv;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use rpcplugin_tests::keys;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scenario {
    PluginServes,
    HostServes,
    ExitStatus,
    ManagedStop,
    Hold,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TlsMode {
    Off,
    Auto,
}

#[derive(Parser, Debug)]
#[command(about = "Rust host for the matrix's broker and lifecycle cells")]
struct Args {
    /// The plugin executable.
    #[arg(long)]
    plugin: PathBuf,
    #[arg(long, value_enum)]
    scenario: Scenario,
    #[arg(long, value_enum, default_value = "auto")]
    tls: TlsMode,
    /// The magic cookie, KEY=VALUE (default: the test plugin's).
    #[arg(long)]
    cookie: Option<String>,
    /// Deadline for the whole scenario.
    #[arg(long, default_value_t = 15000)]
    timeout_ms: u64,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args = Args::parse();
    rpcplugin_tests::init_host_logging();
    let outcome = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(async {
            let deadline = Duration::from_millis(args.timeout_ms);
            match tokio::time::timeout(deadline, run(&args)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("timeout: no result within {} ms", args.timeout_ms).into()),
            }
        }),
        Err(err) => Err(err.into()),
    };
    let (ok, line) = match outcome {
        Ok(detail) => (
            true,
            json!({"client": "rust", "ok": true, "error": null, "detail": detail}),
        ),
        Err(err) => (
            false,
            json!({"client": "rust", "ok": false, "error": err.to_string().replace('\n', "; "), "detail": null}),
        ),
    };
    let mut line = line;
    if let Some(map) = line.as_object_mut() {
        map.insert("scenario".into(), json!(format!("{:?}", args.scenario)));
        map.insert(
            "tls_mode".into(),
            json!(format!("{:?}", args.tls).to_lowercase()),
        );
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn start(args: &Args) -> Result<Client, BoxError> {
    let (key, value) = match &args.cookie {
        Some(cookie) => cookie
            .split_once('=')
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .ok_or("usage: --cookie KEY=VALUE")?,
        None => (
            rpcplugin_tests::COOKIE_KEY.to_owned(),
            rpcplugin_tests::COOKIE_VALUE.to_owned(),
        ),
    };
    let tls = match args.tls {
        TlsMode::Off => ClientTls::Disabled,
        TlsMode::Auto => ClientTls::default(),
    };
    let client = Client::builder(&args.plugin)
        .cookie(key, value)
        .versions([1])
        .tls(tls)
        .stderr(std::io::stderr())
        .start()
        .await
        .map_err(|err| format!("start: {err}"))?;
    Ok(client)
}

async fn run(args: &Args) -> Result<Value, BoxError> {
    let mut client = start(args).await?;
    let detail = match args.scenario {
        Scenario::PluginServes => plugin_serves(&client).await,
        Scenario::HostServes => host_serves(&client).await,
        Scenario::ExitStatus => return exit_status(client).await,
        Scenario::ManagedStop => return managed_stop(client).await,
        Scenario::Hold => hold(&client).await,
    };
    client.kill().await.map_err(|err| format!("kill: {err}"))?;
    detail
}

async fn get(client: &Client, key: &str) -> Result<Vec<u8>, BoxError> {
    Ok(KvClient::new(client.channel())
        .get(GetRequest { key: key.into() })
        .await
        .map_err(|status| format!("get {key:?}: {status}"))?
        .into_inner()
        .value
        .to_vec())
}

async fn plugin_serves(client: &Client) -> Result<Value, BoxError> {
    let answer = get(client, keys::SERVE_BROKER).await?;
    let text = String::from_utf8_lossy(&answer);
    let id: u32 = text.parse().map_err(|_| {
        format!(
            "the plugin answered {:?} with {text:?}, not a broker id",
            keys::SERVE_BROKER
        )
    })?;
    let channel = client
        .broker()
        .dial(id)
        .await
        .map_err(|err| format!("dial broker id {id}: {err}"))?;
    let greeting = KvClient::new(channel)
        .get(GetRequest {
            key: keys::BROKERED_GREETING.into(),
        })
        .await
        .map_err(|status| format!("get on broker id {id}: {status}"))?
        .into_inner()
        .value;
    if greeting != keys::BROKERED_GREETING_VALUE.as_bytes() {
        return Err(format!("value mismatch: the brokered server held {greeting:?}").into());
    }
    Ok(json!({"broker_id": id}))
}

async fn host_serves(client: &Client) -> Result<Value, BoxError> {
    let store = MemoryKv::default();
    let id = client.broker().next_id();
    client
        .broker()
        .accept_and_serve(id, Routes::new(store.clone().into_service()))
        .await
        .map_err(|err| format!("serve broker id {id}: {err}"))?;
    let message = format!("written through broker id {id}");
    KvClient::new(client.channel())
        .put(PutRequest {
            key: format!("{}{id}", keys::BROKER_DIAL_PREFIX),
            value: message.clone().into(),
        })
        .await
        .map_err(|status| format!("put asking the plugin to dial broker id {id}: {status}"))?;
    let stored = store
        .get(tonic::Request::new(GetRequest {
            key: keys::FROM_PLUGIN.into(),
        }))
        .await
        .map_err(|status| {
            format!("the plugin never wrote into the host's brokered server {id}: {status}")
        })?
        .into_inner()
        .value;
    if stored != message.as_bytes() {
        return Err(format!("value mismatch: the plugin wrote {stored:?}").into());
    }
    Ok(json!({"broker_id": id}))
}

async fn exit_status(client: Client) -> Result<Value, BoxError> {
    let exited = client.exited();
    let call = KvClient::new(client.channel())
        .put(PutRequest {
            key: keys::EXIT.into(),
            value: "7".into(),
        })
        .await;
    let exit = exited.await;
    let explained = match call {
        Ok(_) => None,
        Err(status) => Some(client.explain(status).await.to_string()),
    };
    match exit {
        PluginExit::Status(status) if status.code() == Some(7) => {
            Ok(json!({"exit": exit.to_string(), "call_error": explained}))
        }
        other => Err(format!("expected exit status 7, the host saw: {other}").into()),
    }
}

async fn managed_stop(client: Client) -> Result<Value, BoxError> {
    let set = ClientSet::new();
    set.manage(&client);
    let value = get(&client, keys::PID).await?;
    let exits = set.stop_all().await;
    match exits.as_slice() {
        [Some(PluginExit::Status(status))] if status.success() => Ok(json!({
            "plugin_pid": String::from_utf8_lossy(&value),
            "exit": exits.first().cloned().flatten().map(|e| e.to_string()),
        })),
        other => Err(format!("expected one clean exit, stop_all gave {other:?}").into()),
    }
}

/// Prints the plugin's pid as the JSON line and never returns.
async fn hold(client: &Client) -> Result<Value, BoxError> {
    let pid = String::from_utf8(get(client, keys::PID).await?)?;
    let line =
        json!({"client": "rust", "ok": true, "error": null, "plugin_pid": pid.parse::<u32>()?});
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    drop(out);
    std::future::pending::<()>().await;
    Ok(Value::Null)
}
