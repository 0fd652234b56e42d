//! Transport × TLS matrix: start, Put/Get, health, TLS parameters, clean
//! exit, nothing left behind.

use crate::support::{Scratch, Tls, builder, get, kill_cleanly, nonce, put};
use rpcplugin::KeyType::{EcP256, EcP384, EcP521, Rsa2048};
use rpcplugin_tests::{TRANSPORT_ENV, mode};

async fn exchange(transport: &str, tls: Tls) {
    let scratch = Scratch::new();
    let (builder, peer_key_type) = tls.apply(
        builder(mode::NORMAL, &scratch).env(TRANSPORT_ENV, transport),
        &scratch,
    );
    let started = tokio::time::Instant::now();
    let mut client = builder.start().await.expect("start");
    eprintln!("start: {:?}", started.elapsed());

    assert_eq!(client.addr().network().to_string(), transport);
    assert_eq!(client.protocol_version(), 1);
    assert_eq!(client.pid(), Some(scratch.report().pid));

    let value = nonce("value");
    put(client.channel(), "hello", value.clone()).await;
    assert_eq!(get(client.channel(), "hello").await, value.as_bytes());
    client.ping().await.expect("ping");

    match (peer_key_type, client.tls_info()) {
        (None, None) => {}
        (Some(expected), Some(info)) => {
            assert_eq!(info.version, "TLSv1_3", "{info:?}");
            assert!(info.cipher.starts_with("TLS13_"), "{info:?}");
            assert_eq!(info.peer_key_type, Some(expected), "{info:?}");
        }
        (expected, info) => panic!("TLS expected with {expected:?}, got {info:?}"),
    }
    kill_cleanly(&mut client, &scratch).await;
}

macro_rules! matrix {
    ($($name:ident: $transport:literal, $tls:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            exchange($transport, $tls).await;
        }
    )*};
}

matrix! {
    unix_tls_off: "unix", Tls::Off;
    tcp_tls_off: "tcp", Tls::Off;
    unix_auto_host_p256_plugin_p521: "unix", Tls::Auto { host: EcP256, plugin: EcP521 };
    tcp_auto_host_p256_plugin_p256: "tcp", Tls::Auto { host: EcP256, plugin: EcP256 };
    unix_auto_host_p384_plugin_rsa2048: "unix", Tls::Auto { host: EcP384, plugin: Rsa2048 };
    tcp_auto_host_p384_plugin_p384: "tcp", Tls::Auto { host: EcP384, plugin: EcP384 };
    unix_auto_host_p521_plugin_p384: "unix", Tls::Auto { host: EcP521, plugin: EcP384 };
    tcp_auto_host_p521_plugin_p521: "tcp", Tls::Auto { host: EcP521, plugin: EcP521 };
    unix_auto_host_rsa2048_plugin_p256: "unix", Tls::Auto { host: Rsa2048, plugin: EcP256 };
    tcp_auto_host_rsa2048_plugin_rsa2048: "tcp", Tls::Auto { host: Rsa2048, plugin: Rsa2048 };
    unix_manual_ca_p256_host_p384_plugin_p256: "unix", Tls::Manual { ca: EcP256, host: EcP384, plugin: EcP256 };
    tcp_manual_ca_p384_host_rsa2048_plugin_p521: "tcp", Tls::Manual { ca: EcP384, host: Rsa2048, plugin: EcP521 };
}
