//! The plugin follows its host: when the process that launched it dies
//! (even by SIGKILL, which lets it clean up nothing), the plugin notices
//! that it was re-parented and shuts down gracefully instead of lingering.
//! go-plugin plugins do not do this (go-plugin issue #210).
//!
//! Polling the parent pid is deliberate: `PR_SET_PDEATHSIG` on the plugin
//! itself fires when the *thread* that forked it exits, and a Go host forks
//! from whichever runtime thread it is on, so it would stop healthy plugins.

use crate::shutdown::Shutdown;
use std::time::Duration;

/// How often the plugin checks its parent.
pub(crate) const PARENT_POLL: Duration = Duration::from_millis(500);

/// The process that launched this one, read before the handshake: once the
/// handshake is out, a host killed at once could already be gone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parent(#[cfg(unix)] Option<rustix::process::Pid>);

impl Parent {
    pub(crate) fn now() -> Parent {
        #[cfg(unix)]
        {
            Parent(rustix::process::getppid())
        }
        #[cfg(not(unix))]
        {
            Parent()
        }
    }
}

/// Triggers `shutdown` once `parent` is gone. Does nothing when the
/// plugin's parent is init (pid 1), as for a host that is a container's
/// first process: nothing to follow.
pub(crate) fn follow_parent(parent: Parent, shutdown: Shutdown) {
    #[cfg(unix)]
    {
        let Some(parent) = parent.0 else {
            return;
        };
        if parent == rustix::process::Pid::INIT {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PARENT_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = shutdown.wait() => return,
                }
                if rustix::process::getppid() != Some(parent) {
                    tracing::debug!(
                        parent = parent.as_raw_nonzero().get(),
                        "the host process is gone: shutting down"
                    );
                    shutdown.trigger();
                    return;
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (parent, shutdown);
}
