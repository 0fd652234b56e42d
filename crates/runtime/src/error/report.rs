//! `Debug` for [`Error`]: its message and causes, so that an error
//! returned from `main` reads as a sentence; `{:#?}` is the variant and its
//! fields.

use super::Error;
use std::fmt;

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return self.fields(f);
        }
        let message = self.to_string();
        f.write_str(&message)?;
        let mut source = std::error::Error::source(self);
        let mut first = true;
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                f.write_str(if first { "\n\nCaused by:" } else { "" })?;
                write!(f, "\n    {text}")?;
                first = false;
            }
            source = cause.source();
        }
        Ok(())
    }
}

impl Error {
    /// The variant and its fields, for `{:#?}`.
    fn fields(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cookie(e) => f.debug_tuple("Cookie").field(e).finish(),
            Error::Config(e) => f.debug_tuple("Config").field(e).finish(),
            Error::ClientCertEnv(e) => f.debug_tuple("ClientCertEnv").field(e).finish(),
            Error::Io { context, source } => f
                .debug_struct("Io")
                .field("context", context)
                .field("source", source)
                .finish(),
            Error::Serve(e) => f.debug_tuple("Serve").field(e).finish(),
            Error::Transport(e) => f.debug_tuple("Transport").field(e).finish(),
            Error::Certs(e) => f.debug_tuple("Certs").field(e).finish(),
            Error::ChecksumMismatch {
                path,
                expected,
                actual,
            } => f
                .debug_struct("ChecksumMismatch")
                .field("path", path)
                .field("expected", expected)
                .field("actual", actual)
                .finish(),
            Error::Spawn { command, source } => f
                .debug_struct("Spawn")
                .field("command", command)
                .field("source", source)
                .finish(),
            Error::StartTimeout {
                timeout,
                stderr_tail,
            } => f
                .debug_struct("StartTimeout")
                .field("timeout", timeout)
                .field("stderr_tail", stderr_tail)
                .finish(),
            Error::PluginExited { exit, stderr_tail } => f
                .debug_struct("PluginExited")
                .field("exit", exit)
                .field("stderr_tail", stderr_tail)
                .finish(),
            Error::CookieRejected { stderr_tail } => f
                .debug_struct("CookieRejected")
                .field("stderr_tail", stderr_tail)
                .finish(),
            Error::InvalidHandshake {
                source,
                stderr_tail,
            } => f
                .debug_struct("InvalidHandshake")
                .field("source", source)
                .field("stderr_tail", stderr_tail)
                .finish(),
            Error::IncompatibleCoreVersion { plugin, host } => f
                .debug_struct("IncompatibleCoreVersion")
                .field("plugin", plugin)
                .field("host", host)
                .finish(),
            Error::IncompatibleVersion { plugin, host } => f
                .debug_struct("IncompatibleVersion")
                .field("plugin", plugin)
                .field("host", host)
                .finish(),
            Error::UnsupportedProtocol { protocol } => f
                .debug_struct("UnsupportedProtocol")
                .field("protocol", protocol)
                .finish(),
            Error::MissingServerCert => f.write_str("MissingServerCert"),
            Error::UnexpectedServerCert => f.write_str("UnexpectedServerCert"),
            Error::Connect { addr, source, hint } => f
                .debug_struct("Connect")
                .field("addr", addr)
                .field("source", source)
                .field("hint", hint)
                .finish(),
            Error::BrokerTimeout { id, timeout } => f
                .debug_struct("BrokerTimeout")
                .field("id", id)
                .field("timeout", timeout)
                .finish(),
            Error::ConnectTimeout { addr, timeout } => f
                .debug_struct("ConnectTimeout")
                .field("addr", addr)
                .field("timeout", timeout)
                .finish(),
            Error::Unhealthy(e) => f.debug_tuple("Unhealthy").field(e).finish(),
            Error::Rpc { status, hint } => f
                .debug_struct("Rpc")
                .field("status", status)
                .field("hint", hint)
                .finish(),
            Error::PluginGone {
                exit,
                stderr_tail,
                status,
            } => f
                .debug_struct("PluginGone")
                .field("exit", exit)
                .field("stderr_tail", stderr_tail)
                .field("status", status)
                .finish(),
            Error::Reattach { pid, source } => f
                .debug_struct("Reattach")
                .field("pid", pid)
                .field("source", source)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpcplugin_transport::Addr;
    use std::io;

    #[test]
    fn debug_is_the_message_and_its_causes() {
        let spawn = Error::Spawn {
            command: "./missing-plugin".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        // The message already quotes its cause: nothing more to list.
        assert_eq!(format!("{spawn:?}"), spawn.to_string());
        assert!(format!("{spawn:#?}").starts_with("Spawn {"));

        let reattach = Error::Reattach {
            pid: 4242,
            source: Box::new(Error::from_connect(
                &Addr::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 10000))),
                io::Error::from(io::ErrorKind::ConnectionRefused),
            )),
        };
        let text = format!("{reattach:?}");
        assert!(
            text.starts_with("cannot reattach to plugin (process 4242: is it still running?): cannot connect to plugin at 127.0.0.1:10000"),
            "{text}"
        );
        assert!(
            text.contains("likely cause: the plugin is no longer listening"),
            "{text}"
        );
        assert!(!text.contains("Reattach {"), "{text}");
        // The cause is the connect error itself, typed.
        let source = std::error::Error::source(&reattach).expect("a source");
        assert!(matches!(
            source.downcast_ref::<Error>(),
            Some(Error::Connect { .. })
        ));
    }

    #[test]
    fn causes_the_message_does_not_quote_are_listed() {
        let err = Error::PluginGone {
            exit: crate::client::PluginExit::Stopped,
            stderr_tail: String::new(),
            status: Some(Box::new(tonic::Status::unavailable("connection closed"))),
        };
        let text = format!("{err:?}");
        let (message, causes) = text.split_once("\n\nCaused by:\n    ").expect(&text);
        assert_eq!(message, err.to_string());
        assert!(causes.contains("connection closed"), "{text}");
    }
}
