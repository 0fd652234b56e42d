//! The runtime's one error enum, its messages and its constructors.

mod hint;
mod report;

pub(crate) use hint::Stage;
pub(crate) use hint::chain;
use hint::{tls_hint, typed_hint};
use rpcplugin_certs::CertError;
use rpcplugin_handshake::{CookieError, ParseError};
use rpcplugin_transport::TransportError;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A failure underneath an [`Error`], kept with its type so that
/// [`std::error::Error::source`] reaches it (downcast it to
/// [`std::io::Error`], [`rustls::Error`], [`h2::Error`] ...).
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong serving a plugin or driving one from a host.
///
/// Each message says what happened and, where there is one, what to do.
/// Host-side variants that come from a plugin process carry the last lines
/// the plugin wrote to stderr (`stderr_tail`), which usually name the cause.
/// Underlying failures stay typed and are reachable through
/// [`std::error::Error::source`].
///
/// `Debug` prints the message and its causes (as `Display` does, plus a
/// `Caused by:` list for causes the message does not already quote), so
/// `fn main() -> Result<(), rpcplugin::Error>` and `Box<dyn Error>` print
/// something a user can act on; `{:#?}` prints the variant and its fields.
///
/// ```
/// let err = rpcplugin_runtime::Error::Config("the host offers no protocol version".into());
/// assert_eq!(
///     format!("{err:?}"),
///     "plugin server misconfigured: the host offers no protocol version"
/// );
/// assert!(format!("{err:#?}").starts_with("Config("));
/// ```
#[non_exhaustive]
#[derive(thiserror::Error)]
pub enum Error {
    // ----- plugin side -----
    /// The magic cookie did not match: this binary was not launched by its host.
    #[error(transparent)]
    Cookie(#[from] CookieError),
    /// The plugin server was built without any protocol version.
    #[error("plugin server misconfigured: {0}")]
    Config(String),
    /// `PLUGIN_CLIENT_CERT` did not hold a usable certificate.
    #[error("PLUGIN_CLIENT_CERT from the host is not a usable PEM certificate: {0}")]
    ClientCertEnv(#[source] CertError),
    /// Writing the handshake line or redirecting stdio failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server error: {0}")]
    Serve(#[from] tonic::transport::Error),

    // ----- shared -----
    /// Binding or dialling a socket failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Generating or loading certificates, or building a TLS configuration, failed.
    #[error(transparent)]
    Certs(#[from] CertError),

    // ----- host side -----
    /// The plugin executable's checksum did not match the expected one.
    #[error(
        "checksum of {path:?} does not match: expected {expected}, found {actual}; refusing to run it"
    )]
    ChecksumMismatch {
        /// The executable.
        path: PathBuf,
        /// Expected SHA-256, hex.
        expected: String,
        /// Actual SHA-256, hex.
        actual: String,
    },
    /// The plugin process could not be started.
    #[error("cannot start plugin {command:?}: {source}")]
    Spawn {
        /// The command.
        command: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No handshake line arrived within the start timeout.
    #[error("plugin printed no handshake line within {timeout:?}; it may be hung or not a go-plugin plugin{}", tail(.stderr_tail))]
    StartTimeout {
        /// The configured start timeout.
        timeout: Duration,
        /// Last lines of the plugin's stderr.
        stderr_tail: String,
    },
    /// The plugin exited before printing its handshake line.
    #[error("plugin exited before its handshake ({}){}", exit_text(.exit), tail(.stderr_tail))]
    PluginExited {
        /// How it exited, e.g. `PluginExit::Status` with exit code 2;
        /// `None` when it closed its stdout and did not exit within 2 s
        /// (it was killed then).
        exit: Option<crate::client::PluginExit>,
        /// Last lines of the plugin's stderr.
        stderr_tail: String,
    },
    /// The plugin refused the magic cookie: host and plugin disagree on it.
    #[error("plugin rejected the magic cookie (it exited saying it must be launched by its host): check that host and plugin use the same cookie key and value{}", tail(.stderr_tail))]
    CookieRejected {
        /// Last lines of the plugin's stderr.
        stderr_tail: String,
    },
    /// The first stdout line was not a handshake line.
    #[error("invalid handshake line on the plugin's stdout: {source}{}{}", handshake_hint(.source), tail(.stderr_tail))]
    InvalidHandshake {
        /// Why the line was refused.
        source: ParseError,
        /// Last lines of the plugin's stderr.
        stderr_tail: String,
    },
    /// The plugin speaks another core protocol version.
    #[error(
        "plugin uses core protocol version {plugin}, this host speaks {host}: rebuild the plugin against a compatible go-plugin or rpcplugin"
    )]
    IncompatibleCoreVersion {
        /// What the plugin announced.
        plugin: u32,
        /// What this host speaks.
        host: u32,
    },
    /// The plugin chose an app protocol version this host does not have.
    #[error(
        "incompatible API version with plugin: plugin version {plugin}, host versions {host:?}"
    )]
    IncompatibleVersion {
        /// What the plugin announced.
        plugin: u32,
        /// The versions this host offered.
        host: Vec<u32>,
    },
    /// The plugin speaks net/rpc, which this library does not.
    #[error(
        "plugin speaks the {protocol} protocol; only grpc is supported (rebuild the plugin as a gRPC plugin)"
    )]
    UnsupportedProtocol {
        /// The protocol announced.
        protocol: String,
    },
    /// AutoMTLS was requested but the plugin sent no certificate.
    #[error(
        "AutoMTLS is on but the plugin's handshake carries no certificate: the plugin ignored PLUGIN_CLIENT_CERT (too old, or TLS disabled on its side); disable TLS on the host or fix the plugin"
    )]
    MissingServerCert,
    /// The plugin sent a certificate although this host has TLS turned off.
    #[error(
        "the plugin's handshake carries a TLS certificate but TLS is off on this host; enable AutoMTLS or manual TLS"
    )]
    UnexpectedServerCert,
    /// Dialling the plugin, the TLS handshake or the HTTP/2 handshake failed.
    #[error("cannot connect to plugin at {addr}: {}{}", cause_text(.source), hint_text(.hint))]
    Connect {
        /// The plugin's address.
        addr: String,
        /// What failed: an [`io::Error`] from the dial or the TLS handshake
        /// (a [`rustls::Error`] inside it when TLS refused), an [`h2::Error`]
        /// from the HTTP/2 handshake, or a [`ParseError`] for an address
        /// the broker announced.
        source: Cause,
        /// A likely cause, when one is recognised.
        hint: Option<&'static str>,
    },
    /// The peer did not announce the brokered server this side asked for.
    #[error(
        "no connection info for broker id {id} within {timeout:?}: the peer did not call accept_and_serve with this id, or the broker stream is down"
    )]
    BrokerTimeout {
        /// The broker id dialled.
        id: u32,
        /// How long this side waited.
        timeout: Duration,
    },
    /// Dialling the plugin did not finish in time.
    #[error("connecting to plugin at {addr} did not finish within {timeout:?}")]
    ConnectTimeout {
        /// The plugin's address.
        addr: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The plugin's health service does not report SERVING.
    #[error("plugin health check failed: {0}")]
    Unhealthy(String),
    /// An RPC to the plugin failed.
    #[error("RPC to plugin failed: {status}{}", hint_text(.hint))]
    Rpc {
        /// The gRPC status.
        status: Box<tonic::Status>,
        /// A likely cause, when one is recognised.
        hint: Option<&'static str>,
    },
    /// The plugin process has exited: calls to it cannot succeed.
    #[error("the plugin process exited ({exit}){}{}", status_text(.status), tail(.stderr_tail))]
    PluginGone {
        /// How it ended.
        exit: crate::client::PluginExit,
        /// Last lines of the plugin's stderr.
        stderr_tail: String,
        /// The failed call that noticed, if a call did.
        #[source]
        status: Option<Box<tonic::Status>>,
    },
    /// Reattaching to a running plugin failed.
    #[error("cannot reattach to plugin{}: {}", pid_text(.pid), cause_text(.source))]
    Reattach {
        /// The plugin's process id, from the reattach configuration.
        pid: u32,
        /// Why: the configuration's address is unusable (a [`ParseError`]
        /// or [`TransportError`]), or connecting failed (an [`Error`]).
        source: Cause,
    },
}

