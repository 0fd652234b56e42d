//! A plugin served inside the current process, with a real [`Client`]
//! connected to it: go-plugin's `TestPluginGRPCConn`, for plugin authors'
//! tests. Same AutoMTLS (fresh certificates pinned both ways), health,
//! controller, stdio and broker services as a launched plugin, over a real
//! private unix socket; no process, no cookie, no handshake line on stdout.

use super::PluginServer;
use super::prepare::HostOffer;
use super::serve::run_server;
use crate::client::Client;
use crate::error::Error;
use rpcplugin_certs::{Identity, KeyType};
use rpcplugin_handshake as handshake;
use rpcplugin_transport::ListenConfig;

impl PluginServer {
    /// Serves this plugin in the current process and returns a [`Client`]
    /// connected to it, as a host would be: the way to test a plugin's
    /// services end to end without building and spawning its binary.
    ///
    /// The highest version the server offers is served. The server does not
    /// install its log subscriber or touch the process's stdio. Stop it with
    /// [`Client::kill`] (the Shutdown call); dropping the client stops it
    /// too. Call from within a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rpcplugin_runtime::Error> {
    /// use rpcplugin_runtime::PluginServer;
    /// use tonic::service::Routes;
    ///
    /// let mut client = PluginServer::new("TEST_COOKIE", "1")
    ///     .version(1, |_ctx| Routes::default())
    ///     .start_in_process()
    ///     .await?;
    /// client.ping().await?;
    /// assert!(client.tls_info().is_some());
    /// client.kill().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start_in_process(mut self) -> Result<Client, Error> {
        self.logging = None;
        let host = Identity::generate(KeyType::EcP256)?;
        let versions: Vec<u32> = self.versions.keys().copied().collect();
        let offer = HostOffer {
            versions: handshake::format_protocol_versions(&versions),
            client_cert_pem: Some(host.cert_pem()),
            listen: ListenConfig {
                transport: self.transport,
                ..ListenConfig::default()
            },
            capture_stdio: false,
            multiplex: false,
        };
        let prepared = self.prepare(offer)?;
        let line = prepared.handshake_line(None);
        let shutdown = prepared.shutdown.clone();
        let task = tokio::spawn(run_server(prepared));
        Client::in_process(line, host, shutdown, task).await
    }
}
