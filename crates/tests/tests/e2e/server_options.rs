//! The plugin's gRPC server settings (`PluginServer::layer`, `timeout`,
//! `max_decoding_message_size`, `concurrency_limit_per_connection`,
//! `http2_keepalive_*`), each shown taking effect through a real client.

use crate::support::{get, put};
use rpcplugin::{Client, PluginServer, Routes};
use rpcplugin_kv::MemoryKv;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::kv_server::{Kv, KvServer};
use rpcplugin_kv::proto::{Empty, GetRequest, GetResponse, PutRequest};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::service::InterceptorLayer;
use tonic::{Code, Request, Response, Status};

/// KV whose `get("hang")` waits until `release` is notified; counts the
/// calls that reached it.
#[derive(Clone, Default)]
struct GatedKv {
    store: MemoryKv,
    entered: Arc<AtomicUsize>,
    release: Arc<tokio::sync::Notify>,
}

#[tonic::async_trait]
impl Kv for GatedKv {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        if request.get_ref().key == "hang" {
            self.release.notified().await;
            return Ok(Response::new(GetResponse {
                value: "released".into(),
            }));
        }
        self.store.get(request).await
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<Empty>, Status> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        self.store.put(request).await
    }
}

fn server(kv: &GatedKv) -> PluginServer {
    let kv = kv.clone();
    PluginServer::new("SERVER_OPTIONS_TEST", "1")
        .logging(None)
        .version(1, move |_ctx| Routes::new(KvServer::new(kv)))
}

async fn get_status(client: &Client, key: &str) -> Result<Vec<u8>, Status> {
    KvClient::new(client.channel())
        .get(GetRequest { key: key.into() })
        .await
        .map(|r| r.into_inner().value.to_vec())
}

#[tokio::test]
async fn a_layer_sees_the_plugins_own_calls_and_can_refuse_them() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let kv = GatedKv::default();
    let mut client = server(&kv)
        .layer(InterceptorLayer::new(move |req: Request<()>| {
            counter.fetch_add(1, Ordering::SeqCst);
            match req.metadata().get("x-deny") {
                Some(_) => Err(Status::permission_denied("denied by the layer")),
                None => Ok(req),
            }
        }))
        .start_in_process()
        .await
        .expect("in process");
    put(client.channel(), "k", "v").await;
    assert_eq!(seen.load(Ordering::SeqCst), 1, "the layer saw the Put");
    client.ping().await.expect("health");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "go-plugin's own services are not layered"
    );
    let mut denied = Request::new(GetRequest { key: "k".into() });
    denied.metadata_mut().insert("x-deny", "1".parse().unwrap());
    let status = KvClient::new(client.channel())
        .get(denied)
        .await
        .expect_err("refused by the layer");
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    assert_eq!(
        kv.entered.load(Ordering::SeqCst),
        1,
        "the service never saw it"
    );
    client.kill().await.expect("kill");
}

#[tokio::test]
async fn a_message_limit_refuses_larger_requests_with_resource_exhausted() {
    let kv = GatedKv::default();
    let mut client = server(&kv)
        .max_decoding_message_size(1024)
        .start_in_process()
        .await
        .expect("in process");
    put(client.channel(), "small", vec![1u8; 512]).await;
    let status = KvClient::new(client.channel())
        .put(PutRequest {
            key: "large".into(),
            value: vec![2u8; 4096].into(),
        })
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("the limit is: 1024"), "{status}");
    assert_eq!(
        kv.entered.load(Ordering::SeqCst),
        1,
        "the large Put never ran"
    );
    // The connection and the service are fine afterwards.
    assert_eq!(get(client.channel(), "small").await, vec![1u8; 512]);
    client
        .ping()
        .await
        .expect("go-plugin's services keep their own limit");
    client.kill().await.expect("kill");
}

#[tokio::test]
async fn a_server_timeout_cancels_a_slow_call() {
    let kv = GatedKv::default();
    let mut client = server(&kv)
        .timeout(Duration::from_millis(200))
        .start_in_process()
        .await
        .expect("in process");
    let status = get_status(&client, "hang").await.expect_err("timed out");
    assert_eq!(status.code(), Code::Cancelled, "{status}");
    put(client.channel(), "k", "v").await;
    assert_eq!(get(client.channel(), "k").await, b"v");
    client.kill().await.expect("kill");
}

#[tokio::test]
async fn a_concurrency_limit_holds_the_second_call_back() {
    let kv = GatedKv::default();
    let mut client = server(&kv)
        .concurrency_limit_per_connection(1)
        .start_in_process()
        .await
        .expect("in process");
    let first = {
        let channel = client.channel();
        tokio::spawn(async move {
            KvClient::new(channel)
                .get(GetRequest { key: "hang".into() })
                .await
        })
    };
    // The first call holds the one permit once it reached the service.
    while kv.entered.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut second = Request::new(GetRequest { key: "k".into() });
    second.set_timeout(Duration::from_millis(300));
    let status = KvClient::new(client.channel())
        .get(second)
        .await
        .expect_err("held back until its deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert_eq!(kv.entered.load(Ordering::SeqCst), 1, "the second call ran");
    kv.release.notify_one();
    let reply = first.await.expect("task").expect("first call");
    assert_eq!(reply.into_inner().value, "released");
    client.kill().await.expect("kill");
}

/// A bare HTTP/2 client that never answers a PING: a plugin with
/// keep-alive on closes its connection.
#[tokio::test]
async fn server_keepalive_closes_a_connection_that_does_not_answer_pings() {
    let kv = GatedKv::default();
    let debug = server(&kv)
        .http2_keepalive_interval(Duration::from_millis(100))
        .http2_keepalive_timeout(Duration::from_millis(200))
        .start_debug()
        .expect("debug mode");
    let rpcplugin::ReattachAddr { network, string } = debug.reattach_config().addr.clone();
    assert_eq!(network, "unix");
    let mut conn = tokio::net::UnixStream::connect(&string)
        .await
        .expect("connect");
    conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .expect("preface");
    let mut read = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut read)).await;
    assert!(ended.is_ok(), "the plugin kept a silent connection open");
    let mut frames = Vec::new();
    let mut rest = read.as_slice();
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        frames.push(rest[3]);
        rest = &rest[(9 + len).min(rest.len())..];
    }
    assert!(frames.contains(&6), "no PING among the frames {frames:?}");
    debug.stop().await.expect("stopped");
}
