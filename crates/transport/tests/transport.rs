//! Real sockets: binding, permissions, dialling, port scanning and cleanup.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rpcplugin_transport::{Addr, ListenConfig, Listener, Network, TransportError, dial};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn echo_once(listener: Listener) {
    let mut conn = listener.accept().await.unwrap();
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).await.unwrap();
    conn.write_all(&buf).await.unwrap();
}

async fn round_trip(addr: &Addr) {
    let mut conn = dial(addr).await.unwrap();
    conn.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

fn unix_path(addr: &Addr) -> PathBuf {
    match addr {
        Addr::Unix(p) => p.clone(),
        Addr::Tcp(_) => panic!("expected a unix address, got {addr}"),
    }
}

#[tokio::test]
async fn unix_socket_is_private_and_removed() {
    let listener = Listener::bind(&ListenConfig::default()).unwrap();
    let addr = listener.local_addr().clone();
    assert_eq!(addr.network(), Network::Unix);
    let path = unix_path(&addr);
    let dir = path.parent().unwrap().to_path_buf();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(
        path.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("plugin")
    );

    let server = tokio::spawn(echo_once(listener));
    round_trip(&addr).await;
    server.await.unwrap(); // drops the listener
    assert!(!path.exists(), "socket file left behind");
    assert!(!dir.exists(), "socket dir left behind");
}

#[tokio::test]
async fn unix_socket_in_given_dir_with_group() {
    let dir = tempfile::tempdir().unwrap();
    let gid = std::fs::metadata(dir.path()).unwrap().gid();
    let cfg = ListenConfig {
        socket_dir: Some(dir.path().to_path_buf()),
        socket_group: Some(gid.to_string()),
        ..Default::default()
    };
    let listener = Listener::bind(&cfg).unwrap();
    let path = unix_path(listener.local_addr());
    assert_eq!(path.parent().unwrap(), dir.path());
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), gid);
    drop(listener);
    assert!(!path.exists());
    assert!(
        dir.path().exists(),
        "a directory we did not create must stay"
    );
}

#[tokio::test]
async fn unknown_group_is_a_clear_error() {
    let cfg = ListenConfig {
        socket_group: Some("no-such-group-rpcplugin".into()),
        ..Default::default()
    };
    let err = Listener::bind(&cfg).unwrap_err();
    assert!(matches!(err, TransportError::UnknownGroup(_)), "{err}");
}

#[tokio::test]
async fn long_socket_dir_is_refused_before_binding() {
    let base = tempfile::tempdir().unwrap();
    let long = base.path().join("d".repeat(100));
    std::fs::create_dir(&long).unwrap();
    let cfg = ListenConfig {
        socket_dir: Some(long),
        ..Default::default()
    };
    let err = Listener::bind(&cfg).unwrap_err();
    assert!(
        matches!(err, TransportError::SocketPathTooLong { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("PLUGIN_UNIX_SOCKET_DIR"), "{err}");
}

#[tokio::test]
async fn tcp_binds_loopback_and_scans_upward() {
    let first = Listener::bind(&ListenConfig {
        transport: Network::Tcp,
        ..Default::default()
    })
    .unwrap();
    let Addr::Tcp(taken) = first.local_addr().clone() else {
        panic!("expected tcp")
    };
    assert!(taken.ip().is_loopback());
    // A range starting at the taken port must skip it.
    let port = taken.port();
    let Some(max) = port.checked_add(20) else {
        return;
    };
    let second = Listener::bind(&ListenConfig {
        transport: Network::Tcp,
        min_port: port,
        max_port: max,
        ..Default::default()
    })
    .unwrap();
    let Addr::Tcp(got) = second.local_addr().clone() else {
        panic!("expected tcp")
    };
    assert!(got.port() > port && got.port() <= max, "{got}");
    assert_eq!(got.ip().to_string(), "127.0.0.1");

    let addr = second.local_addr().clone();
    let server = tokio::spawn(echo_once(second));
    round_trip(&addr).await;
    server.await.unwrap();
}

#[tokio::test]
async fn tcp_range_fully_taken_is_an_error() {
    let taken = Listener::bind(&ListenConfig {
        transport: Network::Tcp,
        ..Default::default()
    })
    .unwrap();
    let Addr::Tcp(sock) = taken.local_addr().clone() else {
        panic!("expected tcp")
    };
    let err = Listener::bind(&ListenConfig {
        transport: Network::Tcp,
        min_port: sock.port(),
        max_port: sock.port(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, TransportError::BindTcp { .. }), "{err}");
}

#[tokio::test]
async fn dialing_nothing_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let err = dial(&Addr::Unix(dir.path().join("absent")))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Dial { .. }), "{err}");
}
