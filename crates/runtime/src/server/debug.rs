//! Debug (reattach) mode with a handle: the caller gets the reattach
//! configuration, can stop the server, and learns how serving ended.

use super::prepare::Prepared;
use super::serve::run_server;
use crate::error::Error;
use crate::reattach::ReattachConfig;
use crate::shutdown::Shutdown;
use tokio::task::JoinHandle;

/// A plugin serving in debug mode, started by
/// [`PluginServer::start_debug`](super::PluginServer::start_debug).
#[derive(Debug)]
pub struct DebugServer {
    config: ReattachConfig,
    shutdown: Shutdown,
    task: JoinHandle<Result<(), Error>>,
}

/// Stops a [`DebugServer`] from anywhere (a signal handler, another task).
#[derive(Debug, Clone)]
pub struct DebugStop(Shutdown);

impl DebugStop {
    /// Asks the server to stop: in-flight calls get the shutdown grace period.
    pub fn trigger(&self) {
        self.0.trigger();
    }
}

impl DebugServer {
    pub(super) fn spawn(prepared: Prepared, config: ReattachConfig) -> DebugServer {
        let shutdown = prepared.shutdown.clone();
        let task = tokio::spawn(run_server(prepared));
        DebugServer {
            config,
            shutdown,
            task,
        }
    }

    /// What a host needs to reattach (for Terraform and OpenTofu:
    /// [`ReattachConfig::tf_reattach_providers`]).
    pub fn reattach_config(&self) -> &ReattachConfig {
        &self.config
    }

    /// A handle that stops the server.
    pub fn stop_handle(&self) -> DebugStop {
        DebugStop(self.shutdown.clone())
    }

    /// Stops the server and waits until it has stopped.
    pub async fn stop(self) -> Result<(), Error> {
        self.shutdown.trigger();
        self.wait().await
    }

    /// Waits until the server stops (a host's Shutdown call, SIGTERM, or a
    /// [`DebugStop`]).
    pub async fn wait(self) -> Result<(), Error> {
        match self.task.await {
            Ok(served) => served,
            Err(err) => Err(Error::io("serving in debug mode")(std::io::Error::other(
                err.to_string(),
            ))),
        }
    }
}
