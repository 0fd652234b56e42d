//! The broker's raw listener (`Broker::accept`, go-plugin's `Accept`),
//! brokered servers with settings of their own
//! (`Broker::accept_and_serve_with`), dial options
//! (`Broker::dial_with_options`) and configurable timeouts on both sides.

use crate::support::{Scratch, Tls, builder, get, kill_cleanly, nonce, put};
use rpcplugin::DialOptions;
use rpcplugin::{Error, Routes};
use rpcplugin_kv::MemoryKv;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::kv_server::Kv;
use rpcplugin_kv::proto::kv_server::KvServer;
use rpcplugin_kv::proto::{Empty, GetRequest, GetResponse, PutRequest};
use rpcplugin_tests::{BROKER_TIMEOUT_ENV, keys, mode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tonic::service::InterceptorLayer;
use tonic::{Code, Request, Response, Status};

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

/// A KV whose Put never answers; counts the Puts that reached it.
#[derive(Clone, Default)]
struct StuckKv {
    puts: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl Kv for StuckKv {
    async fn get(&self, _: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        Err(Status::not_found("empty"))
    }

    async fn put(&self, _: Request<PutRequest>) -> Result<Response<Empty>, Status> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

/// The host serves a brokered id on a tonic server with a 300 ms request
/// timeout and a Put that never answers; the plugin dials it and Puts. The
/// server's timeout ends the plugin's call as `Cancelled`, which the plugin
/// hands back; without the setting the host's own 20 s deadline would end
/// the call as `DeadlineExceeded` instead.
async fn brokered_server_settings(multiplex: bool) {
    let scratch = Scratch::new();
    let mut client = builder(mode::NORMAL, &scratch)
        .multiplex(multiplex)
        .start()
        .await
        .expect("start");
    let kv = StuckKv::default();
    let id = client.broker().next_id();
    client
        .broker()
        .accept_and_serve_with(
            id,
            Routes::new(KvServer::new(kv.clone())),
            tonic::transport::Server::builder().timeout(Duration::from_millis(300)),
        )
        .await
        .expect("serve");
    let mut request = Request::new(PutRequest {
        key: format!("{}{id}", keys::BROKER_DIAL_PREFIX),
        value: "stuck".into(),
    });
    request.set_timeout(Duration::from_secs(20));
    let status = KvClient::new(client.channel())
        .put(request)
        .await
        .expect_err("the brokered Put cannot succeed");
    assert_eq!(
        status.code(),
        Code::Cancelled,
        "the brokered server's timeout ended it: {status}"
    );
    assert_eq!(
        kv.puts.load(Ordering::SeqCst),
        1,
        "the Put reached the server"
    );
    kill_cleanly(&mut client, &scratch).await;
}

#[tokio::test]
async fn a_brokered_server_takes_its_own_settings() {
    brokered_server_settings(false).await;
}

#[tokio::test]
async fn a_multiplexed_brokered_server_takes_its_own_settings() {
    brokered_server_settings(true).await;
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
