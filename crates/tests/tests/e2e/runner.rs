//! A plugin started through a runner (`Runner::private_tmp`: its own user
//! and mount namespaces with a private `/tmp`, via `unshare`), which only
//! multiplexing makes fully usable: the host reaches the plugin's one
//! socket through a translated address, and the plugin cannot see any
//! socket of the host's.

use crate::support::{
    PLUGIN, Scratch, builder_for, host_dials_plugin, host_serves, nonce, plugin_dials_host,
};
use rpcplugin::Addr;
use rpcplugin::Runner;
use rpcplugin_kv::proto::PutRequest;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_tests::{keys, mode};
use std::path::Path;

/// Whether this machine lets an unprivileged process make user and mount
/// namespaces (the runner's requirement).
fn namespaces_allowed() -> bool {
    let allowed = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--", "true"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !allowed {
        eprintln!(
            "SKIPPED: `unshare --user --map-root-user --mount` is not allowed here \
             (no unprivileged user namespaces); Runner::private_tmp cannot run"
        );
    }
    allowed
}

/// The plugin announced a path in its private `/tmp`; the host dials it
/// through `/proc/PID/root`.
fn assert_translated(client: &rpcplugin::Client) {
    let pid = client.pid().expect("a launched plugin");
    let announced = client
        .handshake()
        .map(|hs| hs.address.clone())
        .expect("a handshake");
    assert!(
        !Path::new(&announced).exists(),
        "the plugin's socket {announced} is visible to the host: no private /tmp"
    );
    let Addr::Unix(dialled) = client.addr() else {
        panic!("a unix socket was expected, got {}", client.addr());
    };
    assert!(
        dialled.starts_with(format!("/proc/{pid}/root")),
        "{dialled:?}"
    );
}

/// Starts the test plugin through `Runner::private_tmp`, from a copy in
/// the scratch dir: an executable under `/tmp` (a checkout there, as CI
/// makes) must start although the runner hides `/tmp`.
async fn start(scratch: &Scratch, multiplex: bool) -> rpcplugin::Client {
    let program = scratch.path().join("rpcplugin-test-plugin");
    std::fs::copy(PLUGIN, &program).expect("copy the test plugin");
    assert!(program.starts_with(std::env::temp_dir()));
    let client = builder_for(&program, mode::NORMAL, scratch)
        .runner(Runner::private_tmp())
        .multiplex(multiplex)
        .start()
        .await
        .expect("start through the runner");
    assert_translated(&client);
    client
}

async fn stop(mut client: rpcplugin::Client) {
    let pid = client.pid().expect("a launched plugin");
    let status = client.kill().await.expect("kill").expect("an exit status");
    assert!(status.success(), "{status}: {}", client.stderr_tail());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "plugin {pid} still there"
    );
}

#[tokio::test]
async fn multiplexing_carries_brokered_calls_out_of_a_private_namespace() {
    if !namespaces_allowed() {
        return;
    }
    let scratch = Scratch::new();
    let client = start(&scratch, true).await;
    host_dials_plugin(&client).await;
    let (id, host_store) = host_serves(&client).await;
    plugin_dials_host(&client, id, &host_store).await;
    stop(client).await;
}

#[tokio::test]
async fn without_multiplexing_the_plugin_cannot_reach_the_hosts_broker() {
    if !namespaces_allowed() {
        return;
    }
    let scratch = Scratch::new();
    let client = start(&scratch, false).await;
    // The main connection works through the translated address ...
    client.ping().await.expect("ping");
    // ... but the host's brokered socket is in the host's /tmp, which the
    // plugin cannot see.
    let (id, _host_store) = host_serves(&client).await;
    let refused = KvClient::new(client.channel())
        .put(PutRequest {
            key: format!("{}{id}", keys::BROKER_DIAL_PREFIX),
            value: nonce("unreachable").into_bytes().into(),
        })
        .await
        .expect_err("the plugin reached a socket in the host's /tmp");
    // Its dial finds no such socket where the host's broker said.
    assert!(
        refused.message().contains("No such file or directory"),
        "{}",
        refused.message()
    );
    stop(client).await;
}
