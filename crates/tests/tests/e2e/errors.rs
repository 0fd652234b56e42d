//! What a host's user reads when a call goes wrong: a call the plugin does
//! not serve names its service and method.

use rpcplugin::{Error, PluginServer, Routes};
use rpcplugin_kv::MemoryKv;
use rpcplugin_kv::proto::Empty;
use tonic::codegen::http::uri::PathAndQuery;

/// Calls `path` with an empty message on an in-process KV plugin.
async fn call(path: &'static str) -> tonic::Status {
    let mut client = PluginServer::new("ERRORS_TEST", "1")
        .logging(None)
        .version(1, |_ctx| Routes::new(MemoryKv::default().into_service()))
        .start_in_process()
        .await
        .expect("in process");
    let mut grpc = tonic::client::Grpc::new(client.channel());
    grpc.ready().await.expect("ready");
    let codec = rpcplugin::tonic_prost::ProstCodec::<Empty, Empty>::default();
    let status = grpc
        .unary(
            tonic::Request::new(Empty {}),
            PathAndQuery::from_static(path),
            codec,
        )
        .await
        .expect_err("the plugin does not serve it");
    client.kill().await.expect("kill");
    status
}

#[tokio::test]
async fn an_unknown_method_is_named_in_the_status() {
    let status = call("/proto.KV/Delete").await;
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert_eq!(
        status.message(),
        "the plugin does not implement method Delete of service proto.KV"
    );
    // And in the host's error, which says what failed.
    let err = Error::from(status);
    assert!(
        err.to_string()
            .contains("does not implement method Delete of service proto.KV"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unknown_service_is_named_in_the_status() {
    let status = call("/greeter.Greeter/SayHello").await;
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert!(
        status
            .message()
            .contains("method SayHello of service greeter.Greeter"),
        "{status:?}"
    );
}
