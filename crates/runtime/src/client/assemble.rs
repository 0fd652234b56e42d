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
    pub(super) fn from_parts(mut parts: Parts) -> Client {
        let streams =
            relay::spawn_streams(&parts.channel, &parts.broker, &parts.shutdown, parts.sinks);
        parts.tasks.extend(streams);
        Client {
            watch: parts.watch,
            launched: parts.launched,
            socket_dir: parts.socket_dir,
            stopped: false,
            addr: parts.addr,
            version: parts.version,
            channel: parts.channel,
            broker: parts.broker,
            tls_info: parts.tls_info,
            tail: parts.tail,
            tasks: parts.tasks,
            shutdown: parts.shutdown,
            stops: parts.stops,
            handshake: parts.handshake,
        }
    }
}
