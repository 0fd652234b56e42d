//! From a handshake line to a connected channel: version checks, the TLS
//! pair for the chosen mode, the dial.

use super::ClientTls;
use crate::broker::{Broker, BrokerTls};
use crate::conn::{self, TlsInfo, TlsInfoSlot};
use crate::error::Error;
use crate::shutdown::Shutdown;
use rpcplugin_certs::{Identity, PeerTrust};
use rpcplugin_handshake::{self as handshake, HandshakeLine, Protocol};
use rpcplugin_transport::{Addr, ListenConfig};
use std::time::Duration;
use tonic::transport::Channel;

/// What a successful connect set up.
pub(crate) struct Connected {
    pub(crate) handshake: HandshakeLine,
    pub(crate) addr: Addr,
    pub(crate) channel: Channel,
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
}

/// The client and server TLS configurations of one identity and one trust
/// (the server half serves brokered connections the plugin dials back).
pub(crate) fn tls_pair(identity: &Identity, trust: PeerTrust) -> Result<BrokerTls, Error> {
    Ok(BrokerTls {
        client: rpcplugin_certs::client_config(Some(identity), trust.clone())?,
        server: rpcplugin_certs::server_config(identity, trust)?,
    })
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
    let channel = conn::connect(
        addr.clone(),
        tls.as_ref().map(|t| t.client.clone()),
        info.clone(),
        offer.connect_timeout,
    )
    .await?;
    let tls_info = info.lock().ok().and_then(|i| i.clone());
    let broker = Broker::new(tls, offer.listen, shutdown);
    Ok(Connected {
        handshake: hs,
        addr,
        channel,
        broker,
        tls_info,
    })
}
