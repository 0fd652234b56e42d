use crate::{Addr, Stream, TransportError};
use rpcplugin_handshake::Network;
use rpcplugin_handshake::env;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// How a plugin binds its listener.
///
/// Build it from the host's environment with [`ListenConfig::from_env`], or
/// set the fields directly.
///
/// ```
/// use rpcplugin_transport::{ListenConfig, Network};
///
/// let vars = [("PLUGIN_MIN_PORT", "10000"), ("PLUGIN_MAX_PORT", "25000")];
/// let cfg = ListenConfig::from_lookup(Network::Tcp, |k| {
///     vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
/// })
/// .unwrap();
/// assert_eq!((cfg.min_port, cfg.max_port), (10000, 25000));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenConfig {
    /// Unix socket or TCP (default: unix sockets where the platform has them).
    pub transport: Network,
    /// Directory for unix sockets (`PLUGIN_UNIX_SOCKET_DIR`). When `None` a
    /// private directory is created under the OS temp dir and removed with
    /// the listener.
    pub socket_dir: Option<PathBuf>,
    /// Group name or numeric gid that may also use the socket
    /// (`PLUGIN_UNIX_SOCKET_GROUP`).
    pub socket_group: Option<String>,
    /// Lowest TCP port to try (`PLUGIN_MIN_PORT`); with `max_port` both 0 an
    /// ephemeral port is used.
    pub min_port: u16,
    /// Highest TCP port to try (`PLUGIN_MAX_PORT`).
    pub max_port: u16,
}

impl ListenConfig {
    /// Reads the go-plugin variables from this process's environment.
    ///
    /// ```
    /// use rpcplugin_transport::{ListenConfig, Network};
    /// let cfg = ListenConfig::from_env(Network::Unix).unwrap();
    /// assert_eq!(cfg.transport, Network::Unix);
    /// ```
    pub fn from_env(transport: Network) -> Result<ListenConfig, TransportError> {
        Self::from_lookup(transport, |name| std::env::var(name).ok())
    }

    /// Reads the go-plugin variables through `lookup` (name to value).
    ///
    /// An absent or empty variable counts as unset. A port that is not a
    /// number, or a minimum above the maximum, is an error (as in go-plugin).
    pub fn from_lookup(
        transport: Network,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ListenConfig, TransportError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let port = |name: &str| -> Result<u16, TransportError> {
            match get(name) {
                None => Ok(0),
                Some(v) => v.trim().parse().map_err(|_| {
                    TransportError::PortRange(format!("{name}={v:?} is not a port number"))
                }),
            }
        };
        let (min_port, max_port) = (port(env::PLUGIN_MIN_PORT)?, port(env::PLUGIN_MAX_PORT)?);
        if transport == Network::Tcp && min_port > max_port {
            return Err(TransportError::PortRange(format!(
                "PLUGIN_MIN_PORT ({min_port}) is above PLUGIN_MAX_PORT ({max_port})"
            )));
        }
        Ok(ListenConfig {
            transport,
            socket_dir: get(env::PLUGIN_UNIX_SOCKET_DIR).map(PathBuf::from),
            socket_group: get(env::PLUGIN_UNIX_SOCKET_GROUP),
            min_port,
            max_port,
        })
    }
}

/// A bound listener; dropping it closes the socket and removes its files.
#[derive(Debug)]
pub struct Listener {
    inner: Inner,
    addr: Addr,
}

#[derive(Debug)]
enum Inner {
    #[cfg(unix)]
    Unix {
        listener: tokio::net::UnixListener,
        _cleanup: crate::unix::Cleanup,
    },
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    /// Binds a listener as `config` says. Must be called inside a tokio
    /// runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rpcplugin_transport::TransportError> {
    /// use rpcplugin_transport::{ListenConfig, Listener, Network};
    /// let cfg = ListenConfig { transport: Network::Tcp, ..Default::default() };
    /// let listener = Listener::bind(&cfg)?;
    /// assert_eq!(listener.local_addr().network(), Network::Tcp);
    /// # Ok(()) }
    /// ```
    pub fn bind(config: &ListenConfig) -> Result<Listener, TransportError> {
        match config.transport {
            #[cfg(unix)]
            Network::Unix => {
                let (std_listener, path, cleanup) = crate::unix::bind(config)?;
                let listener =
                    tokio::net::UnixListener::from_std(std_listener).map_err(|source| {
                        TransportError::BindUnix {
                            dir: path.parent().map(PathBuf::from).unwrap_or_default(),
                            source,
                        }
                    })?;
                tracing::debug!(path = %path.display(), "bound unix socket");
                Ok(Listener {
                    inner: Inner::Unix {
                        listener,
                        _cleanup: cleanup,
                    },
                    addr: Addr::Unix(path),
                })
            }
            #[cfg(not(unix))]
            Network::Unix => Err(TransportError::Unsupported("unix sockets")),
            Network::Tcp => bind_tcp(config.min_port, config.max_port),
        }
    }

    /// The address to announce in the handshake line.
    pub fn local_addr(&self) -> &Addr {
        &self.addr
    }

    /// Waits for the next connection. TCP connections get `TCP_NODELAY`.
    pub async fn accept(&self) -> io::Result<Stream> {
        match &self.inner {
            #[cfg(unix)]
            Inner::Unix { listener, .. } => Ok(Stream::Unix(listener.accept().await?.0)),
            Inner::Tcp(listener) => {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }
}

/// Binds 127.0.0.1, trying `min..=max` upward as go-plugin does.
fn bind_tcp(min: u16, max: u16) -> Result<Listener, TransportError> {
    if min > max {
        return Err(TransportError::PortRange(format!(
            "minimum port {min} is above maximum port {max}"
        )));
    }
    let mut last_err = io::Error::new(io::ErrorKind::AddrNotAvailable, "no port tried");
    for port in min..=max {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        match std::net::TcpListener::bind(addr).and_then(|l| {
            l.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(l)
        }) {
            Ok(listener) => {
                let local = listener
                    .local_addr()
                    .map_err(|source| TransportError::BindTcp { min, max, source })?;
                tracing::debug!(%local, "bound tcp listener");
                return Ok(Listener {
                    inner: Inner::Tcp(listener),
                    addr: Addr::Tcp(local),
                });
            }
            Err(err) => last_err = err,
        }
    }
    Err(TransportError::BindTcp {
        min,
        max,
        source: last_err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn env_ports() {
        let cfg = ListenConfig::from_lookup(Network::Tcp, lookup(&[])).unwrap();
        assert_eq!((cfg.min_port, cfg.max_port), (0, 0));
        let err = ListenConfig::from_lookup(
            Network::Tcp,
            lookup(&[("PLUGIN_MIN_PORT", "20"), ("PLUGIN_MAX_PORT", "10")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("above PLUGIN_MAX_PORT"), "{err}");
        let err = ListenConfig::from_lookup(Network::Tcp, lookup(&[("PLUGIN_MIN_PORT", "x")]))
            .unwrap_err();
        assert!(err.to_string().contains("not a port number"), "{err}");
    }

    #[test]
    fn env_socket_settings() {
        let cfg = ListenConfig::from_lookup(
            Network::Unix,
            lookup(&[
                ("PLUGIN_UNIX_SOCKET_DIR", "/run/x"),
                ("PLUGIN_UNIX_SOCKET_GROUP", ""),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.socket_dir, Some(PathBuf::from("/run/x")));
        assert_eq!(cfg.socket_group, None);
    }
}
