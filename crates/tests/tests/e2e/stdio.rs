//! What the plugin writes to stdout after the handshake reaches the host's
//! stdout sink through `plugin.GRPCStdio`; what it writes to stderr stays
//! its real stderr, which the host relays as logs and copies raw on request.

use crate::support::{Scratch, Sink, builder, kill_cleanly, nonce, put};
use rpcplugin::{ClientTls, KeyType};
use rpcplugin_tests::{keys, mode};

#[tokio::test]
async fn stdout_and_stderr_reach_the_host_sinks() {
    let scratch = Scratch::new();
    let (out, err, raw) = (Sink::new(), Sink::new(), Sink::new());
    let mut client = builder(mode::NORMAL, &scratch)
        .tls(ClientTls::Auto(KeyType::EcP256))
        .stdout(out.clone())
        .stderr(err.clone())
        .raw_stderr(raw.clone())
        .start()
        .await
        .expect("start");

    let out_text = format!("{}\n", nonce("to-stdout"));
    let err_text = format!("{}\n", nonce("to-stderr"));
    put(client.channel(), keys::STDOUT, out_text.clone()).await;
    put(client.channel(), keys::STDERR, err_text.clone()).await;
    assert!(
        out.wait_for(&out_text).await,
        "stdout sink: {:?}",
        out.text()
    );
    assert!(
        raw.wait_for(&err_text).await,
        "raw stderr sink: {:?}",
        raw.text()
    );
    assert!(!out.text().contains(&err_text), "stderr leaked into stdout");
    assert!(!raw.text().contains(&out_text), "stdout leaked into stderr");
    // A Rust plugin's stderr is not sent through GRPCStdio.
    assert!(!err.text().contains(&err_text), "stderr sent twice");

    // More than one 1 KiB chunk, without a trailing newline: arrives whole
    // and in order.
    let big: String = (0..4000).map(|i| format!("line {i:04};")).collect();
    put(client.channel(), keys::STDOUT, big.clone()).await;
    assert!(
        out.wait_for(&big).await,
        "{} bytes on stdout",
        out.text().len()
    );
    assert_eq!(out.text(), format!("{out_text}{big}"));

    kill_cleanly(&mut client, &scratch).await;
}
