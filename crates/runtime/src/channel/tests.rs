//! The channel against a real tonic server on a private unix socket: calls,
//! clones, and what callers see once the connection is gone.

use super::{ChannelError, PluginChannel};
use crate::conn::{self, TlsInfoSlot};
use rpcplugin_kv::MemoryKv;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use rpcplugin_transport::{ListenConfig, Listener};
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
