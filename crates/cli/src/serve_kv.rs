//! `rpcplugin serve-kv`: the KV example plugin, built into the command so a
//! host author can test against a Rust plugin without building one. Knobs as
//! for the matrix's plugin: see `rpcplugin_kv::plugin_from_env`.

use std::process::ExitCode;

pub(crate) async fn run() -> ExitCode {
    let result = match rpcplugin_kv::plugin_from_env() {
        Ok(plugin) => plugin.serve().await.map_err(|e| e.to_string()),
        Err(err) => Err(format!("rpcplugin serve-kv: {err}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}
