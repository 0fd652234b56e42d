//! The in-process harness (`PluginServer::start_in_process`) and debug mode
//! with a handle (`PluginServer::start_debug`): a plugin's services tested
//! through a real client, no binary spawned.

use crate::support::{get, put};
use rpcplugin::{Client, ClientTls, PluginExit, PluginServer, Routes};
use rpcplugin_kv::MemoryKv;
use std::time::Duration;

/// Logging off: the e2e suite owns this process's global subscriber.
fn kv_server() -> PluginServer {
    PluginServer::new("IN_PROCESS_TEST", "1")
        .logging(None)
        .version(1, |_ctx| Routes::new(MemoryKv::default().into_service()))
        .version(2, |_ctx| Routes::new(MemoryKv::default().into_service()))
}

#[tokio::test]
async fn a_plugin_served_in_process_answers_a_real_client() {
    let mut client = kv_server().start_in_process().await.expect("in process");
    assert_eq!(client.protocol_version(), 2, "the highest version offered");
    let info = client.tls_info().expect("AutoMTLS, as a launched plugin");
    assert_eq!(info.version, "TLSv1_3");
    client.ping().await.expect("health");
    put(client.channel(), "k", "v").await;
    assert_eq!(get(client.channel(), "k").await, b"v");
    assert_eq!(client.exit(), None);
    // Kill makes the Shutdown call; the server task ends.
    client.kill().await.expect("kill");
    assert_eq!(client.exit(), Some(PluginExit::Stopped));
    assert!(client.ping().await.is_err(), "served after kill");
}

#[tokio::test]
async fn dropping_an_in_process_client_stops_its_server() {
    let client = kv_server().start_in_process().await.expect("in process");
    let addr = client.addr().clone();
    let exited = client.exited();
    drop(client);
    let exit = tokio::time::timeout(Duration::from_secs(30), exited)
        .await
        .expect("the server stopped");
    assert_eq!(exit, PluginExit::Stopped);
    if let rpcplugin::Addr::Unix(path) = addr {
        assert!(!path.exists(), "socket {path:?} left behind");
    }
}

#[tokio::test]
async fn debug_mode_can_be_stopped_by_its_caller() {
    let debug = kv_server().start_debug().expect("debug mode");
    let config = debug.reattach_config().clone();
    let mut client = Client::reattach(&config, ClientTls::Disabled)
        .await
        .expect("reattach");
    put(client.channel(), "k", "v").await;
    // A test reattach: kill leaves the plugin to its owner.
    client.kill().await.expect("kill");
    assert_eq!(get(client.channel(), "k").await, b"v", "still serving");
    debug.stop().await.expect("stopped cleanly");
    assert!(client.ping().await.is_err(), "served after stop");
}
