//! From a handshake line to a connected channel: version checks, the TLS
//! pair for the chosen mode, the dial.

use super::{ClientTls, Runner};
use crate::broker::{Broker, BrokerTls};
use crate::channel::PluginChannel;
use crate::conn::{self, TlsInfo, TlsInfoSlot};
use crate::error::Error;
use crate::mux::{Muxer, Role};
use crate::shutdown::Shutdown;
use rpcplugin_certs::{Identity, PeerTrust};
use rpcplugin_handshake::{self as handshake, HandshakeLine, Protocol};
use rpcplugin_transport::{Addr, ListenConfig};
use std::time::Duration;

/// What a successful connect set up.
pub(crate) struct Connected {
    pub(crate) handshake: HandshakeLine,
    pub(crate) addr: Addr,
    pub(crate) channel: PluginChannel,
    pub(crate) broker: Broker,
    pub(crate) tls_info: Option<TlsInfo>,
}

/// What the host settled on before reading the line.
pub(crate) struct Offer<'a> {
    pub(crate) versions: &'a [u32],
    pub(crate) tls: &'a ClientTls,
    pub(crate) identity: Option<Identity>,
    pub(crate) connect_timeout: Duration,
    pub(crate) listen: ListenConfig,
    /// The host asked for broker multiplexing (and the line said yes).
    pub(crate) multiplex: bool,
    /// Started through a runner: its translation of the announced address,
    /// and the plugin's process id.
    pub(crate) runner: Option<(Runner, Option<u32>)>,
}

/// The client and server TLS configurations of one identity and one trust
/// (the server half serves brokered connections the plugin dials back).
pub(crate) fn tls_pair(identity: &Identity, trust: PeerTrust) -> Result<BrokerTls, Error> {
    Ok(BrokerTls {
        client: rpcplugin_certs::client_config(Some(identity), trust.clone())?,
        server: rpcplugin_certs::server_config(identity, trust)?,
    })
}

/// Multiplexing: the one raw connection to the plugin, with the yamux
/// session (host = client) running on it until `shutdown`.
async fn dial_session(addr: &Addr, shutdown: Shutdown, timeout: Duration) -> Result<Muxer, Error> {
    let stream = tokio::time::timeout(timeout, rpcplugin_transport::dial(addr))
        .await
        .map_err(|_| Error::ConnectTimeout {
            addr: addr.to_string(),
            timeout,
        })?
        .map_err(|err| Error::from_connect(addr, err))?;
    let mux = Muxer::new(Role::Host);
    mux.attach(stream, shutdown);
    Ok(mux)
}

/// Checks the plugin's handshake against what the host offered and dials it.
pub(crate) async fn connect(
    hs: HandshakeLine,
    offer: Offer<'_>,
    shutdown: Shutdown,
) -> Result<Connected, Error> {
    if hs.core_version != handshake::CORE_PROTOCOL_VERSION {
        return Err(Error::IncompatibleCoreVersion {
            plugin: hs.core_version,
            host: handshake::CORE_PROTOCOL_VERSION,
        });
    }
    if !offer.versions.contains(&hs.app_version) {
        return Err(Error::IncompatibleVersion {
            plugin: hs.app_version,
            host: offer.versions.to_vec(),
        });
    }
    if hs.protocol != Protocol::Grpc {
        return Err(Error::UnsupportedProtocol {
            protocol: hs.protocol.to_string(),
        });
    }
    let addr = Addr::parse(hs.network, &hs.address)?;
    let addr = match offer.runner {
        Some((runner, pid)) => runner.translate(addr, pid)?,
        None => addr,
    };
    let tls = match (offer.tls, offer.identity, hs.server_cert.clone()) {
        (ClientTls::Auto(_), Some(identity), Some(cert)) => {
            Some(tls_pair(&identity, PeerTrust::Pinned(cert.into()))?)
        }
        (ClientTls::Auto(_), _, None) => return Err(Error::MissingServerCert),
        (
            ClientTls::Manual {
                identity,
                server_trust,
            },
            _,
            _,
        ) => Some(tls_pair(identity, server_trust.clone())?),
        (ClientTls::Disabled, _, Some(_)) => return Err(Error::UnexpectedServerCert),
        _ => None,
    };
    let info = TlsInfoSlot::default();
    let client_tls = tls.as_ref().map(|t| t.client.clone());
    let mut broker_mux = None;
    let channel = if offer.multiplex {
        let mux = dial_session(&addr, shutdown.clone(), offer.connect_timeout).await?;
        let main = mux.open();
        broker_mux = Some(mux.clone());
        conn::connect_over(
            addr.to_string(),
            main,
            client_tls,
            info.clone(),
            offer.connect_timeout,
        )
        .await?
    } else {
        conn::connect(
            addr.clone(),
            client_tls,
            info.clone(),
            offer.connect_timeout,
        )
        .await?
    };
    let tls_info = info.lock().ok().and_then(|i| i.clone());
    let mut broker = Broker::new(tls, offer.listen, shutdown);
    if let Some(mux) = broker_mux {
        broker = broker.multiplexed(mux);
    }
    Ok(Connected {
        handshake: hs,
        addr,
        channel,
        broker,
        tls_info,
    })
}
