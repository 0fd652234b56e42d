//! Physical floors for the KV figures: a raw unix-socket 16-byte ping-pong
//! and the same over TLS 1.3 (rustls, pinned P-256 certificates, as
//! AutoMTLS uses), between this process and a child copy of itself; plus
//! one-way bulk transfer rates over both. One JSON line on stdout.
//!
//! ```text
//! bench-floor [--runtime current|multi] [--calls 10000] [--bulk-bytes 268435456]
//! ```

use anyhow::{Context, Result, bail};
use rpcplugin_bench::Latencies;
use rpcplugin_certs::{self as certs, Identity, KeyType, PeerTrust};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

const PING: usize = 16;
const CHUNK: usize = 256 << 10;

const SERVER_CERT: &str = "RPCPLUGIN_FLOOR_SERVER_CERT";
const SERVER_KEY: &str = "RPCPLUGIN_FLOOR_SERVER_KEY";
const CLIENT_CERT: &str = "RPCPLUGIN_FLOOR_CLIENT_CERT";

/// Raw unix-socket and TLS floors; one JSON line on stdout.
#[derive(clap::Parser)]
#[command(name = "bench-floor")]
struct Args {
    /// The tokio runtime of both ends.
    #[arg(long, default_value = "current", value_parser = ["current", "multi"])]
    runtime: String,
    /// Timed 16-byte round trips.
    #[arg(long, default_value_t = 10_000)]
    calls: usize,
    /// Bytes of the one-way bulk transfer.
    #[arg(long, default_value_t = 256 << 20)]
    bulk_bytes: usize,
    /// Serve on this socket path (the child copy).
    #[arg(long)]
    serve: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    rpcplugin_bench::parse_args()
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|args| {
        let runtime = rpcplugin_bench::runtime(&args.runtime)?;
        runtime.block_on(async {
            match &args.serve {
                Some(path) => serve(path).await.map(|()| Value::Null),
                None => measure(&args).await,
            }
        })
    });
    match result {
        Ok(Value::Null) => ExitCode::SUCCESS,
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            println!("{}", json!({"ok": false, "error": format!("{err:#}")}));
            ExitCode::FAILURE
        }
    }
}

/// The child: accepts one plain connection and one TLS connection and
/// serves each (ping-pong until a zero-length marker, then bulk).
async fn serve(path: &Path) -> Result<()> {
    let var = |name: &str| std::env::var(name).with_context(|| format!("{name} unset"));
    let identity = Identity::from_pem(var(SERVER_CERT)?.as_bytes(), var(SERVER_KEY)?.as_bytes())?;
    let client_cert = certs::parse_cert_pem(var(CLIENT_CERT)?.as_bytes())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(certs::server_config(
        &identity,
        PeerTrust::Pinned(client_cert),
    )?);
    let listener = UnixListener::bind(path)?;
    println!("ready");
    let (plain, _) = listener.accept().await?;
    echo(plain).await?;
    let (stream, _) = listener.accept().await?;
    let tls = acceptor.accept(stream).await?;
    echo(tls).await?;
    Ok(())
}

/// Ping-pong: echo 16-byte messages until an all-zero one; then bulk: read
/// an 8-byte length, that many bytes, and answer one byte.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> Result<()> {
    let mut buf = [0u8; PING];
    loop {
        s.read_exact(&mut buf).await?;
        if buf == [0u8; PING] {
            break;
        }
        s.write_all(&buf).await?;
        s.flush().await?;
    }
    let mut len = [0u8; 8];
    s.read_exact(&mut len).await?;
    let mut left = u64::from_le_bytes(len);
    let mut chunk = vec![0u8; CHUNK];
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
        let n = s.read(chunk.get_mut(..want).unwrap_or_default()).await?;
        if n == 0 {
            bail!("bulk stream ended early");
        }
        left -= n as u64;
    }
    s.write_all(&[1]).await?;
    s.flush().await?;
    // Wait for the client to close.
    let _ = s.read(&mut buf).await;
    Ok(())
}

async fn measure(args: &Args) -> Result<Value> {
    let server = Identity::generate(KeyType::EcP256)?;
    let client = Identity::generate(KeyType::EcP256)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("floor.sock");
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .args(["--runtime", &args.runtime, "--serve"])
        .arg(&path)
        .env(SERVER_CERT, server.cert_pem())
        .env(SERVER_KEY, server.key_pem())
        .env(CLIENT_CERT, client.cert_pem())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let ready = BufReader::new(stdout).lines().next_line().await?;
    if ready.as_deref() != Some("ready") {
        bail!("floor server did not start");
    }
    let plain = UnixStream::connect(&path).await?;
    let unix = exchange(plain, args).await?;
    let connector = tokio_rustls::TlsConnector::from(certs::client_config(
        Some(&client),
        PeerTrust::Pinned(server.cert_der().clone()),
    )?);
    let stream = UnixStream::connect(&path).await?;
    let tls = connector.connect(certs::server_name(), stream).await?;
    let version = tls.get_ref().1.protocol_version().map(|v| format!("{v:?}"));
    let tls = exchange(tls, args).await?;
    let _ = child.wait().await;
    Ok(json!({
        "ok": true,
        "error": null,
        "runtime": args.runtime,
        "tls_version": version,
        "unix": unix,
        "tls": tls,
    }))
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, args: &Args) -> Result<Value> {
    let msg = [0x42u8; PING];
    let mut back = [0u8; PING];
    let mut samples = Latencies::new()?;
    for i in 0..args.calls + args.calls / 10 {
        let t = Instant::now();
        s.write_all(&msg).await?;
        s.flush().await?;
        s.read_exact(&mut back).await?;
        // The first tenth warms up.
        if i >= args.calls / 10 {
            samples.record(t.elapsed());
        }
    }
    s.write_all(&[0u8; PING]).await?;
    let chunk = vec![0xa5u8; CHUNK];
    let t = Instant::now();
    s.write_all(&(args.bulk_bytes as u64).to_le_bytes()).await?;
    let mut left = args.bulk_bytes;
    while left > 0 {
        let n = left.min(CHUNK);
        s.write_all(chunk.get(..n).unwrap_or_default()).await?;
        left -= n;
    }
    s.flush().await?;
    let mut ack = [0u8; 1];
    s.read_exact(&mut ack).await?;
    let seconds = t.elapsed().as_secs_f64();
    let _ = s.shutdown().await;
    Ok(json!({
        "latency_us": samples.summary(),
        "bulk_mb_s": ((args.bulk_bytes as f64 / 1e6 / seconds) * 10.0).round() / 10.0,
    }))
}
