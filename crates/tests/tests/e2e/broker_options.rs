//! The broker's raw listener (`Broker::accept`, go-plugin's `Accept`),
//! dial options (`Broker::dial_with_options`) and configurable timeouts on
//! both sides.

use crate::support::{Scratch, Tls, builder, get, kill_cleanly, nonce, put};
use rpcplugin::DialOptions;
use rpcplugin::{Error, Routes};
use rpcplugin_kv::MemoryKv;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::kv_server::Kv;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use rpcplugin_tests::{BROKER_TIMEOUT_ENV, keys, mode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tonic::Code;
use tonic::service::InterceptorLayer;

/// The host accepts a brokered id on a raw listener and serves it with a
/// tonic server of its own (here with a layer that counts calls); the
/// plugin dials it.
async fn raw_listener(tls: Tls) {
    let scratch = Scratch::new();
    let (builder, _) = tls.apply(builder(mode::NORMAL, &scratch), &scratch);
    let mut client = builder.start().await.expect("start");
    let id = client.broker().next_id();
    let listener = client.broker().accept(id).await.expect("accept");
    assert!(matches!(
        listener.local_addr(),
        rpcplugin::Addr::Unix(path) if path.exists()
    ));
    let store = MemoryKv::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(InterceptorLayer::new(move |req| {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(req)
            }))
            .add_routes(Routes::new(store.clone().into_service()))
            .serve_with_incoming(listener),
    );
    let message = nonce("via-raw-listener");
    put(
        client.channel(),
        &format!("{}{id}", keys::BROKER_DIAL_PREFIX),
        message.clone(),
    )
    .await;
    let stored = store
        .get(tonic::Request::new(GetRequest {
            key: keys::FROM_PLUGIN.into(),
        }))
        .await
        .expect("the plugin wrote into the host's own server");
    assert_eq!(stored.into_inner().value, message.as_bytes());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "served by the host's server"
    );
    server.abort();
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn a_raw_broker_listener_automtls() {
    raw_listener(Tls::Auto {
        host: rpcplugin::KeyType::EcP256,
        plugin: rpcplugin::KeyType::EcP256,
    })
    .await;
}

#[tokio::test]
async fn a_raw_broker_listener_plaintext() {
    raw_listener(Tls::Off).await;
}

#[tokio::test]
async fn dial_options_set_the_channel_of_a_brokered_connection() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .start()
        .await
        .expect("start");
    let id: u32 = String::from_utf8(get(client.channel(), keys::SERVE_BROKER).await)
        .expect("utf-8")
        .parse()
        .expect("an id");
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let options = DialOptions::new()
        .connect_timeout(Duration::from_secs(30))
        .max_decoding_message_size(16)
        .interceptor(move |req| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(req)
        });
    let channel = client
        .broker()
        .dial_with_options(id, &options)
        .await
        .expect("dial");
    let status = KvClient::new(channel.clone())
        .get(GetRequest {
            key: keys::BROKERED_GREETING.into(),
        })
        .await
        .expect_err("the greeting is longer than 16 bytes");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    KvClient::new(channel)
        .put(PutRequest {
            key: "short".into(),
            value: "ok".into(),
        })
        .await
        .expect("a short exchange passes");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "the interceptor saw both calls"
    );
    kill_cleanly(&mut client, &scratch).await;
}

fn broker_timeout(err: &Error) -> Duration {
    match err {
        Error::BrokerTimeout { timeout, .. } => *timeout,
        other => panic!("expected a broker timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn broker_timeouts_are_configurable_on_both_sides() {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .env(BROKER_TIMEOUT_ENV, "250")
        .broker_timeout(Duration::from_millis(300))
        .start()
        .await
        .expect("start");
    // Host side: the builder's timeout, then a dial's own.
    let err = client
        .broker()
        .dial(4242)
        .await
        .expect_err("never announced");
    assert_eq!(broker_timeout(&err), Duration::from_millis(300), "{err}");
    let options = DialOptions::new().connect_timeout(Duration::from_millis(200));
    let err = client
        .broker()
        .dial_with_options(4243, &options)
        .await
        .expect_err("never announced");
    assert_eq!(broker_timeout(&err), Duration::from_millis(200), "{err}");
    // Plugin side: PluginServer::broker_timeout.
    let status = KvClient::new(client.channel())
        .put(PutRequest {
            key: format!("{}4244", keys::BROKER_DIAL_PREFIX),
            value: "x".into(),
        })
        .await
        .expect_err("the host never announced 4244");
    assert!(status.message().contains("within 250ms"), "{status}");
    kill_cleanly(&mut client, &scratch).await;
}
