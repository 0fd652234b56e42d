//! Stopping plugins from anywhere: [`StopHandle`] for one plugin and
//! [`ClientSet`] for every plugin a host started (go-plugin's `Managed`
//! clients and `CleanupClients`).

use super::Stops;
use super::exit::{ExitWatch, KILL_BOUND, PluginExit};
use crate::proto::plugin::grpc_controller_client::GrpcControllerClient;
use std::sync::{Arc, Mutex};
use tonic::transport::Channel;

/// Stops one plugin gracefully from anywhere: cheap to clone, usable while
/// the [`Client`](super::Client) is in use elsewhere. Get one from
/// [`Client::stop_handle`](super::Client::stop_handle).
#[derive(Debug, Clone)]
pub struct StopHandle {
    pub(super) watch: ExitWatch,
    pub(super) channel: Channel,
    pub(super) stops: Stops,
}

impl StopHandle {
    /// Stops the plugin as [`Client::kill`](super::Client::kill) does: the
    /// Shutdown call (bounded), the exit grace period, then SIGKILL; the
    /// process is reaped. Returns how it ended (`None` for a reattached
    /// test plugin, which is left running, or if it could not be reaped).
    pub async fn stop(&self) -> Option<PluginExit> {
        if self.stops.keep_running {
            return None;
        }
        self.watch.expect_exit();
        if self.watch.exit().is_none() {
            let mut controller = GrpcControllerClient::new(self.channel.clone());
            let call = controller.shutdown(crate::proto::plugin::Empty {});
            match tokio::time::timeout(self.stops.shutdown_timeout, call).await {
                Err(_) => tracing::debug!("Shutdown call did not answer in time"),
                Ok(Err(status)) => tracing::debug!(%status, "Shutdown call failed"),
                Ok(Ok(_)) => {}
            }
        }
        let exit = self.watch.stop(self.stops.kill_grace).await;
        if exit.is_none() {
            tracing::warn!(
                pid = self.watch.pid_of(),
                "plugin process not reaped {KILL_BOUND:?} after SIGKILL"
            );
        }
        exit
    }

    /// How the plugin ended, once it has.
    pub fn exit(&self) -> Option<PluginExit> {
        self.watch.exit()
    }
}

/// The plugins a host manages, stopped together at exit: go-plugin's
/// `Managed: true` clients and `CleanupClients()`.
///
/// Register each client with [`ClientSet::manage`]; before the host exits,
/// [`ClientSet::stop_all`] stops every one that is still running, all at
/// once, each with its Shutdown call first and bounded by its client's
/// timeouts. (Dropping a [`Client`](super::Client) SIGKILLs its plugin with
/// no Shutdown call; a set is how a host gives every plugin a clean stop.)
///
/// ```no_run
/// # async fn demo() -> Result<(), rpcplugin_runtime::Error> {
/// use rpcplugin_runtime::{Client, ClientSet};
/// let plugins = ClientSet::new();
/// let a = Client::builder("./plugin-a").cookie("K", "v").start().await?;
/// plugins.manage(&a);
/// let b = Client::builder("./plugin-b").cookie("K", "v").start().await?;
/// plugins.manage(&b);
/// // ... use a and b, hand them to other tasks ...
/// plugins.stop_all().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientSet {
    handles: Arc<Mutex<Vec<StopHandle>>>,
}

impl ClientSet {
    /// An empty set.
    pub fn new() -> ClientSet {
        ClientSet::default()
    }

    /// Adds a plugin to the set.
    pub fn manage(&self, client: &super::Client) {
        if let Ok(mut handles) = self.handles.lock() {
            handles.retain(|h| h.exit().is_none());
            handles.push(client.stop_handle());
        }
    }

    /// How many managed plugins are still running.
    pub fn running(&self) -> usize {
        self.handles
            .lock()
            .map(|h| h.iter().filter(|h| h.exit().is_none()).count())
            .unwrap_or(0)
    }

    /// Stops every managed plugin that is still running, concurrently, and
    /// empties the set. Returns how each of them ended.
    pub async fn stop_all(&self) -> Vec<Option<PluginExit>> {
        let handles = self
            .handles
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        let stops = handles
            .iter()
            .filter(|h| h.exit().is_none())
            .map(StopHandle::stop);
        futures::future::join_all(stops).await
    }
}
