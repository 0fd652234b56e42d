//! A KV plugin on go-plugin's example protocol (cookie BASIC_PLUGIN=hello,
//! version 1), servable to Go, Python and Rust hosts.
//!
//! Knobs, read from the environment (which hosts pass on to plugins):
//! - `RPCPLUGIN_KV_TRANSPORT`: `unix` (default) or `tcp`;
//! - `RPCPLUGIN_KV_SERVER_KEY_TYPE`: AutoMTLS key type (`p256` default,
//!   `p384`, `p521`, `rsa2048`, ...);
//! - `RPCPLUGIN_KV_TLS_CERT`, `RPCPLUGIN_KV_TLS_KEY`, `RPCPLUGIN_KV_TLS_CA`:
//!   manual TLS instead of AutoMTLS (PEM files: our cert and key, and the CA
//!   that signed the host's cert).

use rpcplugin::{Identity, KeyType, PeerTrust, PluginServer, Routes, Transport};
use rpcplugin_kv::MemoryKv;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut server = PluginServer::new("BASIC_PLUGIN", "hello")
        .version(1, |_ctx| Routes::new(MemoryKv::default().into_service()));
    match configure(server) {
        Ok(configured) => server = configured,
        Err(err) => {
            eprintln!("kv-plugin: {err}");
            return ExitCode::FAILURE;
        }
    }
    server.run()
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
