use crate::TransportError;
use rpcplugin_handshake::Network;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// Where a plugin listens: the `NETWORK|ADDR` pair of a handshake line.
///
/// ```
/// use rpcplugin_transport::{Addr, Network};
///
/// let addr = Addr::parse(Network::Tcp, "127.0.0.1:10000").unwrap();
/// assert_eq!(addr.network(), Network::Tcp);
/// assert_eq!(addr.to_string(), "127.0.0.1:10000");
///
/// // go-plugin hosts also resolve `:port` and `localhost:port`.
/// assert_eq!(Addr::parse(Network::Tcp, ":1234").unwrap().to_string(), "127.0.0.1:1234");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addr {
    /// A unix socket path.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(SocketAddr),
}

impl Addr {
    /// Builds an address from a handshake's network and address fields.
    ///
    /// TCP addresses are `ip:port`, `:port` (loopback) or `localhost:port`;
    /// other host names are refused, since plugins run on this machine.
    pub fn parse(network: Network, address: &str) -> Result<Addr, TransportError> {
        match network {
            Network::Unix => {
                if address.is_empty() || address.contains('\0') {
                    return Err(TransportError::InvalidAddress {
                        network: "unix",
                        address: address.to_owned(),
                        reason: "a socket path must be non-empty and free of NUL bytes".into(),
                    });
                }
                Ok(Addr::Unix(PathBuf::from(address)))
            }
            Network::Tcp => parse_tcp(address).map(Addr::Tcp),
        }
    }

    /// The network name: `unix` or `tcp`.
    ///
    /// ```
    /// use rpcplugin_transport::{Addr, Network};
    /// assert_eq!(Addr::Unix("/tmp/plugin1".into()).network(), Network::Unix);
    /// ```
    pub fn network(&self) -> Network {
        match self {
            Addr::Unix(_) => Network::Unix,
            Addr::Tcp(_) => Network::Tcp,
        }
    }
}

fn parse_tcp(address: &str) -> Result<SocketAddr, TransportError> {
    let invalid = |reason: &str| TransportError::InvalidAddress {
        network: "tcp",
        address: address.to_owned(),
        reason: reason.to_owned(),
    };
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("the port is not a number from 0 to 65535"))?;
    match host {
        "" | "localhost" => Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
        _ => Err(invalid("only IP addresses and localhost are accepted")),
    }
}

impl fmt::Display for Addr {
    /// The address field as a handshake line carries it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Unix(path) => write!(f, "{}", path.display()),
            Addr::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_forms() {
        for (input, want) in [
            ("127.0.0.1:1", "127.0.0.1:1"),
            (":2", "127.0.0.1:2"),
            ("localhost:3", "127.0.0.1:3"),
            ("[::1]:4", "[::1]:4"),
        ] {
            assert_eq!(Addr::parse(Network::Tcp, input).unwrap().to_string(), want);
        }
        for bad in ["", "127.0.0.1", "example.com:80", "localhost:99999", "x:y"] {
            let err = Addr::parse(Network::Tcp, bad).unwrap_err();
            assert!(err.to_string().contains("invalid tcp address"), "{err}");
        }
    }

    #[test]
    fn unix_forms() {
        assert_eq!(
            Addr::parse(Network::Unix, "/tmp/plugin1").unwrap(),
            Addr::Unix("/tmp/plugin1".into())
        );
        assert!(Addr::parse(Network::Unix, "").is_err());
        assert!(Addr::parse(Network::Unix, "a\0b").is_err());
    }
}
