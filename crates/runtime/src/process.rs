//! Process control for launched plugins: die with the host, own process
//! group, signals. Reaping is the exit watcher's job (`client::exit`).

use rustix::process::{Pid, Signal};
use tokio::process::Command;

pub(crate) use rustix::process::Signal as Sig;

/// SIGKILL, for [`signal`].
pub(crate) const SIGKILL: Sig = Signal::KILL;

/// On Linux, asks the kernel to SIGKILL the plugin when the host dies
/// (go-plugin #210), so a crashed host leaves no orphans.
///
/// The signal is tied to the thread that spawned the child; tokio worker
/// threads live as long as the runtime, so spawn plugins from async tasks,
/// not from `spawn_blocking`.
#[allow(unsafe_code)]
pub(crate) fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        let parent = rustix::process::getpid();
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe system calls (prctl, getppid); it allocates
        // nothing on success.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // The host may have died before prctl took effect.
                if rustix::process::getppid() != Some(parent) {
                    return Err(std::io::Error::other(
                        "host exited while starting the plugin",
                    ));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// Starts the plugin as the leader of a process group of its own, so that
/// stopping it also stops what it started and left running: a grandchild
/// holding the plugin's stdout or stderr open would otherwise outlive it.
/// (Terminal signals such as Ctrl-C then reach only the host, which is what
/// go-plugin plugins expect: they ignore SIGINT.)
pub(crate) fn own_process_group(cmd: &mut Command) {
    #[cfg(unix)]
    cmd.process_group(0);
    #[cfg(not(unix))]
    let _ = cmd;
}

/// SIGKILLs every process in the group led by `leader` (the plugin's pid),
/// if any is left. Called right after the leader is reaped too: the kernel
/// does not reuse a pid as long as a process group carries it.
pub(crate) fn kill_group(leader: Option<u32>) {
    if let Some(pgid) = leader.and_then(pid)
        && pgid != Pid::INIT
    {
        let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
    }
}

/// Sends `sig` to `pid`; false when there is no such process.
pub(crate) fn signal(target: u32, sig: Sig) -> bool {
    pid(target).is_some_and(|p| p != Pid::INIT && rustix::process::kill_process(p, sig).is_ok())
}

/// Whether a process with this id exists (signal 0).
pub(crate) fn alive(target: u32) -> bool {
    pid(target).is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

fn pid(raw: u32) -> Option<Pid> {
    i32::try_from(raw).ok().and_then(Pid::from_raw)
}
#[cfg(test)]
mod tests {
    use crate::{Client, ClientTls, Error, PluginExit};
    use std::time::{Duration, Instant};

    /// Gone, or a zombie waiting for a reaper that is not us.
    fn gone(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    == Some("Z")
            }
        }
    }

    /// Starts a shell "plugin" running `script`, which first starts a
    /// grandchild (`sleep`) that inherits its stdout and stderr. Returns the
    /// error, how long it took, and whether the grandchild was gone within
    /// 2 s.
    async fn start_with_grandchild(script: &str) -> (Error, Duration, bool) {
        let pid_file = tempfile::NamedTempFile::new().unwrap();
        let started = Instant::now();
        let result = Client::builder("/bin/sh")
            .arg("-c")
            .arg(format!("sleep 30 & echo $! > \"$PID_FILE\"; {script}"))
            .env("PID_FILE", pid_file.path())
            .cookie("RPCPLUGIN_PROCESS_TEST", "1")
            .tls(ClientTls::Disabled)
            .start_timeout(Duration::from_secs(30))
            .start()
            .await;
        let took = started.elapsed();
        let Err(err) = result else {
            panic!("the shell started as a plugin")
        };
        let text = std::fs::read_to_string(pid_file.path()).unwrap();
        let pid: u32 = text.trim().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while !gone(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (err, took, gone(pid))
    }

    #[tokio::test]
    async fn an_exit_before_the_handshake_is_seen_while_a_grandchild_holds_stdout() {
        let (err, took, grandchild_gone) = start_with_grandchild("exit 5").await;
        assert!(
            matches!(&err, Error::PluginExited { exit: Some(PluginExit::Status(s)), .. } if s.code() == Some(5)),
            "{err:?}"
        );
        assert!(
            took < Duration::from_secs(10),
            "took {took:?}: not the 30 s start timeout"
        );
        assert!(grandchild_gone, "the grandchild outlived the failed start");
    }

    #[tokio::test]
    async fn a_failed_start_also_kills_what_the_plugin_started() {
        let (err, took, grandchild_gone) =
            start_with_grandchild("echo not-a-handshake; sleep 30").await;
        assert!(matches!(err, Error::InvalidHandshake { .. }), "{err:?}");
        assert!(
            took < Duration::from_secs(10),
            "took {took:?}: not the 30 s start timeout"
        );
        assert!(grandchild_gone, "the grandchild outlived the failed start");
    }
}
