//! The plugin's socket hygiene and magic-cookie check.

use crate::census::{Census, MARK_ENV, Row, mark, ms, serial};
use crate::plugin::{BOUND, start_plugin};
use crate::support::{PLUGIN, Scratch};
use rpcplugin::Addr;
use rpcplugin_tests::{COOKIE_KEY, mode};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::time::Instant;

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
        Census::check_since(&before, &mut failures).await;
        Row {
            group: "socket",
            case: case.to_owned(),
            expected: expected.to_owned(),
            measured,
            bound: String::new(),
            failure: failures.join("; "),
        }
        .finish();
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
