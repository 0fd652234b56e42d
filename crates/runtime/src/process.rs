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

/// Waits up to `grace` for the child to exit, then SIGKILLs and reaps it.
pub(crate) async fn stop_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(Ok(status)) => Some(status),
        _ => {
            tracing::warn!(
                pid = child.id(),
                "plugin failed to exit gracefully; killing it"
            );
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    }
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
