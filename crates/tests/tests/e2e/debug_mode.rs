//! Debug (reattach) mode keeps the process's stdio: `start_debug` neither
//! redirects fd 1 into `plugin.GRPCStdio` nor touches fd 0 or fd 2, before,
//! while and after serving, and its caller can stop it.

use crate::support::{get, put};
use rpcplugin::{Client, ClientTls, PluginServer, Routes};
use rpcplugin_kv::MemoryKv;
use std::os::unix::fs::MetadataExt;

/// Device and inode of what fds 0, 1 and 2 point at.
fn stdio_ids() -> Vec<(u64, u64)> {
    (0..3)
        .map(|fd| {
            let meta = std::fs::metadata(format!("/proc/self/fd/{fd}")).expect("fd open");
            (meta.dev(), meta.ino())
        })
        .collect()
}

#[tokio::test]
async fn debug_mode_keeps_stdio_and_stops_when_asked() {
    let before = stdio_ids();
    let debug = PluginServer::new("DEBUG_MODE_TEST", "1")
        .logging(None)
        .version(1, |_ctx| Routes::new(MemoryKv::default().into_service()))
        .start_debug()
        .expect("debug mode");
    assert_eq!(stdio_ids(), before, "start_debug touched stdio");
    let config = debug.reattach_config().clone();
    let mut client = Client::reattach(&config, ClientTls::Disabled)
        .await
        .expect("reattach");
    put(client.channel(), "k", "v").await;
    assert_eq!(get(client.channel(), "k").await, b"v");
    assert_eq!(stdio_ids(), before, "serving touched stdio");
    client.kill().await.expect("kill");
    debug.stop().await.expect("stopped cleanly");
    assert_eq!(stdio_ids(), before, "stopping touched stdio");
    assert!(
        !std::path::Path::new(&config.addr.string).exists(),
        "socket {} left behind",
        config.addr.string
    );
    assert!(
        Client::reattach(&config, ClientTls::Disabled)
            .await
            .is_err(),
        "still served after stop"
    );
}
