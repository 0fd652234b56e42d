//! The plugin's `tracing` events cross the process boundary as hclog JSON
//! and come out on the host as `rpcplugin::plugin` events of the same level.

use crate::support::{
    Scratch, builder, capture_plugin_logs, kill_cleanly, nonce, plugin_log_seen, put,
    wait_for_plugin_log,
};
use rpcplugin_kv::proto::PutRequest;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_tests::{keys, mode};
use tracing::Level;

#[tokio::test]
async fn plugin_logs_arrive_at_their_level() {
    capture_plugin_logs();
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .start()
        .await
        .expect("start");
    for (key, level) in [
        (keys::LOG_WARN, Level::WARN),
        (keys::LOG_ERROR, Level::ERROR),
        (keys::LOG_INFO, Level::INFO),
    ] {
        let message = nonce(key);
        put(client.channel(), key, message.clone()).await;
        let log = wait_for_plugin_log(&message)
            .await
            .unwrap_or_else(|| panic!("no host event for {key}"));
        assert_eq!(log.level, level, "{log:?}");
        assert_eq!(log.message, message, "{log:?}");
        assert_eq!(log.plugin, "rpcplugin-test-plugin", "{log:?}");
        assert!(log.fields.contains("@module=plugin"), "{log:?}");
        if key == keys::LOG_WARN {
            assert!(log.fields.contains("source=e2e"), "{log:?}");
        }
    }
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn a_10mb_log_line_does_not_stop_the_relay() {
    capture_plugin_logs();
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .start()
        .await
        .expect("start");
    let message = nonce("after-the-huge-line");
    put(client.channel(), keys::LOG_HUGE, message.clone()).await;
    let log = wait_for_plugin_log(&message)
        .await
        .expect("the log after the 10 MB line");
    assert_eq!(log.level, Level::WARN, "{log:?}");
    client.ping().await.expect("ping");
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn a_fatal_runtime_message_reaches_the_host_log_as_an_error() {
    capture_plugin_logs();
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .start()
        .await
        .expect("start");
    let exited = client.exited();
    // Rust writes "memory allocation of N bytes failed" to fd 2, then aborts.
    let failed = KvClient::new(client.channel())
        .put(PutRequest {
            key: keys::ALLOC_FAILURE.into(),
            value: Vec::new().into(),
        })
        .await;
    assert!(failed.is_err(), "the call that killed the plugin");
    let log = wait_for_plugin_log("memory allocation of 1099511627776 bytes failed")
        .await
        .expect("the dying plugin's last words in the host log");
    assert_eq!(log.level, Level::ERROR, "{log:?}");
    assert_eq!(exited.await.to_string(), "killed by signal 6");
    assert!(
        client.stderr_tail().contains("memory allocation of"),
        "{}",
        client.stderr_tail()
    );
    client.kill().await.expect("kill");
    scratch.assert_plugin_gone();
}

#[tokio::test]
async fn a_panic_reaches_the_host_log_as_an_error() {
    capture_plugin_logs();
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .start()
        .await
        .expect("start");
    let message = nonce("deliberate-panic");
    let failed = KvClient::new(client.channel())
        .put(PutRequest {
            key: keys::PANIC.into(),
            value: message.clone().into_bytes().into(),
        })
        .await;
    assert!(failed.is_err(), "the call that panicked");
    let log = wait_for_plugin_log(&message)
        .await
        .expect("the panic in the host log");
    // One hclog JSON line at error level, which every go-plugin host keeps.
    assert_eq!(log.level, Level::ERROR, "{log:?}");
    assert!(log.message.starts_with("panic: "), "{log:?}");
    client.ping().await.expect("still serving after the panic");
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn rust_log_directives_filter_the_plugin_logs() {
    let scratch = Scratch::new();
    let mut client = start_with_rust_log(&scratch, "info,rpcplugin_test_plugin=warn").await;
    let dropped = nonce(keys::LOG_INFO);
    put(client.channel(), keys::LOG_INFO, dropped.clone()).await;
    let kept = nonce(keys::LOG_WARN);
    put(client.channel(), keys::LOG_WARN, kept.clone()).await;
    let log = wait_for_plugin_log(&kept).await.expect("the warning");
    assert_eq!(log.level, Level::WARN, "{log:?}");
    // Plugin stderr is relayed in order: the info event, written before
    // the warning, would have arrived by now.
    assert!(
        plugin_log_seen(&dropped).is_none(),
        "an info event passed RUST_LOG's warn directive"
    );
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn a_rust_log_it_cannot_parse_is_reported_and_the_default_used() {
    let scratch = Scratch::new();
    let mut client = start_with_rust_log(&scratch, "info,kv=loud").await;
    let log = wait_for_plugin_log("RUST_LOG not understood")
        .await
        .expect("the warning about RUST_LOG");
    assert_eq!(log.level, Level::WARN, "{log:?}");
    assert!(log.fields.contains("info,kv=loud"), "{log:?}");
    let message = nonce(keys::LOG_INFO);
    put(client.channel(), keys::LOG_INFO, message.clone()).await;
    assert!(
        wait_for_plugin_log(&message).await.is_some(),
        "default filter"
    );
    kill_cleanly(&mut client, &scratch).await;
}

/// A plugin started with `RUST_LOG` set to `value`, its logs captured.
async fn start_with_rust_log(scratch: &Scratch, value: &str) -> rpcplugin::Client {
    capture_plugin_logs();
    builder(mode::NORMAL, scratch)
        .env("RUST_LOG", value)
        .start()
        .await
        .expect("start")
}
