//! Process control for launched plugins: die with the host, stop gracefully,
//! never leave a zombie.

use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::{Child, Command};

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
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe system calls (prctl, getppid); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The host may have died before prctl took effect.
                if libc::getppid() as u32 != parent {
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

/// SIGKILLs the child and everything left in its process group, at once.
pub(crate) fn kill_now(child: &mut Child) {
    kill_group(child.id());
    let _ = child.start_kill();
}

/// SIGKILLs every process in the group led by `leader` (the plugin's pid),
/// if any is left. Called right after the leader is reaped too: the kernel
/// does not reuse a pid as long as a process group carries it.
#[allow(unsafe_code)]
pub(crate) fn kill_group(leader: Option<u32>) {
    #[cfg(unix)]
    if let Some(pgid) = leader.and_then(|pid| i32::try_from(pid).ok())
        && pgid > 1
    {
        // SAFETY: kill(2) takes plain integers and touches no memory.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = leader;
}

/// Waits up to `grace` for the child to exit, then SIGKILLs and reaps it;
/// either way, SIGKILLs what it left in its process group.
pub(crate) async fn stop_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let leader = child.id();
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(Ok(status)) => Some(status),
        _ => {
            tracing::warn!(
                pid = child.id(),
                "plugin failed to exit gracefully; killing it"
            );
            kill_now(child);
            child.wait().await.ok()
        }
    };
    kill_group(leader);
    status
}

/// For a reattached plugin (not our child): waits up to `grace` for `pid`
/// to go away, then SIGKILLs it.
pub(crate) async fn stop_pid(pid: u32, grace: Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    while alive(pid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if alive(pid) {
        tracing::warn!(
            pid,
            "reattached plugin failed to exit gracefully; killing it"
        );
        signal(pid, libc::SIGKILL);
    }
}

#[allow(unsafe_code)]
fn signal(pid: u32, sig: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Whether a process with this id exists (signal 0).
pub(crate) fn alive(pid: u32) -> bool {
    signal(pid, 0)
}

#[cfg(test)]
mod tests {
    use crate::{Client, ClientTls, Error};
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
            matches!(&err, Error::PluginExited { status, .. } if status == "exit status: 5"),
            "{err:?}"
        );
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert!(grandchild_gone, "the grandchild outlived the failed start");
    }

    #[tokio::test]
    async fn a_failed_start_also_kills_what_the_plugin_started() {
        let (err, took, grandchild_gone) =
            start_with_grandchild("echo not-a-handshake; sleep 30").await;
        assert!(matches!(err, Error::InvalidHandshake { .. }), "{err:?}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert!(grandchild_gone, "the grandchild outlived the failed start");
    }
}
