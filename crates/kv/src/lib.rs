//! The KV example service (package `proto`, service `KV`) that go-plugin's
//! `examples/grpc` and tofusoup's cross-language tests speak, with an
//! in-memory implementation.
//!
//! Regenerate the code with `cargo xtask codegen`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use rpcplugin_kv::{MemoryKv, proto::{GetRequest, PutRequest, kv_server::Kv}};
//! let kv = MemoryKv::default();
//! kv.put(tonic::Request::new(PutRequest { key: "a".into(), value: b"1".to_vec().into() })).await.unwrap();
//! let got = kv.get(tonic::Request::new(GetRequest { key: "a".into() })).await.unwrap();
//! assert_eq!(&got.into_inner().value[..], b"1");
//! # }
//! ```

#![warn(unreachable_pub)]

use rpcplugin::{Identity, KeyType, Network, PeerTrust, PluginServer, Routes};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

/// Generated messages, client and server for `proto.KV`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod proto {
    include!("generated/proto.rs");
}

use proto::kv_server::{Kv, KvServer};
use proto::{Empty, GetRequest, GetResponse, PutRequest};

/// Largest message the KV server accepts or sends: 256 MiB, the limit every
/// KV plugin of the cross-language matrix sets (`peers/CONTRACT.md`; the Go
/// peer sets the same). A bounded receive limit matters: tonic reserves the
/// size a message's length prefix declares before the bytes arrive.
pub const MAX_MESSAGE_SIZE: usize = 256 << 20;

/// An in-memory KV store; clones share the same map.
#[derive(Debug, Clone, Default)]
pub struct MemoryKv {
    map: Arc<Mutex<HashMap<String, prost::bytes::Bytes>>>,
}

impl MemoryKv {
    /// The gRPC service for this store, with [`MAX_MESSAGE_SIZE`] limits.
    ///
    /// ```
    /// let service = rpcplugin_kv::MemoryKv::default().into_service();
    /// let _routes = tonic::service::Routes::new(service);
    /// ```
    pub fn into_service(self) -> KvServer<MemoryKv> {
        KvServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }
}

#[tonic::async_trait]
impl Kv for MemoryKv {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let key = request.into_inner().key;
        let value = self
            .map
            .lock()
            .map_err(|_| Status::internal("store lock poisoned"))?
            .get(&key)
            .cloned();
        tracing::debug!(key, found = value.is_some(), "get");
        match value {
            Some(value) => Ok(Response::new(GetResponse { value })),
            None => Err(Status::not_found(format!("no value for key {key:?}"))),
        }
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<Empty>, Status> {
        let PutRequest { key, value } = request.into_inner();
        tracing::debug!(key, bytes = value.len(), "put");
        self.map
            .lock()
            .map_err(|_| Status::internal("store lock poisoned"))?
            .insert(key, value);
        Ok(Response::new(Empty {}))
    }
}

/// The KV plugin of the cross-language matrix (`peers/CONTRACT.md`): cookie
/// `BASIC_PLUGIN=hello`, version 1, configured from the environment its
/// host passes on:
/// - `RPCPLUGIN_KV_TRANSPORT`: `unix` (default) or `tcp`;
/// - `RPCPLUGIN_KV_SERVER_KEY_TYPE`: AutoMTLS key type (`p256` default, `p384`, `p521`, `rsa2048`...);
/// - `RPCPLUGIN_KV_TLS_CERT`, `RPCPLUGIN_KV_TLS_KEY`, `RPCPLUGIN_KV_TLS_CA`: manual TLS (PEM files:
///   the plugin's certificate and key, and the CA that signed the host's certificate).
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     match rpcplugin_kv::plugin_from_env() {
///         Ok(plugin) => plugin.run(),
///         Err(err) => {
///             eprintln!("{err}");
///             std::process::ExitCode::FAILURE
///         }
///     }
/// }
/// ```
pub fn plugin_from_env() -> Result<PluginServer, Box<dyn std::error::Error + Send + Sync>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut server = PluginServer::new("BASIC_PLUGIN", "hello")
        .version(1, |_ctx| Routes::new(MemoryKv::default().into_service()));
    if let Some(transport) = var("RPCPLUGIN_KV_TRANSPORT") {
        server = server.transport(transport.trim().to_ascii_lowercase().parse::<Network>()?);
    }
    if let Some(key_type) = var("RPCPLUGIN_KV_SERVER_KEY_TYPE") {
        server = server.key_type(key_type.parse::<KeyType>()?);
    }
    if let (Some(cert), Some(key), Some(ca)) = (
        var("RPCPLUGIN_KV_TLS_CERT"),
        var("RPCPLUGIN_KV_TLS_KEY"),
        var("RPCPLUGIN_KV_TLS_CA"),
    ) {
        let identity = Identity::from_files(cert.as_ref(), key.as_ref())?;
        let roots = rpcplugin::parse_certs_pem(&std::fs::read(&ca)?)?;
        server = server.manual_tls(identity, PeerTrust::Roots(roots));
    }
    Ok(server)
}
