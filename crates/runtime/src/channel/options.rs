//! What a host can set on its channel: a default deadline, a response
//! message limit and an interceptor for each call, and HTTP/2 keep-alive
//! pings for the connection (tonic's `Endpoint` settings, go-plugin's
//! `GRPCDialOptions`).

use super::{ConnState, PluginChannel};
use http::Request;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tonic::Status;
use tonic::body::Body;
use tonic::metadata::MetadataMap;

/// A function that sees, and may change or refuse, each call's metadata
/// before it is sent (tonic's client `Interceptor`).
pub(crate) type Interceptor =
    Arc<dyn Fn(tonic::Request<()>) -> Result<tonic::Request<()>, Status> + Send + Sync>;

/// Per-call settings a channel applies.
#[derive(Clone, Default)]
pub(crate) struct CallOptions {
    /// The deadline of calls that carry none (`grpc-timeout`).
    pub(crate) timeout: Option<Duration>,
    /// Largest response message accepted, by its declared length.
    pub(crate) max_decoding_message_size: Option<usize>,
    pub(crate) interceptor: Option<Interceptor>,
}

impl fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallOptions")
            .field("timeout", &self.timeout)
            .field("max_decoding_message_size", &self.max_decoding_message_size)
            .field("interceptor", &self.interceptor.is_some())
            .finish()
    }
}

impl CallOptions {
    /// Whether any setting is made (an empty set costs nothing per call).
    pub(crate) fn is_empty(&self) -> bool {
        self.timeout.is_none()
            && self.max_decoding_message_size.is_none()
            && self.interceptor.is_none()
    }

    /// Runs the interceptor on the request's metadata and extensions.
    pub(crate) fn intercept(&self, req: Request<Body>) -> Result<Request<Body>, Status> {
        let Some(interceptor) = &self.interceptor else {
            return Ok(req);
        };
        let (mut parts, body) = req.into_parts();
        let call = tonic::Request::from_parts(
            MetadataMap::from_headers(std::mem::take(&mut parts.headers)),
            std::mem::take(&mut parts.extensions),
            (),
        );
        let (metadata, extensions, ()) = interceptor(call)?.into_parts();
        parts.headers = metadata.into_headers();
        parts.extensions = extensions;
        Ok(Request::from_parts(parts, body))
    }
}

/// Everything a host sets on a channel it hands out: per-call settings
/// and keep-alive. Shared by `ClientBuilder` and the broker's
/// `DialOptions`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelSettings {
    pub(crate) call: CallOptions,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) keepalive_timeout: Option<Duration>,
}

impl ChannelSettings {
    pub(crate) fn set_interceptor<F>(&mut self, interceptor: F)
    where
        F: Fn(tonic::Request<()>) -> Result<tonic::Request<()>, Status> + Send + Sync + 'static,
    {
        self.call.interceptor = Some(Arc::new(interceptor));
    }

    /// Starts keep-alive on `channel`'s connection when set, and returns
    /// `channel` with the call settings.
    pub(crate) fn apply(&self, channel: &PluginChannel) -> PluginChannel {
        if let Some(interval) = self.keepalive_interval {
            channel.keep_alive(Keepalive {
                interval,
                timeout: self.keepalive_timeout.unwrap_or(DEFAULT_KEEPALIVE_TIMEOUT),
            });
        }
        channel.with_options(self.call.clone())
    }
}

/// How long a keep-alive PING waits for its answer unless set (tonic's
/// and hyper's default).
pub(crate) const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// HTTP/2 keep-alive: a PING after each `interval`, answered within
/// `timeout` or the connection is closed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keepalive {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
}

impl PluginChannel {
    /// This channel with `options` applied to every call made through it
    /// (and its clones); the connection is shared.
    pub(crate) fn with_options(&self, options: CallOptions) -> PluginChannel {
        PluginChannel {
            send: self.send.clone(),
            conn: self.conn.clone(),
            options: (!options.is_empty()).then(|| Arc::new(options)),
        }
    }

    /// Starts pinging the plugin; once a PING goes unanswered the
    /// connection is closed and every call fails with
    /// [`ChannelError::KeepaliveTimeout`](super::ChannelError::KeepaliveTimeout).
    /// Only the first call on a connection starts anything.
    pub(crate) fn keep_alive(&self, keepalive: Keepalive) {
        let pings = self
            .conn
            .ping_pong
            .lock()
            .ok()
            .and_then(|mut pings| pings.take());
        if let Some(pings) = pings {
            tokio::spawn(ping_loop(pings, self.conn.clone(), keepalive));
        }
    }
}

async fn ping_loop(mut pings: h2::PingPong, conn: Arc<ConnState>, keepalive: Keepalive) {
    loop {
        tokio::time::sleep(keepalive.interval).await;
        if conn.end.get().is_some() {
            return;
        }
        match tokio::time::timeout(keepalive.timeout, pings.ping(h2::Ping::opaque())).await {
            Ok(Ok(_pong)) => {}
            // The connection is gone already; its task records how.
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::warn!(
                    addr = %conn.addr,
                    timeout = ?keepalive.timeout,
                    "the plugin did not answer a keep-alive ping; closing the connection"
                );
                let _ = conn.keepalive_expired.set(keepalive.timeout);
                conn.abort.notify_one();
                return;
            }
        }
    }
}
