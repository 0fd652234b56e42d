//! Spawning the plugin process: its command (direct or through a
//! runner), its environment in go-plugin's order of precedence, and the
//! protocol's own variables set last.

use super::ClientBuilder;
use crate::client::launch::{self, Program};
use crate::error::Error;
use rpcplugin_certs::Identity;
use rpcplugin_handshake::{self as handshake, MagicCookie, env};
use std::path::Path;
use std::process::Stdio;
use tokio::process::Command;

impl ClientBuilder {
    pub(super) fn spawn(
        &mut self,
        program: &Program,
        cookie: &MagicCookie,
        identity: Option<&Identity>,
        socket_dir: &Path,
    ) -> Result<tokio::process::Child, Error> {
        let mut cmd = match &self.runner {
            Some(runner) => runner.command(program.named.as_os_str()),
            None => program.command(),
        };
        cmd.args(&self.args).env_clear();
        // go-plugin's precedence: caller's vars, then the host's environment,
        // then the protocol's own variables.
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if !self.skip_host_env {
            cmd.envs(std::env::vars_os());
        }
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        if let Some(hook) = self.hook.take() {
            hook(cmd.as_std_mut());
        }
        protocol_settings(&mut cmd, self, cookie, identity, socket_dir);
        crate::process::die_with_parent(&mut cmd);
        crate::process::own_process_group(&mut cmd);
        launch::keep_descriptor(&mut cmd, program);
        cmd.spawn().map_err(|source| Error::Spawn {
            command: program.named.clone(),
            source,
        })
    }
}

/// What the protocol needs, set last so that nothing overrides it.
fn protocol_settings(
    cmd: &mut Command,
    b: &ClientBuilder,
    cookie: &MagicCookie,
    identity: Option<&Identity>,
    socket_dir: &Path,
) {
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .env(&cookie.key, &cookie.value)
        .env(env::PLUGIN_MIN_PORT, b.ports.0.to_string())
        .env(env::PLUGIN_MAX_PORT, b.ports.1.to_string())
        .env(
            env::PLUGIN_PROTOCOL_VERSIONS,
            handshake::format_protocol_versions(&b.versions),
        )
        .env(env::PLUGIN_UNIX_SOCKET_DIR, socket_dir);
    match b.multiplex {
        true => cmd.env(env::PLUGIN_MULTIPLEX_GRPC, "true"),
        false => cmd.env_remove(env::PLUGIN_MULTIPLEX_GRPC),
    };
    match identity {
        Some(identity) => cmd.env(env::PLUGIN_CLIENT_CERT, identity.cert_pem()),
        None => cmd.env_remove(env::PLUGIN_CLIENT_CERT),
    };
    match &b.socket_group {
        Some(group) => cmd.env(env::PLUGIN_UNIX_SOCKET_GROUP, group),
        None => cmd.env_remove(env::PLUGIN_UNIX_SOCKET_GROUP),
    };
}
