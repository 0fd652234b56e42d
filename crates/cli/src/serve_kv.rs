//! `rpcplugin serve-kv`: the KV example plugin, built into the command so a
//! host author can test against a Rust plugin without building one.
//!
//! It reads the matrix's knobs from the environment its host passes on:
//! `RPCPLUGIN_KV_TRANSPORT` (unix|tcp), `RPCPLUGIN_KV_SERVER_KEY_TYPE`, and
//! `RPCPLUGIN_KV_TLS_{CERT,KEY,CA}` for manual TLS.

use rpcplugin::{Identity, KeyType, PeerTrust, PluginServer, Routes, Transport};
use rpcplugin_kv::MemoryKv;
use std::process::ExitCode;

pub(crate) async fn run() -> ExitCode {
    let server = PluginServer::new("BASIC_PLUGIN", "hello")
        .version(1, |_ctx| Routes::new(MemoryKv::default().into_service()));
    let server = match configure(server) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("rpcplugin serve-kv: {err}");
            return ExitCode::FAILURE;
        }
    };
    match server.serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

fn configure(mut server: PluginServer) -> Result<PluginServer, Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(transport) = var("RPCPLUGIN_KV_TRANSPORT") {
        server = server.transport(transport.parse::<Transport>()?);
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
        let roots = rpcplugin::certs::parse_certs_pem(&std::fs::read(&ca)?)?;
        server = server.manual_tls(identity, PeerTrust::Roots(roots));
    }
    Ok(server)
}
