//! The broker's multiplexed flow (go-plugin's `GRPCBrokerMultiplex`): a
//! brokered server takes the peer's streams for its id; a dial knocks,
//! waits for the ack and opens a stream, one id at a time.

use super::Broker;
use crate::channel::PluginChannel;
use crate::conn::{self, TlsInfoSlot};
use crate::error::Error;
use crate::mux::Muxer;
use crate::proto::plugin::ConnInfo;
use crate::proto::plugin::conn_info::Knock;
use std::time::Duration;
use tonic::service::Routes;
use tonic::transport::Server;

impl Broker {
    /// Serves `routes` on the streams the peer opens after knocking for
    /// `id`. Nothing is announced: the peer learns the id from the app.
    pub(super) fn serve_muxed(&self, mux: &Muxer, id: u32, routes: Routes, server: Server) {
        let tls = self.inner.tls.as_ref().map(|t| t.server.clone());
        let server = crate::mux::serve::serve_brokered(
            mux,
            id,
            routes,
            server,
            tls,
            self.inner.shutdown.clone(),
        );
        self.track(server);
        tracing::debug!(id, "multiplexed brokered server ready");
    }

    /// Answers the peer's knock for `id`: the next stream it opens goes to
    /// that id's server, or the ack carries why not.
    pub(super) fn answer_knock(&self, mux: &Muxer, id: u32) {
        let error = mux.accept_knock(id).err().unwrap_or_default();
        if !error.is_empty() {
            tracing::debug!(id, %error, "knock refused");
        }
        self.send(knock(id, true, error));
    }

    /// Knocks for `id`, waits up to `timeout` for the ack, opens a stream
    /// and runs TLS (when on) and HTTP/2 over it.
    pub(super) async fn dial_muxed(
        &self,
        mux: &Muxer,
        id: u32,
        timeout: Duration,
    ) -> Result<PluginChannel, Error> {
        let label = || format!("multiplexed broker id {id}");
        let refused = |reason: String| Error::Connect {
            addr: label(),
            source: reason.into(),
            hint: Some("the peer has not called accept_and_serve with this id"),
        };
        let stream = {
            let _one_at_a_time = mux.dial_lock().await;
            self.send(knock(id, false, String::new()));
            // A knock nobody answers is the broker timeout of this id.
            let ack = self.wait_for(id, timeout).await?;
            match ack.knock {
                Some(k) if k.knock && k.ack && k.error.is_empty() => {}
                Some(k) if k.knock && k.ack => {
                    return Err(refused(format!("failed to knock for id {id}: {}", k.error)));
                }
                other => {
                    return Err(refused(format!(
                        "handshake failed for multiplexing on id {id}; expected knock and ack, got {other:?}"
                    )));
                }
            }
            mux.open()
                .await
                .map_err(|err| Error::from_connect(&label(), err))?
        };
        let tls = self.inner.tls.as_ref().map(|t| t.client.clone());
        conn::connect_over(
            label(),
            std::future::ready(Ok(stream)),
            tls,
            TlsInfoSlot::default(),
            timeout,
        )
        .await
    }
}

fn knock(id: u32, ack: bool, error: String) -> ConnInfo {
    ConnInfo {
        service_id: id,
        network: String::new(),
        address: String::new(),
        knock: Some(Knock {
            knock: true,
            ack,
            error,
        }),
    }
}
