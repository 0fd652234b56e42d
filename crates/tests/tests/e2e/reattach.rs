//! Debug mode and reattach: the test starts the plugin itself, reads the
//! reattach configuration it prints, and connects with `Client::reattach`.

use crate::support::{PLUGIN, Pki, Scratch, get, nonce, put};
use rpcplugin::ReattachConfig;
use rpcplugin::{Client, ClientTls, Error, Identity, KeyType, PeerTrust};
use rpcplugin_tests::mode;
use rpcplugin_tests::{MODE_ENV, REPORT_ENV, TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV, TRANSPORT_ENV};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

fn client_tls(pki: Option<&Pki>) -> ClientTls {
    match pki {
        None => ClientTls::Disabled,
        Some(pki) => ClientTls::Manual {
            identity: Identity::from_files(&pki.host_cert, &pki.host_key).expect("identity"),
            server_trust: PeerTrust::Roots(
                rpcplugin::parse_certs_pem(&std::fs::read(&pki.ca_cert).expect("CA"))
                    .expect("CA PEM"),
            ),
        },
    }
}

async fn reattach(transport: &str, manual_tls: bool) {
    let scratch = Scratch::new();
    let pki = manual_tls.then(|| {
        Pki::generate(
            scratch.path(),
            KeyType::EcP256,
            KeyType::EcP256,
            KeyType::EcP384,
        )
    });
    let mut command = tokio::process::Command::new(PLUGIN);
    command
        .env_clear()
        .env(MODE_ENV, mode::DEBUG)
        .env(REPORT_ENV, scratch.report_path())
        .env(TRANSPORT_ENV, transport)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(pki) = &pki {
        command
            .env(TLS_CERT_ENV, &pki.plugin_cert)
            .env(TLS_KEY_ENV, &pki.plugin_key)
            .env(TLS_CA_ENV, &pki.ca_cert);
    }
    let mut child = command.spawn().expect("spawn the plugin in debug mode");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .expect("reattach line in time")
        .expect("read stdout")
        .expect("a reattach line");
    let config: ReattachConfig = serde_json::from_str(&line).expect("reattach JSON");
    assert_eq!(Some(config.pid), child.id());
    assert_eq!(config.protocol, "grpc");
    assert_eq!(config.protocol_version, 1);
    assert_eq!(config.addr.network, transport);
    assert!(config.test, "debug mode announces Test: true");

    // Like a debugger session (Test: true): kill leaves the plugin running.
    let key = nonce("reattached");
    let mut observer = Client::reattach(&config, client_tls(pki.as_ref()))
        .await
        .expect("reattach");
    put(observer.channel(), "key", key.clone()).await;
    assert_eq!(get(observer.channel(), "key").await, key.as_bytes());
    observer.ping().await.expect("ping");
    assert_eq!(observer.kill().await.expect("kill"), None);
    drop(observer);
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "plugin stopped"
    );

    // A managing host (Test: false) stops it.
    let managed = ReattachConfig {
        test: false,
        ..config.clone()
    };
    let mut client = Client::reattach(&managed, client_tls(pki.as_ref()))
        .await
        .expect("reattach again");
    assert_eq!(
        get(client.channel(), "key").await,
        key.as_bytes(),
        "same store"
    );
    match (&pki, client.tls_info()) {
        (None, None) => {}
        (Some(_), Some(info)) => {
            assert_eq!(info.version, "TLSv1_3");
            assert_eq!(info.peer_key_type, Some(KeyType::EcP384));
        }
        (_, info) => panic!("unexpected TLS state {info:?}"),
    }
    let started = Instant::now();
    let (killed, exited) = tokio::join!(client.kill(), child.wait());
    let took = started.elapsed();
    assert_eq!(killed.expect("kill"), None, "not our child: no status");
    let status = exited.expect("wait");
    // Success, not SIGKILL: it exited by itself on the Shutdown call.
    assert!(status.success(), "{status} after {took:?}");
    if transport == "unix" {
        let socket = Path::new(&config.addr.string);
        assert!(!socket.exists(), "socket {socket:?} left behind");
        let dir = socket.parent().unwrap_or(Path::new("/"));
        assert!(!dir.exists(), "socket directory {dir:?} left behind");
    }
    scratch.assert_plugin_gone();

    // Nothing to reattach to any more.
    let Err(err) = Client::reattach(&managed, client_tls(pki.as_ref())).await else {
        panic!("reattached to a plugin that has exited");
    };
    match &err {
        Error::Reattach { pid, source } => {
            assert_eq!(*pid, config.pid);
            // The connect failure underneath stays typed.
            assert!(
                matches!(source.downcast_ref::<Error>(), Some(Error::Connect { .. })),
                "{err}"
            );
            assert!(err.to_string().contains(&config.pid.to_string()), "{err}");
        }
        other => panic!("expected Reattach, got {other:?}"),
    }
}

#[tokio::test]
async fn reattach_unix_plaintext() {
    reattach("unix", false).await;
}

#[tokio::test]
async fn reattach_tcp_manual_tls() {
    reattach("tcp", true).await;
}

#[tokio::test]
async fn reattach_refuses_auto_mtls_instead_of_going_plaintext() {
    // A reattach configuration carries no certificate: AutoMTLS cannot be
    // set up, and quietly connecting in plaintext would drop the TLS the
    // caller asked for.
    let addr = rpcplugin::Addr::Unix("/nonexistent/plugin.sock".into());
    let config = ReattachConfig::new(1, &addr, std::process::id(), true);
    match Client::reattach(&config, ClientTls::Auto(KeyType::EcP256)).await {
        Err(Error::Config(reason)) => assert!(reason.contains("AutoMTLS"), "{reason}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}
