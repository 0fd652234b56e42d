//! The one constructor of [`Client`], for launched, in-process and
//! reattached plugins alike.

use super::connect::Connected;
use super::exit::ExitWatch;
use super::relay::{self, Sink, Tail};
use super::{Client, Stops};
use crate::broker::Broker;
use crate::channel::PluginChannel;
use crate::conn::TlsInfo;
use crate::shutdown::Shutdown;
use rpcplugin_handshake::HandshakeLine;
use rpcplugin_transport::Addr;
use tokio::task::JoinHandle;

/// What a [`Client`] is made of, before its streams start.
pub(super) struct Parts {
    pub(super) watch: ExitWatch,
    pub(super) launched: bool,
    pub(super) socket_dir: Option<tempfile::TempDir>,
    pub(super) addr: Addr,
    pub(super) version: u32,
    pub(super) channel: PluginChannel,
    pub(super) broker: Broker,
    pub(super) tls_info: Option<TlsInfo>,
    pub(super) tail: Tail,
    pub(super) tasks: Vec<JoinHandle<()>>,
    pub(super) shutdown: Shutdown,
    pub(super) stops: Stops,
    pub(super) handshake: Option<HandshakeLine>,
    pub(super) sinks: (Option<Sink>, Option<Sink>),
}

impl Client {
    /// A client that reached its plugin through a handshake line: launched
    /// by this host, or served in this process.
    pub(super) fn assemble(
        connected: Connected,
        (watch, socket_dir): (ExitWatch, Option<tempfile::TempDir>),
        tail: Tail,
        tasks: Vec<JoinHandle<()>>,
        shutdown: Shutdown,
        stops: Stops,
        sinks: (Option<Sink>, Option<Sink>),
    ) -> Client {
        let Connected {
            handshake,
            addr,
            channel,
            broker,
            tls_info,
        } = connected;
        Client::from_parts(Parts {
            watch,
            launched: true,
            socket_dir,
            addr,
            version: handshake.app_version,
            channel,
            broker,
            tls_info,
            tail,
            tasks,
            shutdown,
            stops,
            handshake: Some(handshake),
            sinks,
        })
    }

    /// The one place a `Client` is made, whichever way it reached its
    /// plugin: starts the broker and stdio streams and owns their tasks.
    pub(super) fn from_parts(parts: Parts) -> Client {
        let Parts {
            watch,
            launched,
            socket_dir,
            addr,
            version,
            channel,
            broker,
            tls_info,
            tail,
            mut tasks,
            shutdown,
            stops,
            handshake,
            sinks,
        } = parts;
        tasks.extend(relay::spawn_streams(&channel, &broker, &shutdown, sinks));
        Client {
            watch,
            launched,
            socket_dir,
            stopped: false,
            addr,
            version,
            channel,
            broker,
            tls_info,
            tail,
            tasks,
            shutdown,
            stops,
            handshake,
        }
    }
}
