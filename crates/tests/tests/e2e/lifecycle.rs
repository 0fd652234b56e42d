//! Stopping, health, crashes and large messages.

use crate::support::{Scratch, builder, get, kill_cleanly, nonce, put};
use rpcplugin::{ClientBuilder, ClientTls, Error, KeyType, PluginExit};
use rpcplugin_kv::proto::PutRequest;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_tests::{keys, mode};
use std::time::Duration;

#[tokio::test]
async fn kill_lets_the_plugin_exit_by_itself() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .start()
        .await
        .expect("start");
    client.ping().await.expect("ping");
    // kill_cleanly: exit status 0 (so not SIGKILL), quickly, nothing left.
    kill_cleanly(&mut client, &scratch).await;
    // Again: nothing to do.
    assert!(client.kill().await.expect("second kill").is_none());
    assert!(client.ping().await.is_err(), "ping after kill");
}

#[tokio::test]
async fn health_changes_show_in_ping() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .start()
        .await
        .expect("start");
    put(client.channel(), keys::HEALTH, "not-serving").await;
    match client.ping().await {
        Err(Error::Unhealthy(reason)) => assert!(reason.contains("NOT_SERVING"), "{reason}"),
        other => panic!("expected Unhealthy, got {other:?}"),
    }
    put(client.channel(), keys::HEALTH, "serving").await;
    client.ping().await.expect("serving again");
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn a_crashed_plugin_is_reaped_by_kill() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .start()
        .await
        .expect("start");
    let crashed = KvClient::new(client.channel())
        .put(PutRequest {
            key: keys::EXIT.into(),
            value: b"7".to_vec().into(),
        })
        .await;
    assert!(crashed.is_err(), "the call that made the plugin exit");
    assert!(client.ping().await.is_err(), "ping a dead plugin");
    // Exit code 7, not a SIGKILL: kill found it exited already.
    let status = client.kill().await.expect("kill").expect("exit status");
    assert_eq!(status.code(), Some(7), "{status}");
    scratch.assert_plugin_gone();
}

#[tokio::test]
async fn messages_over_4_mib_both_ways() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .tls(ClientTls::Auto(KeyType::EcP256))
        .start()
        .await
        .expect("start");
    let tag = nonce("big");
    let mut value = vec![b'z'; 6 << 20];
    value.extend_from_slice(tag.as_bytes());
    put(client.channel(), "big", value.clone()).await;
    assert!(
        get(client.channel(), "big").await == value,
        "6 MiB value changed"
    );
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn dropping_the_client_stops_the_plugin() {
    let scratch = Scratch::new();
    let client = builder(mode::NORMAL, &scratch)
        .start()
        .await
        .expect("start");
    let exited = client.exited();
    drop(client);
    // The exit watcher SIGKILLs and reaps the plugin, then reports it.
    let exit = tokio::time::timeout(Duration::from_secs(30), exited)
        .await
        .expect("the plugin was not reaped after the client was dropped");
    assert_eq!(exit.to_string(), "killed by signal 9", "{exit:?}");
    scratch.assert_plugin_gone();
}

#[tokio::test]
async fn an_unexpected_exit_is_noticed_and_named() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .start()
        .await
        .expect("start");
    assert_eq!(client.exit(), None, "running");
    let exited = client.exited();
    let crashed = KvClient::new(client.channel())
        .put(PutRequest {
            key: keys::EXIT.into(),
            value: b"7".to_vec().into(),
        })
        .await
        .expect_err("the call that made the plugin exit");
    let exit = tokio::time::timeout(Duration::from_secs(30), exited)
        .await
        .expect("exit noticed");
    match exit {
        PluginExit::Status(status) => assert_eq!(status.code(), Some(7), "{status}"),
        other => panic!("expected a status, got {other:?}"),
    }
    assert_eq!(client.exit(), Some(exit));
    // The failed call, explained: the plugin exited, with its status.
    let err = client.explain(crashed).await;
    assert!(
        matches!(&err, Error::PluginGone { exit: e, status: Some(_), .. } if *e == exit),
        "{err:?}"
    );
    assert!(err.to_string().contains("exit status: 7"), "{err}");
    // A ping fails at once with the same cause, not a TLS guess.
    let err = client.ping().await.expect_err("ping a dead plugin");
    assert!(matches!(err, Error::PluginGone { .. }), "{err:?}");
    let status = client.kill().await.expect("kill").expect("exit status");
    assert_eq!(status.code(), Some(7));
    scratch.assert_plugin_gone();
}

