//! Brokered connections in both directions: the plugin serves and the host
//! dials, the host serves and the plugin dials.

use crate::support::{
    Scratch, Tls, builder, host_dials_plugin, host_serves, kill_cleanly, plugin_dials_host,
};
use rpcplugin::KeyType;
use rpcplugin_tests::{TRANSPORT_ENV, mode};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Host-side brokered servers listen in this process; tests that start
/// them run one at a time so each can find its own socket.
static HOST_SERVES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Paths of the unix sockets this process listens on.
fn own_listening_sockets() -> BTreeSet<PathBuf> {
    let mut inodes = BTreeSet::new();
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let target = target.to_string_lossy().into_owned();
                if let Some(inode) = target
                    .strip_prefix("socket:[")
                    .and_then(|t| t.strip_suffix(']'))
                {
                    inodes.insert(inode.to_owned());
                }
            }
        }
    }
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            // Num RefCount Protocol Flags Type St Inode Path
            let cols: Vec<&str> = line.split_whitespace().collect();
            let listening = cols.get(3) == Some(&"00010000");
            match (cols.get(6), cols.get(7)) {
                (Some(inode), Some(path)) if listening && inodes.contains(*inode) => {
                    Some(PathBuf::from(path))
                }
                _ => None,
            }
        })
        .collect()
}

async fn both_directions(transport: &str, tls: Tls) {
    let scratch = Scratch::new();
    let (builder, _) = tls.apply(
        builder(mode::NORMAL, &scratch).env(TRANSPORT_ENV, transport),
        &scratch,
    );
    let mut client = builder.start().await.expect("start");

    // The plugin serves, the host dials.
    host_dials_plugin(&client).await;

    // The host serves, the plugin dials.
    let _serial = HOST_SERVES.lock().await;
    let before = own_listening_sockets();
    let (id, host_store) = host_serves(&client).await;
    let host_sockets: Vec<PathBuf> = own_listening_sockets()
        .difference(&before)
        .cloned()
        .collect();
    assert_eq!(host_sockets.len(), 1, "{host_sockets:?}");
    plugin_dials_host(&client, id, &host_store).await;

    kill_cleanly(&mut client, &scratch).await;
    for socket in &host_sockets {
        assert!(
            !socket.exists(),
            "host broker socket {socket:?} left behind"
        );
        let dir = socket.parent().unwrap_or(Path::new("/"));
        assert!(!dir.exists(), "host broker directory {dir:?} left behind");
    }
}

#[tokio::test]
async fn broker_unix_tls_off() {
    both_directions("unix", Tls::Off).await;
}

#[tokio::test]
async fn broker_tcp_automtls() {
    both_directions(
        "tcp",
        Tls::Auto {
            host: KeyType::EcP521,
            plugin: KeyType::EcP384,
        },
    )
    .await;
}

#[tokio::test]
async fn broker_unix_manual_tls() {
    both_directions(
        "unix",
        Tls::Manual {
            ca: KeyType::EcP256,
            host: KeyType::EcP256,
            plugin: KeyType::EcP384,
        },
    )
    .await;
}
