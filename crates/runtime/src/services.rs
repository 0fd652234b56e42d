//! The services every plugin serves besides its own: gRPC health and
//! go-plugin's controller.

use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::health_server::Health;
use crate::proto::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use crate::proto::plugin::Empty;
use crate::proto::plugin::grpc_controller_server::GrpcController;
use crate::shutdown::Shutdown;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// The service name go-plugin hosts check.
pub const PLUGIN_HEALTH_SERVICE: &str = "plugin";

/// Sets what the plugin's health service reports.
///
/// Services `"plugin"` and `""` start as SERVING. A plugin that cannot work
/// (lost a backend, say) can report NOT_SERVING, which a host sees on its
/// next health check.
///
/// ```
/// use rpcplugin_runtime::HealthReporter;
/// let health = HealthReporter::new();
/// assert!(health.is_serving("plugin"));
/// health.set_serving("plugin", false);
/// assert!(!health.is_serving("plugin"));
/// ```
#[derive(Debug, Clone)]
pub struct HealthReporter {
    statuses: Arc<watch::Sender<HashMap<String, bool>>>,
}

impl Default for HealthReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthReporter {
    /// A reporter with `"plugin"` and `""` SERVING.
    pub fn new() -> HealthReporter {
        let initial = HashMap::from([
            (PLUGIN_HEALTH_SERVICE.to_owned(), true),
            (String::new(), true),
        ]);
        HealthReporter {
            statuses: Arc::new(watch::channel(initial).0),
        }
    }

    /// Marks `service` as serving or not serving.
    pub fn set_serving(&self, service: &str, serving: bool) {
        self.statuses.send_modify(|map| {
            map.insert(service.to_owned(), serving);
        });
    }

    /// Whether `service` is known and serving.
    pub fn is_serving(&self, service: &str) -> bool {
        self.statuses
            .borrow()
            .get(service)
            .copied()
            .unwrap_or(false)
    }

    fn status(&self, service: &str) -> Option<ServingStatus> {
        self.statuses.borrow().get(service).map(|serving| {
            if *serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        })
    }
}

pub(crate) struct HealthService {
    pub(crate) reporter: HealthReporter,
    pub(crate) shutdown: Shutdown,
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        match self.reporter.status(&service) {
            Some(status) => Ok(Response::new(HealthCheckResponse {
                status: status.into(),
            })),
            // Not echoed: the name is the caller's, of any size (grpc-go
            // answers the same).
            None => Err(Status::not_found("unknown service")),
        }
    }

    async fn list(
        &self,
        _: Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Status> {
        let statuses = self
            .reporter
            .statuses
            .borrow()
            .keys()
            .filter_map(|name| {
                self.reporter
                    .status(name)
                    .map(|s| (name.clone(), HealthCheckResponse { status: s.into() }))
            })
            .collect();
        Ok(Response::new(HealthListResponse { statuses }))
    }

    type WatchStream = ResponseStream<HealthCheckResponse>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        let reporter = self.reporter.clone();
        let shutdown = self.shutdown.clone();
        let mut rx = reporter.statuses.subscribe();
        let stream = async_stream(move |tx| async move {
            loop {
                let status = reporter
                    .status(&service)
                    .unwrap_or(ServingStatus::ServiceUnknown);
                if tx
                    .send(Ok(HealthCheckResponse {
                        status: status.into(),
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return },
                    () = shutdown.wait() => return,
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// A response stream fed by a spawned task through a small channel.
pub(crate) fn async_stream<T, F, Fut>(body: F) -> ResponseStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// `plugin.GRPCController`: Shutdown answers, then stops the server.
pub(crate) struct ControllerService {
    pub(crate) shutdown: Shutdown,
}

#[tonic::async_trait]
impl GrpcController for ControllerService {
    async fn shutdown(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::debug!("shutdown requested by the host");
        // The server drains gracefully, so this response still goes out.
        self.shutdown.trigger();
        Ok(Response::new(Empty {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_service_name_is_not_echoed() {
        let health = HealthService {
            reporter: HealthReporter::new(),
            shutdown: Shutdown::new(),
        };
        let name = "x".repeat(1 << 20);
        let status = health
            .check(Request::new(HealthCheckRequest { service: name }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(
            status.message().len() < 256,
            "{} bytes",
            status.message().len()
        );
    }
}
