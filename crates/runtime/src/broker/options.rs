//! [`DialOptions`]: how [`Broker::dial_with_options`](super::Broker::dial_with_options)
//! waits, connects and sets up the channel it returns (go-plugin's
//! `GRPCBroker.DialWithOptions` with `grpc.DialOption`s).

use crate::channel::ChannelSettings;
use std::time::Duration;

/// Settings for one brokered dial.
///
/// ```
/// use rpcplugin_runtime::DialOptions;
/// use std::time::Duration;
///
/// let options = DialOptions::new()
///     .connect_timeout(Duration::from_secs(10))
///     .timeout(Duration::from_secs(30))
///     .max_decoding_message_size(16 << 20);
/// ```
#[derive(Debug, Clone, Default)]
pub struct DialOptions {
    pub(super) connect_timeout: Option<Duration>,
    pub(super) channel: ChannelSettings,
}

impl DialOptions {
    /// The defaults: the broker's timeout (5 s unless set with
    /// `ClientBuilder::broker_timeout` or `PluginServer::broker_timeout`),
    /// no call settings.
    pub fn new() -> DialOptions {
        DialOptions::default()
    }

    /// How long to wait for the peer's announcement of the id, and then how
    /// long connecting (dial, TLS and HTTP/2 handshakes) may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// A deadline for every call on the channel that does not set its own
    /// (as `ClientBuilder::timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.channel.call.timeout = Some(timeout);
        self
    }

    /// Largest response message accepted, by its declared length
    /// (as `ClientBuilder::max_decoding_message_size`).
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.channel.call.max_decoding_message_size = Some(limit);
        self
    }

    /// Runs `interceptor` on every call before it is sent (as
    /// `ClientBuilder::interceptor`).
    pub fn interceptor<F>(mut self, interceptor: F) -> Self
    where
        F: Fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>
            + Send
            + Sync
            + 'static,
    {
        self.channel.set_interceptor(interceptor);
        self
    }

    /// HTTP/2 keep-alive PINGs every `interval` (as
    /// `ClientBuilder::http2_keep_alive_interval`).
    pub fn http2_keep_alive_interval(mut self, interval: Duration) -> Self {
        self.channel.keepalive_interval = Some(interval);
        self
    }

    /// How long a keep-alive PING may wait for its answer (default 20 s).
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.channel.keepalive_timeout = Some(timeout);
        self
    }
}
