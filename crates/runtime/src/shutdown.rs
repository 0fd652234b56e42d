//! A one-way shutdown signal shared by the server, its services and the broker.

use tokio::sync::watch;

/// Fires once; every clone sees it.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl Shutdown {
    pub(crate) fn new() -> Shutdown {
        Shutdown {
            tx: std::sync::Arc::new(watch::channel(false).0),
        }
    }

    /// Requests shutdown. Idempotent.
    pub(crate) fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub(crate) fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once shutdown was requested.
    pub(crate) async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // An error means the sender is gone, which cannot happen while we hold it.
        let _ = rx.wait_for(|fired| *fired).await;
    }
}
