//! Brokered calls in both directions through a running plugin that speaks
//! the [`crate::keys`] commands: the plugin serves and the host dials, the
//! host serves and the plugin dials back. Used by the e2e tests and by the
//! matrix's multiplexing host (`rpcplugin-mux-host`).

use crate::keys;
use rpcplugin::{Client, PluginChannel, Routes};
use rpcplugin_kv::MemoryKv;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::kv_server::Kv;
use rpcplugin_kv::proto::{GetRequest, PutRequest};

/// Any failure of a brokered exchange, as text for a report.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn get(channel: PluginChannel, key: &str) -> Result<Vec<u8>, BoxError> {
    let value = KvClient::new(channel)
        .get(GetRequest { key: key.into() })
        .await?
        .into_inner()
        .value;
    Ok(value.to_vec())
}

/// Asks the plugin to serve a brokered server, dials it through the host's
/// broker and checks its greeting; returns the brokered channel.
pub async fn host_dials_plugin(client: &Client) -> Result<PluginChannel, BoxError> {
    let id = String::from_utf8(get(client.channel(), keys::SERVE_BROKER).await?)?;
    let id: u32 = id
        .parse()
        .map_err(|_| format!("the plugin answered {id:?}, not a broker id"))?;
    let brokered = client.broker().dial(id).await?;
    let greeting = get(brokered.clone(), keys::BROKERED_GREETING).await?;
    if greeting != keys::BROKERED_GREETING_VALUE.as_bytes() {
        return Err(format!(
            "the plugin's brokered server answered {:?}",
            String::from_utf8_lossy(&greeting)
        )
        .into());
    }
    Ok(brokered)
}

/// Serves a KV store on the host's broker under a fresh id; returns both.
pub async fn host_serves(client: &Client) -> Result<(u32, MemoryKv), BoxError> {
    let host_store = MemoryKv::default();
    let id = client.broker().next_id();
    client
        .broker()
        .accept_and_serve(id, Routes::new(host_store.clone().into_service()))
        .await?;
    Ok((id, host_store))
}

/// Asks the plugin to dial the host's brokered server `id` (serving
/// `host_store`) and write `message` there; checks it arrived.
pub async fn plugin_dials_host(
    client: &Client,
    id: u32,
    host_store: &MemoryKv,
    message: &str,
) -> Result<(), BoxError> {
    KvClient::new(client.channel())
        .put(PutRequest {
            key: format!("{}{id}", keys::BROKER_DIAL_PREFIX),
            value: message.as_bytes().to_vec().into(),
        })
        .await?;
    let stored = host_store
        .get(tonic::Request::new(GetRequest {
            key: keys::FROM_PLUGIN.into(),
        }))
        .await?
        .into_inner()
        .value;
    if stored != message.as_bytes() {
        return Err(format!(
            "the plugin wrote {:?} on the host's brokered server, want {message:?}",
            String::from_utf8_lossy(&stored)
        )
        .into());
    }
    Ok(())
}

/// One brokered call each way.
pub async fn both_ways(client: &Client, message: &str) -> Result<(), BoxError> {
    host_dials_plugin(client).await?;
    let (id, host_store) = host_serves(client).await?;
    plugin_dials_host(client, id, &host_store, message).await
}
