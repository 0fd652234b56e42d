//! `rpcplugin validate-connection`: run one host library against one plugin
//! library for real (unlike a lookup table), and explain a failure.

use anyhow::{Context, Result, bail};
use rpcplugin::KeyType;
use rpcplugin_certs::internal::DevPki;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Host library: rust, go or python.
    #[arg(long)]
    client: String,
    /// Plugin library (rust, go, python) or the path of any KV plugin.
    #[arg(long)]
    server: String,
    /// off, auto (AutoMTLS) or manual (a throwaway CA and certificates).
    #[arg(long, default_value = "auto")]
    tls: String,
    /// Key type: of the host's AutoMTLS certificate, or of every manual-TLS certificate.
    #[arg(long, default_value = "auto")]
    key_type: String,
    /// The plugin's transport, where the plugin library can choose: unix or tcp.
    #[arg(long, default_value = "unix")]
    transport: String,
    /// The rpcplugin repository (holding peers/); found from the current directory by default.
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Deadline for the whole exchange, in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    timeout_ms: u64,
}

/// Finds the repository root: the nearest ancestor holding peers/CONTRACT.md.
fn find_repo(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("peers/CONTRACT.md").is_file())
        .map(Path::to_path_buf)
}

fn executable(repo: &Path, lang: &str, role: &str) -> Result<PathBuf> {
    let name = format!("kv-{role}");
    let path = match lang {
        "rust" => ["release", "debug"]
            .iter()
            .map(|profile| {
                repo.join("target")
                    .join(profile)
                    .join("examples")
                    .join(&name)
            })
            .find(|p| p.is_file())
            .with_context(|| {
                format!(
                    "no Rust {name}: run `cargo build --examples -p rpcplugin` in {}",
                    repo.display()
                )
            })?,
        "go" => {
            let path = repo.join("peers/go/bin").join(&name);
            if !path.is_file() {
                let status = Command::new("bash")
                    .arg(repo.join("peers/go/build.sh"))
                    .status()
                    .context("building the Go peer needs the `go` command")?;
                if !status.success() {
                    bail!("building the Go peer failed ({status})");
                }
            }
            path
        }
        "python" => {
            let status = Command::new("bash")
                .arg(repo.join("peers/python/setup.sh"))
                .status()
                .context("setting up the Python peer needs python3.11")?;
            if !status.success() {
                bail!("setting up the Python peer failed ({status})");
            }
            repo.join("peers/python").join(&name)
        }
        other if role == "plugin" && Path::new(other).is_file() => PathBuf::from(other),
        other => bail!("unknown {role} {other:?}: use rust, go or python"),
    };
    Ok(path)
}

/// The matrix cell id this run corresponds to, when it is one.
fn cell_id(args: &Args, key_type: Option<KeyType>) -> Option<String> {
    let kt = |k: KeyType| match k {
        KeyType::EcP256 => "p256",
        KeyType::EcP384 => "p384",
        KeyType::EcP521 => "p521",
        KeyType::Rsa2048 => "rsa2048",
        KeyType::Rsa3072 => "rsa3072",
        KeyType::Rsa4096 => "rsa4096",
    };
    let default_host_key = match args.client.as_str() {
        "go" => KeyType::EcP521,
        "python" => KeyType::EcP384,
        _ => KeyType::EcP256,
    };
    let transport = if args.server == "go" {
        "unix"
    } else {
        args.transport.as_str()
    };
    let tls = match args.tls.as_str() {
        "off" => "off".to_owned(),
        "auto" => format!("auto-host-{}", kt(key_type.unwrap_or(default_host_key))),
        "manual" => format!("manual-{}", kt(key_type.unwrap_or(KeyType::EcP256))),
        _ => return None,
    };
    Some(format!(
        "{}->{} {transport} {tls}",
        args.client, args.server
    ))
}

/// Rows of peers/expectations.tsv: id, pass, reason.
fn expectations(repo: &Path) -> Vec<(String, bool, String)> {
    std::fs::read_to_string(repo.join("peers/expectations.tsv"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let id = cols.next()?.to_owned();
            let pass = cols.next()? == "pass";
            Some((id, pass, cols.next().unwrap_or("").to_owned()))
        })
        .collect()
}

pub(crate) async fn run(args: Args) -> Result<bool> {
    let repo = match &args.repo {
        Some(repo) => repo.clone(),
        None => find_repo(&std::env::current_dir()?)
            .or_else(|| std::env::current_exe().ok().as_deref().and_then(find_repo))
            .context("cannot find the rpcplugin repository (peers/CONTRACT.md): pass --repo")?,
    };
    let host = executable(&repo, &args.client, "host")?;
    let plugin = executable(&repo, &args.server, "plugin")?;
    let key_type = match args.key_type.as_str() {
        "auto" => None,
        k => Some(k.parse::<KeyType>()?),
    };

    let mut cmd = Command::new(&host);
    cmd.arg("--plugin")
        .arg(&plugin)
        .args([
            "--tls",
            &args.tls,
            "--timeout-ms",
            &args.timeout_ms.to_string(),
        ])
        .env("RPCPLUGIN_KV_TRANSPORT", &args.transport)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    let pki_dir = tempfile_dir()?;
    match args.tls.as_str() {
        "auto" => {
            cmd.args(["--key-type", &args.key_type]);
        }
        "manual" => {
            let kt = key_type.unwrap_or(KeyType::EcP256);
            DevPki::generate(kt)?.write_to(&pki_dir)?;
            let file = |name: &str| pki_dir.join(name);
            cmd.args(["--key-type", &args.key_type])
                .arg("--cert")
                .arg(file("client.pem"))
                .arg("--key")
                .arg(file("client.key"))
                .arg("--ca")
                .arg(file("ca.pem"))
                .env("RPCPLUGIN_KV_TLS_CERT", file("server.pem"))
                .env("RPCPLUGIN_KV_TLS_KEY", file("server.key"))
                .env("RPCPLUGIN_KV_TLS_CA", file("ca.pem"));
        }
        _ => {}
    }
    let output = cmd
        .output()
        .with_context(|| format!("running {}", host.display()))?;
    let _ = std::fs::remove_dir_all(&pki_dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let result: Value = serde_json::from_str(line)
        .with_context(|| format!("the host printed no JSON result: {line:?}"))?;
    let ok = result.get("ok").and_then(Value::as_bool) == Some(true);
    println!("{result}");

    let id = cell_id(&args, key_type);
    let rows = expectations(&repo);
    if ok {
        println!(
            "connected: {} host -> {} plugin ({})",
            args.client,
            args.server,
            id.as_deref().unwrap_or("custom")
        );
        return Ok(true);
    }
    let error = result
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown error");
    println!("FAILED: {error}");
    match id
        .as_ref()
        .and_then(|id| rows.iter().find(|(row, _, _)| row == id))
    {
        Some((_, false, reason)) => println!("known cause: {reason}"),
        Some((_, true, _)) => println!(
            "this setup passes in the compatibility matrix, so this failure is new: rerun with RUST_LOG=debug and report it"
        ),
        None => println!("no matrix row for this setup"),
    }
    let pair = format!("{}->{} ", args.client, args.server);
    let working: Vec<&str> = rows
        .iter()
        .filter(|(row, pass, _)| *pass && row.starts_with(&pair))
        .map(|(row, _, _)| row.trim_start_matches(&pair))
        .collect();
    if !working.is_empty() {
        println!("setups that work for this pair: {}", working.join(", "));
    }
    Ok(false)
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rpcplugin-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
