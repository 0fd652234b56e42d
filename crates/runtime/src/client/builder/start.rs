//! [`ClientBuilder::start`]: launch, handshake, connect and health check,
//! each step in its own span; a failed start stops what it started.

use super::{ClientBuilder, ClientTls};
use crate::client::connect::{self, Offer};
use crate::client::exit::{ExitWatch, KILL_BOUND, WatchLabel};
use crate::client::launch::{self, Program};
use crate::client::relay::{self, Tail};
use crate::client::runner::Runner;
use crate::client::{Client, Launched, Stops};
use crate::error::Error;
use crate::shutdown::Shutdown;
use rpcplugin_certs::Identity;
use rpcplugin_handshake::{HandshakeLine, ParseOptions};
use rpcplugin_transport::ListenConfig;
use std::time::Instant;
use tokio::io::BufReader;
use tracing::Instrument;

impl ClientBuilder {
    /// Launches the plugin and connects to it.
    pub async fn start(self) -> Result<Client, Error> {
        let name = self.log_name.clone().unwrap_or_else(|| {
            self.command
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "plugin".into())
        });
        let span = tracing::debug_span!("plugin_start", plugin = %name);
        self.start_named(name).instrument(span).await
    }

    async fn start_named(mut self, name: String) -> Result<Client, Error> {
        let started = Instant::now();
        let cookie = self.cookie.clone().ok_or_else(|| {
            Error::Config("the host has no magic cookie: call .cookie(key, value)".into())
        })?;
        if self.versions.is_empty() {
            return Err(Error::Config("the host offers no protocol version".into()));
        }
        if self.runner.is_some() && self.checksum.is_some() {
            return Err(Error::Config(
                "a runner executes the plugin itself, so its checksum cannot be enforced: \
                 use either runner or checksum_sha256"
                    .into(),
            ));
        }
        let program = match &self.checksum {
            Some(expected) => {
                let path = launch::child_path(&self.env, self.skip_host_env);
                Program::verified(&self.command, path.as_deref(), expected)?
            }
            None => Program::unchecked(&self.command),
        };
        // One span per start step (keygen, spawn, handshake, connect,
        // health_check), so a subscriber can time the real launch path.
        let identity = match &self.tls {
            ClientTls::Auto(key_type) => {
                let _step = tracing::debug_span!("keygen").entered();
                Some(Identity::generate(*key_type)?)
            }
            _ => None,
        };
        let socket_dir = match &self.socket_base {
            Some(base) => rpcplugin_transport::private_dir_in(base, self.socket_group.as_deref())?,
            None => rpcplugin_transport::private_dir(self.socket_group.as_deref())?,
        };
        let shutdown = Shutdown::new();
        let mut child = {
            let _step = tracing::debug_span!("spawn").entered();
            self.spawn(&program, &cookie, identity.as_ref(), socket_dir.path())?
        };
        drop(program);
        let pid = child.id();
        tracing::debug!(
            pid,
            runner = self.runner.as_ref().map(Runner::name),
            "spawned"
        );
        let tail = Tail::default();
        let mut tasks = Vec::new();
        let stderr_task = child.stderr.take().map(|stderr| {
            tokio::spawn(relay::relay_stderr(
                stderr,
                name.clone(),
                tail.clone(),
                self.raw_stderr.clone(),
            ))
        });
        let stdout = child.stdout.take();
        let watch = ExitWatch::child(
            child,
            WatchLabel {
                plugin: name.clone(),
                tail: tail.clone(),
            },
        );
        let Some(stdout) = stdout else {
            watch.kill(KILL_BOUND).await;
            return Err(Error::io("reading the plugin's stdout")(
                std::io::Error::other("no stdout pipe"),
            ));
        };
        let mut stdout = BufReader::new(stdout);
        let (line, stderr_task) =
            launch::read_handshake(&watch, &mut stdout, self.start_timeout, &tail, stderr_task)
                .instrument(tracing::debug_span!("handshake"))
                .await?;
        tasks.extend(stderr_task);
        tasks.push(tokio::spawn(relay::drain(stdout)));
        tracing::debug!(line = %abbreviate(line.trim_end()), "handshake received");

        let socket_dir_path = socket_dir.path().to_path_buf();
        let launched = Launched {
            watch,
            _socket_dir: socket_dir,
        };
        let parse = ParseOptions::new().multiplex_requested(self.multiplex);
        let hs = match HandshakeLine::parse_with(line.as_bytes(), parse) {
            Ok(hs) => hs,
            Err(source) => {
                let err = Error::InvalidHandshake {
                    source,
                    stderr_tail: tail.text(),
                };
                return Err(launched.fail(tasks, err).await);
            }
        };
        let offer = Offer {
            versions: &self.versions,
            tls: &self.tls,
            identity,
            connect_timeout: self.connect_timeout,
            listen: ListenConfig {
                socket_group: self.socket_group.clone(),
                socket_dir: Some(socket_dir_path.clone()),
                ..ListenConfig::default()
            },
            multiplex: self.multiplex,
            runner: self.runner.clone().map(|runner| (runner, pid)),
        };
        let connected = match connect::connect(hs, offer, shutdown.clone())
            .instrument(tracing::debug_span!("connect"))
            .await
        {
            Ok(connected) => connected,
            Err(err) => return Err(launched.fail(tasks, err).await),
        };
        tracing::debug!(addr = %connected.addr, version = connected.handshake.app_version, "connected");
        let client = Client::assemble(
            connected,
            (launched.watch, Some(launched._socket_dir)),
            tail,
            tasks,
            shutdown,
            Stops {
                shutdown_timeout: self.shutdown_timeout,
                kill_grace: self.kill_grace,
                keep_running: false,
            },
            (self.stdout.take(), self.stderr.take()),
        );
        let mut client = client;
        if let Some(timeout) = self.broker_timeout {
            client.broker.set_timeout(timeout);
        }
        client.channel = self.channel.apply(&client.channel);
        if self.health_check
            && let Err(err) = client
                .ping_with_timeout(self.connect_timeout)
                .instrument(tracing::debug_span!("health_check"))
                .await
        {
            if matches!(err, Error::Unhealthy(_)) {
                // It answers: it can take the Shutdown call and exit.
                let _ = client.kill().await;
            } else {
                // Unreachable (e.g. it refused our certificate): a Shutdown
                // call cannot arrive, so waiting for a graceful exit only
                // delays the error.
                client.abort().await;
            }
            return Err(err);
        }
        tracing::debug!(elapsed = ?started.elapsed(), "plugin started");
        Ok(client)
    }
}

/// The handshake line for a debug log: the certificate field shortened.
fn abbreviate(line: &str) -> String {
    let mut fields: Vec<String> = line.split('|').map(str::to_owned).collect();
    if let Some(cert) = fields.get_mut(5)
        && cert.len() > 24
    {
        *cert = format!(
            "{}…({} chars)",
            cert.get(..16).unwrap_or_default(),
            cert.len()
        );
    }
    fields.join("|")
}
