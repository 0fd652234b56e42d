//! Broker multiplexing (`multiplex(true)`, go-plugin's
//! `GRPCBrokerMultiplex`): the main connection and brokered connections in
//! both directions as yamux streams of one socket, with and without TLS,
//! and nothing left running after kill.

use crate::support::{
    Scratch, Tls, builder, host_dials_plugin, host_serves, kill_cleanly, plugin_dials_host,
};
use rpcplugin::ParseError;
use rpcplugin::{Error, KeyType};
use rpcplugin_kv::proto::GetRequest;
use rpcplugin_tests::{TRANSPORT_ENV, keys, mode};
use std::time::Duration;
use tokio::time::Instant;

/// Sockets the process `pid` holds (listening or connected).
fn sockets_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// Tasks alive on this test's runtime.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits (bounded) until no more tasks are alive than `baseline`; returns
/// how many are.
async fn settle_tasks(baseline: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive = alive_tasks();
        if alive <= baseline || Instant::now() >= deadline {
            return alive;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn both_directions(transport: &str, tls: Tls) {
    let baseline = alive_tasks();
    let scratch = Scratch::new();
    let (builder, _) = tls.apply(
        builder(mode::NORMAL, &scratch)
            .env(TRANSPORT_ENV, transport)
            .multiplex(true),
        &scratch,
    );
    let mut client = builder.start().await.expect("start");
    assert_eq!(
        client.handshake().and_then(|hs| hs.multiplex),
        Some(true),
        "the plugin did not announce multiplexing"
    );
    let pid = client.pid().expect("a launched plugin");
    // The plugin took its one connection and closed its listener.
    assert!(
        rpcplugin_transport::dial(client.addr()).await.is_err(),
        "the plugin still accepts connections"
    );
    let plugin_sockets = sockets_of(pid);

    // The plugin serves, the host dials.
    let brokered = host_dials_plugin(&client).await;

    // The host serves, the plugin dials.
    let (id, host_store) = host_serves(&client).await;
    plugin_dials_host(&client, id, &host_store).await;

    // Four connections (main, two brokered, the plugin's dial back), and
    // the plugin opened no socket for them.
    assert_eq!(
        sockets_of(pid),
        plugin_sockets,
        "brokering opened sockets in the plugin"
    );

    // The census below sees this connection's tasks (driver, relays,
    // channels, the host's brokered server).
    assert!(alive_tasks() > baseline);
    kill_cleanly(&mut client, &scratch).await;
    assert!(brokered.is_closed() || get_fails(brokered).await);
    drop(client);
    let alive = settle_tasks(baseline).await;
    assert!(
        alive <= baseline,
        "{alive} tasks alive after kill, {baseline} before start"
    );
}

async fn get_fails(channel: rpcplugin::PluginChannel) -> bool {
    let mut kv = rpcplugin_kv::proto::kv_client::KvClient::new(channel);
    kv.get(GetRequest {
        key: keys::BROKERED_GREETING.into(),
    })
    .await
    .is_err()
}

#[tokio::test]
async fn mux_unix_tls_off() {
    both_directions("unix", Tls::Off).await;
}

#[tokio::test]
async fn mux_tcp_automtls() {
    both_directions(
        "tcp",
        Tls::Auto {
            host: KeyType::EcP521,
            plugin: KeyType::EcP256,
        },
    )
    .await;
}

#[tokio::test]
async fn mux_unix_automtls() {
    both_directions(
        "unix",
        Tls::Auto {
            host: KeyType::EcP256,
            plugin: KeyType::EcP384,
        },
    )
    .await;
}

#[tokio::test]
async fn mux_unix_manual_tls() {
    both_directions(
        "unix",
        Tls::Manual {
            ca: KeyType::EcP256,
            host: KeyType::EcP256,
            plugin: KeyType::EcP256,
        },
    )
    .await;
}

/// A knock for an id nobody serves is refused by the ack at once, with
/// go-plugin's wording, and the session stays usable.
#[tokio::test]
async fn dialling_an_unserved_id_fails_with_the_acks_error() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .multiplex(true)
        .start()
        .await
        .expect("start");
    let err = client
        .broker()
        .dial(4242)
        .await
        .expect_err("nothing serves id 4242");
    let text = err.to_string();
    assert!(text.contains("no listener for id 4242"), "{text}");
    client
        .ping()
        .await
        .expect("the session survives a refused knock");
    kill_cleanly(&mut client, &scratch).await;
}

/// A plugin that does not multiplex fails the start with the typed error
/// (go-plugin's `ErrGRPCBrokerMuxNotSupported`).
#[tokio::test]
async fn a_plugin_without_multiplexing_is_refused() {
    let scratch = Scratch::new();
    let err = builder(mode::EXIT_AFTER_HANDSHAKE, &scratch)
        .multiplex(true)
        .start()
        .await
        .expect_err("the line has no 7th field");
    assert!(
        matches!(
            err,
            Error::InvalidHandshake {
                source: ParseError::MultiplexNotSupported { announced: false },
                ..
            }
        ),
        "{err:?}"
    );
    scratch.assert_plugin_gone();
}

/// Like a Go plugin, a multiplexing plugin waits 5 s for the host's one
/// connection, then gives up and exits (go-plugin: "timed out waiting for
/// connection to be established").
#[tokio::test]
async fn a_multiplexing_plugin_exits_when_no_host_connects() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let socket_dir = tempfile::Builder::new()
        .prefix("rpcplugin-")
        .tempdir_in(crate::support::suite_tmp())
        .expect("socket dir");
    let mut child = tokio::process::Command::new(crate::support::PLUGIN)
        .env_clear()
        .env(rpcplugin_tests::COOKIE_KEY, rpcplugin_tests::COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "1")
        .env("PLUGIN_MULTIPLEX_GRPC", "true")
        .env("PLUGIN_UNIX_SOCKET_DIR", socket_dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the test plugin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).await.expect("handshake line");
    assert!(line.trim_end().ends_with("|true"), "{line:?}");
    // Nobody connects. The plugin must end by itself, well before this.
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the plugin did not give up waiting for its host")
        .expect("wait");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .await
        .expect("stderr");
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("timed out waiting for the host's multiplexed connection"),
        "{stderr}"
    );
}