fn cause_text(source: &Cause) -> String {
    chain(&**source)
}

fn exit_text(exit: &Option<crate::client::PluginExit>) -> String {
    match exit {
        Some(exit) => exit.to_string(),
        None => "closed its stdout without a handshake line".into(),
    }
}

fn pid_text(pid: &u32) -> String {
    format!(" (process {pid}: is it still running?)")
}

fn tail(stderr_tail: &str) -> String {
    if stderr_tail.trim().is_empty() {
        String::new()
    } else {
        format!("; plugin stderr ends with:\n{}", stderr_tail.trim_end())
    }
}

/// What to check for a refused handshake line, by what was wrong with it.
fn handshake_hint(err: &ParseError) -> &'static str {
    match err {
        ParseError::FieldCount { .. }
        | ParseError::TooLong { .. }
        | ParseError::NotUtf8 { .. }
        | ParseError::MultipleLines { .. }
        | ParseError::Empty => {
            "; is it a go-plugin plugin, and does it print to stdout before its handshake?"
        }
        _ => "",
    }
}

fn status_text(status: &Option<Box<tonic::Status>>) -> String {
    status
        .as_ref()
        .map(|s| format!("; the call failed with {:?}: {}", s.code(), s.message()))
        .unwrap_or_default()
}

fn hint_text(hint: &Option<&'static str>) -> String {
    hint.map(|h| format!(" (likely cause: {h})"))
        .unwrap_or_default()
}

