//! Reattaching: a [`Client`] for a plugin that is already running
//! (started in debug mode, or by another host), watched by its pid.

use super::assemble::Parts;
use super::exit::{ExitWatch, WatchLabel};
use super::relay::Tail;
use super::{Client, ClientTls, Stops, connect};
use crate::broker::{Broker, BrokerTls};
use crate::channel::PluginChannel;
use crate::conn::{self, TlsInfo, TlsInfoSlot};
use crate::error::Error;
use crate::reattach::ReattachConfig;
use crate::shutdown::Shutdown;
use rpcplugin_transport::{Addr, ListenConfig};
use std::time::Duration;

impl Client {
    /// Connects to a plugin that is already running (started in debug mode,
    /// or by another host). go-plugin's reattach carries no certificate, so
    /// `tls` is [`ClientTls::Disabled`] (plaintext, as go-plugin does) or
    /// [`ClientTls::Manual`]; [`ClientTls::Auto`] is a configuration error.
    /// When `config.test` is true, [`Client::kill`] leaves the plugin
    /// running. The plugin's pid is watched: [`Client::exit`] reports when it
    /// is gone.
    pub async fn reattach(config: &ReattachConfig, tls: ClientTls) -> Result<Client, Error> {
        if config.protocol != "grpc" {
            return Err(Error::UnsupportedProtocol {
                protocol: config.protocol.clone(),
            });
        }
        let tls = match tls {
            ClientTls::Manual {
                identity,
                server_trust,
            } => Some(connect::tls_pair(&identity, server_trust)?),
            ClientTls::Disabled => None,
            ClientTls::Auto(_) => {
                return Err(Error::Config(
                    "reattach cannot use AutoMTLS: the plugin's certificate was exchanged in \
                     the handshake of the host that launched it. Reattach with \
                     ClientTls::Disabled (a plaintext plugin) or ClientTls::Manual"
                        .into(),
                ));
            }
        };
        let addr = config.addr()?;
        let channel = Self::dial_reattached(&addr, tls.as_ref(), config.pid).await?;
        let shutdown = Shutdown::new();
        let broker = Broker::new(tls, ListenConfig::default(), shutdown.clone());
        let tail = Tail::default();
        let watch = ExitWatch::pid(
            config.pid,
            WatchLabel {
                plugin: format!("pid {}", config.pid),
                tail: tail.clone(),
            },
        );
        Ok(Client::from_parts(Parts {
            watch,
            launched: false,
            socket_dir: None,
            addr,
            version: config.protocol_version,
            channel: channel.0,
            broker,
            tls_info: channel.1,
            tail,
            tasks: Vec::new(),
            shutdown,
            stops: Stops {
                shutdown_timeout: Duration::from_secs(1),
                kill_grace: Duration::from_secs(2),
                keep_running: config.test,
            },
            handshake: None,
            sinks: (None, None),
        }))
    }

    async fn dial_reattached(
        addr: &Addr,
        tls: Option<&BrokerTls>,
        pid: u32,
    ) -> Result<(PluginChannel, Option<TlsInfo>), Error> {
        let info = TlsInfoSlot::default();
        let channel = conn::connect(
            addr.clone(),
            tls.map(|t| t.client.clone()),
            info.clone(),
            Duration::from_secs(10),
        )
        .await
        .map_err(|err| Error::Reattach {
            pid,
            source: Box::new(err),
        })?;
        let tls_info = info.lock().ok().and_then(|i| i.clone());
        Ok((channel, tls_info))
    }
}
