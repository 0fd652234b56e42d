//! Why a call on a [`PluginChannel`](super::PluginChannel) failed before the
//! plugin answered, and the gRPC status each cause becomes.

use std::sync::Arc;
use std::time::Duration;
use tonic::{Code, Status};

/// A call on a [`PluginChannel`](super::PluginChannel) that failed on this
/// side of the connection.
///
/// Generated clients see it as the [`source`](std::error::Error::source) of
/// the [`tonic::Status`] they return:
///
/// ```no_run
/// # fn demo(status: tonic::Status) {
/// use rpcplugin_runtime::ChannelError;
/// let cause = std::error::Error::source(&status)
///     .and_then(|source| source.downcast_ref::<ChannelError>());
/// if let Some(ChannelError::Closed { .. }) = cause {
///     eprintln!("the plugin connection is gone: {status}");
/// }
/// # }
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The HTTP/2 connection to the plugin has ended: no call on this
    /// channel can succeed any more (there is no reconnect). Status code
    /// `Unavailable`.
    #[error(
        "the connection to the plugin at {addr} is closed{}; no call on this channel can succeed (did the plugin exit? Client::explain names its exit)",
        cause_text(.cause)
    )]
    Closed {
        /// The plugin's address.
        addr: String,
        /// What ended the connection, when it ended with an error.
        #[source]
        cause: Option<Arc<h2::Error>>,
    },
    /// One call failed while the connection stayed up (its stream was
    /// reset, for one). The status code follows the HTTP/2 error code as
    /// gRPC maps it (`CANCEL` is `Cancelled`, `REFUSED_STREAM` is
    /// `Unavailable`, ...).
    #[error("a call to the plugin at {addr} failed: {source}")]
    Call {
        /// The plugin's address.
        addr: String,
        /// The HTTP/2 failure.
        source: h2::Error,
    },
    /// The call's deadline (`grpc-timeout`, from
    /// [`tonic::Request::set_timeout`]) passed before the plugin answered.
    /// Status code `DeadlineExceeded`.
    #[error("the plugin did not answer within the call's deadline of {timeout:?}")]
    DeadlineExceeded {
        /// The deadline the request carried.
        timeout: Duration,
    },
    /// The plugin did not answer a keep-alive PING in time, so the host
    /// closed the connection (see
    /// [`ClientBuilder::http2_keep_alive_interval`](crate::ClientBuilder::http2_keep_alive_interval)).
    /// Status code `Unavailable`.
    #[error(
        "the plugin at {addr} did not answer a keep-alive ping within {timeout:?}; the connection was closed (is the plugin process stopped or stuck?)"
    )]
    KeepaliveTimeout {
        /// The plugin's address.
        addr: String,
        /// How long the ping waited.
        timeout: Duration,
    },
}

fn cause_text(cause: &Option<Arc<h2::Error>>) -> String {
    cause
        .as_ref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

impl ChannelError {
    /// The gRPC status a generated client returns for this failure, with
    /// this error as its source.
    pub(crate) fn into_status(self) -> Status {
        let code = match &self {
            ChannelError::Closed { .. } | ChannelError::KeepaliveTimeout { .. } => {
                Code::Unavailable
            }
            ChannelError::DeadlineExceeded { .. } => Code::DeadlineExceeded,
            ChannelError::Call { source, .. } => code_of(source.reason()),
        };
        let mut status = Status::new(code, self.to_string());
        status.set_source(Arc::new(self));
        status
    }
}

/// gRPC's status code for a stream the HTTP/2 layer ended with `reason`
/// (gRPC's "HTTP/2 transport mapping").
fn code_of(reason: Option<h2::Reason>) -> Code {
    use h2::Reason as R;
    match reason {
        Some(
            R::NO_ERROR
            | R::PROTOCOL_ERROR
            | R::INTERNAL_ERROR
            | R::FLOW_CONTROL_ERROR
            | R::SETTINGS_TIMEOUT
            | R::FRAME_SIZE_ERROR
            | R::COMPRESSION_ERROR
            | R::CONNECT_ERROR,
        ) => Code::Internal,
        Some(R::REFUSED_STREAM) => Code::Unavailable,
        Some(R::CANCEL) => Code::Cancelled,
        Some(R::ENHANCE_YOUR_CALM) => Code::ResourceExhausted,
        Some(R::INADEQUATE_SECURITY) => Code::PermissionDenied,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_sources() {
        let closed = ChannelError::Closed {
            addr: "unix:/tmp/x".into(),
            cause: None,
        }
        .into_status();
        assert_eq!(closed.code(), Code::Unavailable);
        assert!(closed.message().contains("unix:/tmp/x is closed"));
        let source =
            std::error::Error::source(&closed).and_then(|s| s.downcast_ref::<ChannelError>());
        assert!(matches!(source, Some(ChannelError::Closed { .. })));

        let late = ChannelError::DeadlineExceeded {
            timeout: Duration::from_millis(5),
        }
        .into_status();
        assert_eq!(late.code(), Code::DeadlineExceeded);

        let reset = ChannelError::Call {
            addr: "unix:/tmp/x".into(),
            source: h2::Error::from(h2::Reason::REFUSED_STREAM),
        }
        .into_status();
        assert_eq!(reset.code(), Code::Unavailable);
        assert_eq!(code_of(Some(h2::Reason::CANCEL)), Code::Cancelled);
        assert_eq!(code_of(Some(h2::Reason::PROTOCOL_ERROR)), Code::Internal);
        assert_eq!(code_of(None), Code::Unknown);
    }
}
