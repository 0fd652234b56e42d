//! [`Runner`]: starting a plugin other than as a plain local child (inside
//! a namespace, a sandbox or a container, through a wrapper command), with
//! the translation of the address it announces (go-plugin's `RunnerFunc`
//! and `runner.AddrTranslator`).

use crate::error::Error;
use rpcplugin_transport::Addr;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::process::Command;

/// Maps the address a plugin announced (valid where the plugin runs) to one
/// this host can dial, given the plugin's process id.
type Translate = dyn Fn(&Addr, u32) -> Result<Addr, Error> + Send + Sync;

/// How the host starts the plugin when it does not run it directly: a
/// wrapper command placed before the plugin's own, and a translation of
/// the address the plugin announces (go-plugin's `RunnerFunc` with an
/// `AddrTranslator`'s `PluginToHost`).
///
/// The wrapper must end by executing the plugin in the same process
/// (`exec`), so that the process the host watches, signals and reaps is
/// the plugin itself. Brokered addresses are not translated: a plugin
/// that cannot reach the host's sockets (or the other way round) needs
/// [`ClientBuilder::multiplex`](super::ClientBuilder::multiplex), which
/// carries every brokered connection over the one translated address.
///
/// ```
/// use rpcplugin_runtime::Runner;
/// // The plugin under `env -i`, its address used as announced.
/// let runner = Runner::wrap(["env", "-i", "--"]);
/// let builder = rpcplugin_runtime::Client::builder("./plugin").runner(runner);
/// ```
#[derive(Clone)]
pub struct Runner {
    wrapper: Vec<OsString>,
    translate: Option<Arc<Translate>>,
    name: String,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("name", &self.name)
            .field("wrapper", &self.wrapper)
            .finish_non_exhaustive()
    }
}

/// The shell step of [`Runner::private_tmp`]: the plugin's executable
/// opened first (it may itself live under `/tmp`, a checkout there, say),
/// a private tmpfs on `/tmp`, the socket directory made again inside it,
/// then the plugin executed through its open descriptor.
const PRIVATE_TMP_SCRIPT: &str = "plugin=$1; shift; exec 9<\"$plugin\" \
     && mount -t tmpfs -o mode=1777 tmpfs /tmp \
     && mkdir -p -m 0700 \"$PLUGIN_UNIX_SOCKET_DIR\" \
     && exec /proc/self/fd/9 \"$@\"";

impl Runner {
    /// Runs the plugin as `wrapper... plugin args...`; the announced
    /// address is dialled as it is.
    pub fn wrap<I, S>(wrapper: I) -> Runner
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let wrapper: Vec<OsString> = wrapper.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let name = wrapper
            .first()
            .map(|w| w.to_string_lossy().into_owned())
            .unwrap_or_default();
        Runner {
            wrapper,
            translate: None,
            name,
        }
    }

    /// Translates the announced address (go-plugin's `PluginToHost`); the
    /// function gets the address and the plugin's process id.
    pub fn plugin_to_host(
        mut self,
        translate: impl Fn(&Addr, u32) -> Result<Addr, Error> + Send + Sync + 'static,
    ) -> Runner {
        self.translate = Some(Arc::new(translate));
        self
    }

    /// The plugin in its own user and mount namespaces (`unshare -rm`, no
    /// privilege needed where unprivileged user namespaces are allowed)
    /// with a private, empty `/tmp`: nothing it creates there is visible
    /// to the host by path, and nothing of the host's `/tmp` (the host's
    /// brokered sockets included) is visible to it. The host reaches the
    /// plugin's unix socket through the plugin's root
    /// (`/proc/PID/root/...`), the one address it translates.
    ///
    /// The socket directory must be under `/tmp` (the default), and unix
    /// sockets only (a TCP plugin would share the host's network). Without
    /// [`ClientBuilder::multiplex`](super::ClientBuilder::multiplex), the
    /// plugin cannot dial the host's brokered servers.
    pub fn private_tmp() -> Runner {
        let mut runner = Runner::wrap([
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "--",
            "sh",
            "-c",
            PRIVATE_TMP_SCRIPT,
            "sh",
        ])
        .plugin_to_host(|addr, pid| match addr {
            Addr::Unix(path) => {
                let mut through_root = PathBuf::from(format!("/proc/{pid}/root"));
                through_root.push(path.strip_prefix("/").unwrap_or(path));
                Ok(Addr::Unix(through_root))
            }
            Addr::Tcp(_) => Err(Error::Config(
                "Runner::private_tmp serves unix sockets only: a TCP plugin shares the host's network"
                    .into(),
            )),
        });
        runner.name = "unshare (private /tmp)".into();
        runner
    }

    /// What the runner is called in logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command that starts `program` (already resolved) through the
    /// wrapper; without a wrapper, the program itself.
    pub(crate) fn command(&self, program: &OsStr) -> Command {
        match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// The address to dial for what the plugin (process `pid`) announced.
    pub(crate) fn translate(&self, addr: Addr, pid: Option<u32>) -> Result<Addr, Error> {
        match (&self.translate, pid) {
            (Some(translate), Some(pid)) => {
                let host = translate(&addr, pid)?;
                tracing::debug!(runner = %self.name, plugin = %addr, host = %host, "address translated");
                Ok(host)
            }
            _ => Ok(addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_tmp_dials_through_the_plugins_root() {
        let runner = Runner::private_tmp();
        let addr = Addr::Unix("/tmp/rpcplugin-x/plugin1".into());
        assert_eq!(
            runner.translate(addr, Some(42)).unwrap(),
            Addr::Unix("/proc/42/root/tmp/rpcplugin-x/plugin1".into())
        );
        let tcp = Addr::Tcp("127.0.0.1:10000".parse().unwrap());
        assert!(matches!(
            runner.translate(tcp, Some(42)),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn the_wrapper_comes_before_the_plugin() {
        let cmd = Runner::wrap(["env", "--"]).command(OsStr::new("/bin/plugin"));
        let std = cmd.as_std();
        assert_eq!(std.get_program(), "env");
        let args: Vec<_> = std.get_args().collect();
        assert_eq!(args, ["--", "/bin/plugin"]);
    }
}
