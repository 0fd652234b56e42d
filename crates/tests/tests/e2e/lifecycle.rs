//! Stopping, health, crashes and large messages.

use crate::support::{Scratch, builder, get, kill_cleanly, nonce, put};
use rpcplugin::{ClientTls, Error, KeyType};
use rpcplugin_kv::proto::PutRequest;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_tests::{keys, mode};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test]
async fn kill_lets_the_plugin_exit_by_itself() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .start()
        .await
        .expect("start");
    client.ping().await.expect("ping");
    // kill_cleanly: exit status 0 (so not SIGKILL), quickly, nothing left.
    let took = kill_cleanly(&mut client, &scratch).await;
    assert!(took < Duration::from_secs(1), "kill took {took:?}");
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
    let started = Instant::now();
    let status = client.kill().await.expect("kill").expect("exit status");
    assert_eq!(status.code(), Some(7), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
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
    drop(client);
    // Drop cannot wait: it sends SIGKILL and tokio reaps the child in the
    // background. Nothing signals the reaping, so look every few ms.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !scratch.leftovers().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
