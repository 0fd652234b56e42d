//! The builder's call, keep-alive, broker, multiplexing and runner
//! options: how the host talks to a started plugin, apart from how it is
//! launched.

use super::ClientBuilder;
use crate::client::runner::Runner;
use std::time::Duration;

impl ClientBuilder {
    /// A deadline for every call on [`Client::channel`](crate::Client::channel) that does not set
    /// its own (tonic's `Endpoint::timeout`, sent as `grpc-timeout` so the
    /// plugin knows it too). A call past it fails with `DeadlineExceeded`.
    /// It runs until the response starts, so a stream may last longer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.channel.call.timeout = Some(timeout);
        self
    }

    /// Largest response message accepted on [`Client::channel`](crate::Client::channel), checked
    /// on the length the message declares before it is read; a larger one
    /// fails its call with `ResourceExhausted` (go-plugin:
    /// `grpc.MaxCallRecvMsgSize` in `GRPCDialOptions`). A generated
    /// client's own `max_decoding_message_size` applies as well.
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.channel.call.max_decoding_message_size = Some(limit);
        self
    }

    /// Runs `interceptor` on every call made through [`Client::channel`](crate::Client::channel)
    /// before it is sent: it may add metadata or refuse the call with a
    /// status (tonic's client `Interceptor`; go-plugin: interceptors in
    /// `GRPCDialOptions`). The host's own Shutdown and health calls go
    /// through it too; its stdio and broker streams do not. For tower
    /// layers, wrap the channel yourself:
    /// `tower::ServiceBuilder::new().layer(..).service(client.channel())`.
    ///
    /// ```
    /// let builder = rpcplugin_runtime::Client::builder("./plugin")
    ///     .interceptor(|mut req: tonic::Request<()>| {
    ///         req.metadata_mut().insert("x-request-origin", "host".parse().map_err(|_| tonic::Status::internal("bad value"))?);
    ///         Ok(req)
    ///     });
    /// ```
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

    /// Sends an HTTP/2 PING every `interval`, idle or not, and closes the
    /// connection when one is not answered within
    /// [`ClientBuilder::keep_alive_timeout`] (default 20 s); calls then
    /// fail with `Unavailable` ([`ChannelError::KeepaliveTimeout`](crate::ChannelError::KeepaliveTimeout)).
    /// Off by default: a plugin that exits closes its socket, which the
    /// host notices at once; keep-alive finds a plugin that is stopped or
    /// stuck (tonic's `Endpoint::http2_keep_alive_interval`).
    pub fn http2_keep_alive_interval(mut self, interval: Duration) -> Self {
        self.channel.keepalive_interval = Some(interval);
        self
    }

    /// How long a keep-alive PING may wait for its answer (default 20 s).
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.channel.keepalive_timeout = Some(timeout);
        self
    }

    /// How long this host's broker waits for the plugin's announcement of
    /// an id in [`Broker::dial`](crate::Broker::dial) and for connecting,
    /// and how long an unclaimed announcement is kept (default
    /// [`BROKER_TIMEOUT`](crate::BROKER_TIMEOUT), 5 s, as go-plugin).
    pub fn broker_timeout(mut self, timeout: Duration) -> Self {
        self.broker_timeout = Some(timeout);
        self
    }

    /// Asks the plugin to multiplex the broker (go-plugin's
    /// `GRPCBrokerMultiplex`; default off): the host makes one connection
    /// to the plugin and runs the main gRPC connection and every brokered
    /// connection as yamux streams on it, so a plugin that cannot open
    /// sockets the host can reach still serves brokered servers. A plugin
    /// that does not support it fails the start with
    /// [`ParseError::MultiplexNotSupported`](rpcplugin_handshake::ParseError::MultiplexNotSupported).
    /// As in go-plugin, brokered streams are set up one at a time: after
    /// `accept_and_serve` on one side, let the other side dial before the
    /// next `accept_and_serve`.
    ///
    /// ```
    /// let builder = rpcplugin_runtime::Client::builder("./plugin").multiplex(true);
    /// ```
    pub fn multiplex(mut self, multiplex: bool) -> Self {
        self.multiplex = multiplex;
        self
    }

    /// Starts the plugin through `runner` (a wrapper command and a
    /// translation of the address it announces; go-plugin's `RunnerFunc`)
    /// instead of directly. Not combinable with
    /// [`ClientBuilder::checksum_sha256`]: the wrapper, not this host,
    /// executes the plugin.
    ///
    /// ```
    /// use rpcplugin_runtime::{Client, Runner};
    /// let builder = Client::builder("./plugin")
    ///     .runner(Runner::private_tmp())
    ///     .multiplex(true);
    /// ```
    pub fn runner(mut self, runner: Runner) -> Self {
        self.runner = Some(runner);
        self
    }
}
