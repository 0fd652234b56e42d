//! gRPC server settings a plugin author may change, applied as tonic's
//! `Server::builder()` applies them. Layers and the message limit wrap the
//! author's own services only: go-plugin's services (health, controller,
//! stdio, broker) keep their fixed 4 MiB limit and see no user layer.

use crate::channel::frames::PrefixScan;
use bytes::Bytes;
use http_body::Frame;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tonic::service::Routes;
use tonic::transport::Server;

/// Wraps the author's routes in one layer.
pub(super) type RouterLayer = Box<dyn FnOnce(axum::Router) -> axum::Router + Send>;

/// What [`PluginServer`](super::PluginServer)'s gRPC settings hold.
#[derive(Default)]
pub(super) struct ServerOptions {
    pub(super) timeout: Option<Duration>,
    pub(super) concurrency_limit: Option<usize>,
    pub(super) max_concurrent_streams: Option<u32>,
    pub(super) keepalive_interval: Option<Duration>,
    pub(super) keepalive_timeout: Option<Duration>,
    pub(super) max_connection_age: Option<Duration>,
    pub(super) max_decoding_message_size: Option<usize>,
    pub(super) broker_timeout: Option<Duration>,
    /// In the order they were added; the first is the outermost.
    pub(super) layers: Vec<RouterLayer>,
}

impl ServerOptions {
    /// A tonic server builder with these settings.
    pub(super) fn server(&self) -> Server {
        let mut server = Server::builder()
            .max_concurrent_streams(self.max_concurrent_streams)
            .http2_keepalive_interval(self.keepalive_interval)
            .http2_keepalive_timeout(self.keepalive_timeout);
        if let Some(timeout) = self.timeout {
            server = server.timeout(timeout);
        }
        if let Some(limit) = self.concurrency_limit {
            server = server.concurrency_limit_per_connection(limit);
        }
        if let Some(age) = self.max_connection_age {
            server = server.max_connection_age(age);
        }
        server
    }

    /// The author's routes inside the message limit and the layers.
    pub(super) fn wrap(&mut self, routes: Routes) -> Routes {
        let layers = std::mem::take(&mut self.layers);
        if layers.is_empty() && self.max_decoding_message_size.is_none() {
            return routes;
        }
        let mut router = routes.into_axum_router();
        if let Some(limit) = self.max_decoding_message_size {
            router = router.layer(tower::util::MapRequestLayer::new(
                move |req: http::Request<axum::body::Body>| {
                    req.map(|body| axum::body::Body::new(LimitedBody::new(body, limit)))
                },
            ));
        }
        // axum's last layer is the outermost; tonic's first is.
        for layer in layers.into_iter().rev() {
            router = layer(router);
        }
        Routes::from(router)
    }
}

/// A request body that fails with `ResourceExhausted` as soon as a message
/// declares a length over the limit, before the message is buffered.
struct LimitedBody {
    inner: axum::body::Body,
    scan: PrefixScan,
    refused: bool,
}

impl LimitedBody {
    fn new(inner: axum::body::Body, limit: usize) -> LimitedBody {
        LimitedBody {
            inner,
            scan: PrefixScan::new(limit),
            refused: false,
        }
    }
}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if self.refused {
            return Poll::Ready(None);
        }
        let frame = match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(err)) => return Poll::Ready(Some(Err(tonic::Status::from_error(err.into())))),
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref()
            && let Err(declared) = self.scan.feed(data)
        {
            self.refused = true;
            return Poll::Ready(Some(Err(self.scan.refusal(declared, "decoded"))));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.refused || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
