//! The channel against a real tonic server on a private unix socket: calls,
//! clones, and what callers see once the connection is gone.

use super::{ChannelError, PluginChannel};
use crate::conn::{self, TlsInfoSlot};
use rpcplugin_kv::MemoryKv;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use rpcplugin_transport::{ListenConfig, Listener};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Wake, Waker};
use std::time::Duration;
use tokio::sync::oneshot;
use tonic::Code;
use tonic::transport::Server;

/// Turns a hang into a test failure; no call here should come near it.
const HANG: Duration = Duration::from_secs(20);

struct Served {
    channel: PluginChannel,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

async fn serve_kv() -> Served {
    let listener = Listener::bind(&ListenConfig::default()).expect("bind");
    let addr = listener.local_addr().clone();
    let incoming = crate::incoming::incoming(listener, None);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        Server::builder()
            .add_service(MemoryKv::default().into_service())
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
    });
    let channel = conn::connect(addr, None, TlsInfoSlot::default(), HANG)
        .await
        .expect("connect");
    Served {
        channel,
        stop,
        server,
    }
}

async fn put(channel: PluginChannel, key: String) -> Result<(), tonic::Status> {
    let request = PutRequest {
        value: key.as_bytes().to_vec().into(),
        key,
    };
    tokio::time::timeout(HANG, KvClient::new(channel).put(request))
        .await
        .expect("the call ended")
        .map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_share_one_connection_and_calls_run_concurrently() {
    let served = serve_kv().await;
    let calls = (0..32).map(|i| put(served.channel.clone(), format!("k{i}")));
    for result in futures::future::join_all(calls).await {
        result.expect("put");
    }
    let mut kv = KvClient::new(served.channel.clone());
    let got = kv
        .get(GetRequest { key: "k31".into() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(&got.value[..], b"k31");
    assert!(!served.channel.is_closed());
    assert!(format!("{:?}", served.channel).contains("closed: false"));
}

#[tokio::test]
async fn a_call_after_the_connection_ended_fails_at_once_as_unavailable() {
    let served = serve_kv().await;
    put(served.channel.clone(), "before".into())
        .await
        .expect("put");
    // The server goes away: GOAWAY, then the socket closes.
    served.stop.send(()).expect("server running");
    served.server.await.expect("server task");
    // Every call from now on fails with the typed cause; none reconnects.
    for _ in 0..3 {
        let status = put(served.channel.clone(), "after".into())
            .await
            .expect_err("no server");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        let cause =
            std::error::Error::source(&status).and_then(|s| s.downcast_ref::<ChannelError>());
        assert!(
            matches!(cause, Some(ChannelError::Closed { .. })),
            "{status:?}"
        );
        assert!(status.message().contains("is closed"), "{status}");
    }
    assert!(served.channel.is_closed());
}

#[tokio::test]
async fn a_refused_dial_is_a_connect_error() {
    let listener = Listener::bind(&ListenConfig::default()).expect("bind");
    let addr = listener.local_addr().clone();
    drop(listener);
    let err = conn::connect(addr, None, TlsInfoSlot::default(), HANG)
        .await
        .expect_err("nobody listens");
    assert!(
        matches!(err, crate::Error::Connect { hint: Some(_), .. }),
        "{err:?}"
    );
}

/// A raw gRPC request: a Get of "key", one message (its bytes happen to be
/// UTF-8, so a `String` body carries them).
fn get_key() -> http::Request<tonic::body::Body> {
    let message = prost::Message::encode_to_vec(&GetRequest { key: "key".into() });
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    framed.extend_from_slice(&message);
    let body = String::from_utf8(framed).expect("UTF-8");
    http::Request::builder()
        .method("POST")
        .uri("/proto.KV/Get")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(body))
        .expect("request")
}

/// Counts its wake-ups.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A unary call's first poll queues its frames and writes them itself
/// (drive.rs). h2 wakes the request stream's sender when that write opens
/// the stream; were that the calling task, it would be woken inside its own
/// poll, which a multi-thread runtime answers by queueing it again and
/// waking another worker. The runtime here is current-thread, so nothing
/// else runs during the poll and every wake counted comes from inside it.
#[tokio::test]
async fn writing_its_request_does_not_wake_the_calling_task() {
    use tower::Service;
    let served = serve_kv().await;
    put(served.channel.clone(), "key".into())
        .await
        .expect("put");
    let mut channel = served.channel.clone();
    let mut call = channel.call(get_key());
    let caller = Arc::new(Counter::default());
    let first = Pin::new(&mut call).poll(&mut Context::from_waker(&Waker::from(caller.clone())));
    assert!(first.is_pending(), "no answer can come during the poll");
    assert_eq!(caller.0.load(SeqCst), 0, "woken from inside its own poll");
    let response = tokio::time::timeout(HANG, call)
        .await
        .expect("the call ended")
        .expect("response");
    assert_eq!(response.status(), http::StatusCode::OK);
}

/// h2 wakes the connection when the last handle of a finished stream is
/// dropped, so that it can forget the stream. That drop is the caller's
/// (tonic drops the response body after its trailers), and the response
/// body makes that poll itself: from a caller outside the workers, the
/// wake-up would cost a worker thread's wake-up after every call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_finished_response_does_not_wake_the_connection_task() {
    use tower::Service;
    let served = serve_kv().await;
    put(served.channel.clone(), "key".into())
        .await
        .expect("put");
    let mut channel = served.channel.clone();
    let response = tokio::time::timeout(HANG, channel.call(get_key()))
        .await
        .expect("the call ended")
        .expect("response");
    let mut body = response.into_body();
    let mut frames = 0;
    while let Some(frame) =
        std::future::poll_fn(|cx| http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx))
            .await
    {
        let frame = frame.expect("frame");
        if let Some(trailers) = frame.trailers_ref() {
            assert_eq!(
                trailers.get("grpc-status").map(|v| v.as_bytes()),
                Some(&b"0"[..])
            );
        }
        frames += 1;
    }
    assert_eq!(frames, 2, "one DATA frame and the trailers");
    // The connection task may still be finishing the poll that read the
    // trailers; a drop meanwhile would rightly hand it the wake-up.
    served.channel.conn.driver.wait_idle();
    let before = served.channel.conn.driver.task_wakes();
    drop(body);
    assert_eq!(served.channel.conn.driver.task_wakes(), before);
}
