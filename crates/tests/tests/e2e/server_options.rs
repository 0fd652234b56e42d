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
        // Long enough for the other calls on a loaded machine.
        .timeout(Duration::from_millis(1500))
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

/// HTTP/2 frame types.
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;

/// Connects a bare HTTP/2 client (preface and an empty SETTINGS, then
/// nothing: no SETTINGS ack, no PING answer) to `server` in debug mode and
/// returns the frames (type, payload) the server sends until it closes the
/// connection or `enough` holds (at most 30 s), and whether it closed it.
async fn bare_client_frames(
    server: PluginServer,
    enough: impl Fn(&[(u8, Vec<u8>)]) -> bool,
) -> (Vec<(u8, Vec<u8>)>, bool) {
    let debug = server.start_debug().expect("debug mode");
    let addr = debug.reattach_config().addr.clone();
    assert_eq!(addr.network, "unix");
    let mut conn = tokio::net::UnixStream::connect(&addr.string)
        .await
        .expect("connect");
    conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .expect("preface");
    let mut frames = Vec::new();
    let mut buf = Vec::new();
    let reading = async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = conn.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return true;
            }
            buf.extend_from_slice(&chunk[..n]);
            while buf.len() >= 9 {
                let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
                if buf.len() < 9 + len {
                    break;
                }
                frames.push((buf[3], buf[9..9 + len].to_vec()));
                buf.drain(..9 + len);
            }
            if enough(&frames) {
                return false;
            }
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .unwrap_or(false);
    debug.stop().await.expect("stopped");
    (frames, closed)
}

/// The value of one setting in a SETTINGS payload.
fn setting(payload: &[u8], id: u16) -> Option<u32> {
    payload.chunks_exact(6).find_map(|entry| {
        (u16::from_be_bytes([entry[0], entry[1]]) == id)
            .then(|| u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]))
    })
}

#[tokio::test]
async fn max_concurrent_streams_is_announced_in_the_plugins_settings() {
    let server = server(&GatedKv::default()).max_concurrent_streams(3);
    let (frames, _) = bare_client_frames(server, |f| f.iter().any(|(t, _)| *t == SETTINGS)).await;
    let settings = frames
        .iter()
        .find(|(t, _)| *t == SETTINGS)
        .expect("the server's SETTINGS");
    // SETTINGS_MAX_CONCURRENT_STREAMS is setting 0x3.
    assert_eq!(setting(&settings.1, 0x3), Some(3), "{frames:?}");
}

/// A bare client that never answers a PING: a plugin with keep-alive on
/// closes its connection.
#[tokio::test]
async fn server_keepalive_closes_a_connection_that_does_not_answer_pings() {
    let server = server(&GatedKv::default())
        .http2_keepalive_interval(Duration::from_millis(100))
        .http2_keepalive_timeout(Duration::from_millis(200));
    let (frames, closed) = bare_client_frames(server, |_| false).await;
    let types: Vec<u8> = frames.iter().map(|(t, _)| *t).collect();
    assert!(types.contains(&PING), "no PING among the frames {types:?}");
    assert!(closed, "the plugin kept a silent connection open");
}

#[tokio::test]
async fn max_connection_age_sends_goaway() {
    let server = server(&GatedKv::default()).max_connection_age(Duration::from_millis(200));
    let (frames, _) = bare_client_frames(server, |f| f.iter().any(|(t, _)| *t == GOAWAY)).await;
    let types: Vec<u8> = frames.iter().map(|(t, _)| *t).collect();
    assert!(
        types.contains(&GOAWAY),
        "no GOAWAY among the frames {types:?}"
    );
}
