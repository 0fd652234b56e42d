//! A KV plugin on go-plugin's example protocol (cookie BASIC_PLUGIN=hello,
//! version 1), servable to Go, Python and Rust hosts: the Rust plugin of the
//! cross-language matrix.
//!
//! The plugin itself is a few lines (see `rpcplugin_kv::plugin_from_env`):
//!
//! ```ignore
//! PluginServer::new("BASIC_PLUGIN", "hello")
//!     .version(1, |_ctx| Routes::new(MemoryKv::default().into_service()))
//!     .run()
//! ```
//!
//! plus knobs read from the environment (which hosts pass on to plugins):
//! `RPCPLUGIN_KV_TRANSPORT` (unix|tcp), `RPCPLUGIN_KV_SERVER_KEY_TYPE`
//! (AutoMTLS key type), and `RPCPLUGIN_KV_TLS_{CERT,KEY,CA}` (manual TLS).

use std::process::ExitCode;

fn main() -> ExitCode {
    match rpcplugin_kv::plugin_from_env() {
        Ok(plugin) => plugin.run(),
        Err(err) => {
            eprintln!("kv-plugin: {err}");
            ExitCode::FAILURE
        }
    }
}
