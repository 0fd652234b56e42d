//! The host's channel settings (`ClientBuilder::timeout`,
//! `max_decoding_message_size`, `interceptor`, `http2_keep_alive_interval`)
//! against the launched test plugin, and tower layers around the channel.

use crate::support::{Scratch, builder, get, kill_cleanly, put};
use rpcplugin::ChannelError;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use rpcplugin_tests::{keys, mode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tonic::{Code, Request, Status};

#[tokio::test]
async fn a_host_timeout_ends_a_call_the_plugin_never_answers() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        // Long enough for the other calls (and the start's health check)
        // on a loaded machine.
        .timeout(Duration::from_millis(1500))
        .start()
        .await
        .expect("start");
    let status = KvClient::new(client.channel())
        .put(PutRequest {
            key: keys::HANG.into(),
            value: Vec::new().into(),
        })
        .await
        .expect_err("the call hangs");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    // A call's own deadline wins over the default.
    let mut own = Request::new(GetRequest { key: "k".into() });
    own.set_timeout(Duration::from_secs(30));
    put(client.channel(), "k", "v").await;
    let value = KvClient::new(client.channel()).get(own).await.expect("get");
    assert_eq!(value.into_inner().value, "v");
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn a_host_message_limit_refuses_larger_responses_with_resource_exhausted() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .max_decoding_message_size(64 << 10)
        .start()
        .await
        .expect("start");
    // Requests are not limited by it: the plugin stores 1 MiB.
    put(client.channel(), "large", vec![7u8; 1 << 20]).await;
    put(client.channel(), "small", vec![1u8; 1 << 10]).await;
    let status = KvClient::new(client.channel())
        .max_decoding_message_size(rpcplugin::MAX_MESSAGE_SIZE)
        .get(GetRequest {
            key: "large".into(),
        })
        .await
        .expect_err("over the channel's limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("the limit is: 65536"), "{status}");
    assert_eq!(get(client.channel(), "small").await, vec![1u8; 1 << 10]);
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn a_host_interceptor_sees_each_call_and_can_refuse_it() {
    let scratch = Scratch::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let mut client = builder(mode::NORMAL, &scratch)
        .interceptor(move |req: Request<()>| {
            counter.fetch_add(1, Ordering::SeqCst);
            match req.metadata().get("x-deny") {
                Some(_) => Err(Status::permission_denied("refused on the host")),
                None => Ok(req),
            }
        })
        .start()
        .await
        .expect("start");
    let at_start = seen.load(Ordering::SeqCst);
    assert_eq!(at_start, 1, "the start's health call went through it");
    put(client.channel(), "k", "v").await;
    assert_eq!(seen.load(Ordering::SeqCst), at_start + 1);
    let mut denied = Request::new(PutRequest {
        key: "k".into(),
        value: "overwritten".into(),
    });
    denied.metadata_mut().insert("x-deny", "1".parse().unwrap());
    let status = KvClient::new(client.channel())
        .put(denied)
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    assert_eq!(get(client.channel(), "k").await, b"v", "the Put never left");
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn a_tower_layer_around_the_channel_sees_each_call() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .start()
        .await
        .expect("start");
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let layered = tower::ServiceBuilder::new()
        .map_request(move |req: http::Request<tonic::body::Body>| {
            counter.fetch_add(1, Ordering::SeqCst);
            req
        })
        .service(client.channel());
    let mut kv = KvClient::new(layered);
    kv.put(PutRequest {
        key: "k".into(),
        value: "v".into(),
    })
    .await
    .expect("put");
    let value = kv.get(GetRequest { key: "k".into() }).await.expect("get");
    assert_eq!(value.into_inner().value, "v");
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    kill_cleanly(&mut client, &scratch).await;
}

/// A stopped plugin (SIGSTOP) keeps its socket open: only keep-alive
/// notices that it no longer answers.
#[tokio::test]
async fn host_keepalive_closes_the_connection_to_a_stopped_plugin() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .http2_keep_alive_interval(Duration::from_millis(200))
        .keep_alive_timeout(Duration::from_secs(1))
        .start()
        .await
        .expect("start");
    put(client.channel(), "k", "v").await;
    let pid = scratch.report().pid.to_string();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    let channel = client.channel();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !channel.is_closed() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal("-CONT");
    assert!(
        channel.is_closed(),
        "keep-alive did not close the connection"
    );
    let status = KvClient::new(channel)
        .get(GetRequest { key: "k".into() })
        .await
        .expect_err("closed");
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    let cause = std::error::Error::source(&status).and_then(|s| s.downcast_ref::<ChannelError>());
    assert!(
        matches!(cause, Some(ChannelError::KeepaliveTimeout { .. })),
        "{status}"
    );
    // The plugin still runs: kill falls back to signals.
    client.kill().await.expect("kill");
    scratch.assert_plugin_gone();
}