#[tokio::test]
async fn checksum_mismatch_runs_nothing() {
    let scratch = Scratch::new();
    let result = builder(mode::NORMAL, &scratch)
        .checksum_sha256(vec![0u8; 32])
        .start()
        .await;
    match result {
        Err(Error::ChecksumMismatch { expected, .. }) => assert_eq!(expected, "00".repeat(32)),
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    assert!(!scratch.report_path().exists(), "the plugin was started");
}

fn sha256_of(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("read for the checksum");
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes)
        .as_ref()
        .to_vec()
}

/// A directory holding an executable `name` with `content`.
fn exe_dir(scratch: &Scratch, dir: &str, name: &str, content: &[u8]) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch.path().join(dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write executable");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

const BARE_NAME: &str = "rpcplugin-checksum-plugin";

/// A host for `command` in normal mode, reporting to `scratch`, with no
/// environment from this process but `extra_env`, that runs the plugin only
/// if the file it would execute has the SHA-256 of `verified`.
fn checksummed(
    command: impl AsRef<std::path::Path>,
    scratch: &Scratch,
    extra_env: &[(&str, &std::ffi::OsStr)],
    verified: &std::path::Path,
) -> ClientBuilder {
    let mut builder = rpcplugin::Client::builder(command)
        .cookie(rpcplugin_tests::COOKIE_KEY, rpcplugin_tests::COOKIE_VALUE)
        .skip_host_env(true)
        .env(rpcplugin_tests::MODE_ENV, mode::NORMAL)
        .env(rpcplugin_tests::REPORT_ENV, scratch.report_path());
    for (key, value) in extra_env {
        builder = builder.env(key, value);
    }
    builder.checksum_sha256(sha256_of(verified))
}

#[tokio::test]
async fn a_bare_command_is_hashed_where_the_plugins_path_finds_it() {
    let scratch = Scratch::new();
    let real = std::fs::read(crate::support::PLUGIN).expect("test plugin");
    let dir = exe_dir(&scratch, "real", BARE_NAME, &real);
    let path = [("PATH", dir.as_os_str())];
    let mut client = checksummed(BARE_NAME, &scratch, &path, &dir.join(BARE_NAME))
        .start()
        .await
        .expect("the checksum of the file PATH finds, and that file runs");
    client.ping().await.expect("ping");
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn the_checksum_covers_the_file_that_would_run_not_another() {
    let scratch = Scratch::new();
    // PATH finds the decoy first; the checksum is of the real plugin.
    let decoy = exe_dir(&scratch, "first", BARE_NAME, b"#!/bin/sh\nexit 3\n");
    let real = std::fs::read(crate::support::PLUGIN).expect("test plugin");
    let second = exe_dir(&scratch, "second", BARE_NAME, &real);
    let path = std::env::join_paths([&decoy, &second]).expect("PATH");
    let env = [("PATH", path.as_os_str())];
    let result = checksummed(BARE_NAME, &scratch, &env, &second.join(BARE_NAME))
        .start()
        .await;
    match result {
        Err(Error::ChecksumMismatch { path, .. }) => assert_eq!(path, decoy.join(BARE_NAME)),
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    assert!(!scratch.report_path().exists(), "a plugin was started");
}

#[tokio::test]
async fn a_verified_script_runs_through_its_descriptor() {
    let scratch = Scratch::new();
    let script = format!("#!/bin/sh\nexec '{}' \"$@\"\n", crate::support::PLUGIN);
    let dir = exe_dir(&scratch, "script", "plugin.sh", script.as_bytes());
    let path = dir.join("plugin.sh");
    let mut client = checksummed(&path, &scratch, &[], &path)
        .start()
        .await
        .expect("a #! script with a checksum");
    client.ping().await.expect("ping");
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn a_client_set_stops_every_managed_plugin_gracefully() {
    let (one, two) = (Scratch::new(), Scratch::new());
    let set = rpcplugin::ClientSet::new();
    let a = builder(mode::NORMAL, &one).start().await.expect("start a");
    let b = builder(mode::NORMAL, &two).start().await.expect("start b");
    set.manage(&a);
    set.manage(&b);
    assert_eq!(set.running(), 2);
    let exits = set.stop_all().await;
    assert_eq!(exits.len(), 2, "{exits:?}");
    for exit in exits {
        // Exit status 0: each took the Shutdown call, none was SIGKILLed.
        match exit {
            Some(PluginExit::Status(status)) => assert!(status.success(), "{status}"),
            other => panic!("expected a clean exit, got {other:?}"),
        }
    }
    assert_eq!(set.running(), 0);
    assert!(a.exit().is_some() && b.exit().is_some());
    drop((a, b));
    one.assert_plugin_gone();
    two.assert_plugin_gone();
}

/// The host is killed with SIGKILL and cannot stop its plugin: the plugin
/// notices it was orphaned and shuts down by itself (go-plugin #210). The
/// host here is a shell, which asks the kernel for no parent-death signal,
/// so the plugin's own watch is what stops it.
#[tokio::test]
async fn the_plugin_stops_when_its_host_is_killed() {
    use tokio::io::AsyncBufReadExt;
    let scratch = Scratch::new();
    let mut host = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("\"$0\" & wait")
        .arg(crate::support::PLUGIN)
        .env_clear()
        .env(rpcplugin_tests::COOKIE_KEY, rpcplugin_tests::COOKIE_VALUE)
        .env(rpcplugin_tests::MODE_ENV, mode::NORMAL)
        .env(rpcplugin_tests::REPORT_ENV, scratch.report_path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the shell host");
    let stdout = host.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let handshake = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the plugin started")
        .expect("read")
        .expect("the handshake");
    assert!(handshake.starts_with("1|1|unix|"), "{handshake}");
    // The plugin wrote its report before its handshake line.
    let pid = scratch.report().pid;
    assert!(
        rpcplugin_tests::processes()
            .iter()
            .any(|(p, _, _)| *p == pid),
        "plugin {pid} is not running"
    );

    host.start_kill().expect("SIGKILL the host");
    host.wait().await.expect("reap the host");
    // Bounded: the plugin checks its parent every 500 ms, then has the
    // shutdown grace period. Poll the fact, with a generous deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !scratch.leftovers().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    scratch.assert_plugin_gone();
    // Its socket is gone too: it shut down, it was not killed.
    let socket = handshake.split('|').nth(3).expect("address field");
    assert!(
        !std::path::Path::new(socket).exists(),
        "socket {socket} left behind"
    );
}

#[tokio::test]
async fn sockets_go_in_the_directory_the_host_names() {
    let scratch = Scratch::new();
    let base = scratch.path().join("sockets");
    std::fs::create_dir(&base).expect("mkdir");
    let mut client = builder(mode::NORMAL, &scratch)
        .socket_dir(&base)
        .start()
        .await
        .expect("start");
    let socket_dir = scratch.report().socket_dir;
    assert!(
        std::path::Path::new(&socket_dir).starts_with(&base),
        "{socket_dir} is not under {base:?}"
    );
    kill_cleanly(&mut client, &scratch).await;
    assert_eq!(
        std::fs::read_dir(&base).expect("list").count(),
        0,
        "the private directory was left behind"
    );
}