impl Error {
    pub(crate) fn from_connect(addr: &dyn std::fmt::Display, err: impl Into<Cause>) -> Error {
        let source = err.into();
        let hint = typed_hint(&*source, Stage::Connect);
        Error::Connect {
            addr: addr.to_string(),
            source,
            hint,
        }
    }

    pub(crate) fn from_status(status: tonic::Status) -> Error {
        let hint = std::error::Error::source(&status)
            .and_then(|source| typed_hint(source, Stage::Call))
            .or_else(|| tls_hint(status.message()));
        Error::Rpc {
            status: Box::new(status),
            hint,
        }
    }

    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { context, source }
    }
}

impl From<tonic::Status> for Error {
    /// An RPC failure, with a hint when it looks like a TLS problem.
    fn from(status: tonic::Status) -> Error {
        Error::from_status(status)
    }
}

#[cfg(test)]
mod tests {
    use super::hint::cause;
    use super::*;

    fn tcp_addr() -> rpcplugin_transport::Addr {
        rpcplugin_transport::Addr::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 10000)))
    }

    #[test]
    fn a_connect_failure_keeps_its_typed_cause() {
        use rustls::AlertDescription as Alert;
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(Alert::BadCertificate),
        );
        let err = Error::from_connect(&tcp_addr(), tls);
        let source = std::error::Error::source(&err).expect("a source");
        let io = source.downcast_ref::<io::Error>().expect("the io::Error");
        let rustls = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
        assert_eq!(
            rustls,
            Some(&rustls::Error::AlertReceived(Alert::BadCertificate))
        );
        assert!(matches!(
            err,
            Error::Connect {
                hint: Some(cause::WRONG_CERT),
                ..
            }
        ));

        // An HTTP/2 handshake failure stays an h2::Error.
        let err = Error::from_connect(&tcp_addr(), h2::Error::from(h2::Reason::PROTOCOL_ERROR));
        let source = std::error::Error::source(&err).expect("a source");
        assert!(source.downcast_ref::<h2::Error>().is_some(), "{err:?}");
    }

    #[test]
    fn messages_carry_the_stderr_tail() {
        use std::os::unix::process::ExitStatusExt;
        let err = Error::PluginExited {
            exit: Some(crate::client::PluginExit::Status(
                std::process::ExitStatus::from_raw(3 << 8),
            )),
            stderr_tail: "boom\n".into(),
        };
        assert_eq!(
            err.to_string(),
            "plugin exited before its handshake (exit status: 3); plugin stderr ends with:\nboom"
        );
    }
}
