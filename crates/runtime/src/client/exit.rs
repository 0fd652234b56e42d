//! Watching a plugin process: one task owns the child, reaps it the moment
//! it exits, and publishes how it ended. Killing goes through the same task,
//! so every path that ends a plugin (kill, drop, failed start) reaps it.

use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::Child;
use tokio::sync::{mpsc, watch};

/// How a plugin process ended, as far as the host can know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginExit {
    /// A process this host launched ended with this status.
    Status(ExitStatus),
    /// A reattached process (not this host's child) is gone; its status is
    /// not available to this host.
    Gone,
    /// A plugin served in this process
    /// ([`PluginServer::start_in_process`](crate::PluginServer::start_in_process))
    /// stopped serving.
    Stopped,
}

impl std::fmt::Display for PluginExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginExit::Status(status) => f.write_str(&describe(*status)),
            PluginExit::Gone => f.write_str("process gone (reattached: exit status unknown)"),
            PluginExit::Stopped => f.write_str("in-process plugin stopped serving"),
        }
    }
}

/// `exit status: 3` or `killed by signal 9`.
pub(crate) fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    status.to_string()
}

enum Request {
    /// The host is stopping the plugin: an exit from now on is expected.
    Expect,
    /// SIGKILL the plugin and what is left in its process group.
    Kill,
}

/// A handle on the watcher task. Clones share the task; when every handle
/// is gone, the watcher kills a launched plugin (never a reattached one).
#[derive(Debug, Clone)]
pub(crate) struct ExitWatch {
    requests: mpsc::UnboundedSender<Request>,
    exit: watch::Receiver<Option<PluginExit>>,
    pid: Option<u32>,
}

/// What the watcher logs an exit as, and under which name.
#[derive(Debug, Clone)]
pub(crate) struct WatchLabel {
    pub(crate) plugin: String,
    pub(crate) tail: super::relay::Tail,
}

impl ExitWatch {
    /// Hands `child` to a new watcher task.
    pub(crate) fn child(child: Child, label: WatchLabel) -> ExitWatch {
        let pid = child.id();
        Self::spawn(pid, |rx, tx| watch_child(child, pid, rx, tx, label))
    }

    /// Polls `pid` (not our child: a reattached plugin) until it is gone.
    pub(crate) fn pid(pid: u32, label: WatchLabel) -> ExitWatch {
        Self::spawn(Some(pid), |rx, tx| watch_pid(pid, rx, tx, label))
    }

    /// Watches a plugin served by a task of this process: "killing" it
    /// triggers its shutdown.
    pub(crate) fn task(
        task: tokio::task::JoinHandle<Result<(), crate::Error>>,
        shutdown: crate::shutdown::Shutdown,
        label: WatchLabel,
    ) -> ExitWatch {
        Self::spawn(None, |rx, tx| watch_task(task, shutdown, rx, tx, label))
    }

    /// Starts the watcher `watcher` builds from the request receiver and
    /// the exit sender.
    fn spawn<F>(
        pid: Option<u32>,
        watcher: impl FnOnce(mpsc::UnboundedReceiver<Request>, watch::Sender<Option<PluginExit>>) -> F,
    ) -> ExitWatch
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (requests, rx) = mpsc::unbounded_channel();
        let (tx, exit) = watch::channel(None);
        tokio::spawn(watcher(rx, tx));
        ExitWatch {
            requests,
            exit,
            pid,
        }
    }

    pub(crate) fn pid_of(&self) -> Option<u32> {
        self.pid
    }

    /// How it ended, once it has.
    pub(crate) fn exit(&self) -> Option<PluginExit> {
        *self.exit.borrow()
    }

    /// Resolves when the process has ended.
    pub(crate) fn wait(&self) -> impl Future<Output = PluginExit> + Send + 'static {
        let mut exit = self.exit.clone();
        async move {
            match exit.wait_for(Option::is_some).await {
                Ok(exit) => exit.unwrap_or(PluginExit::Gone),
                // The watcher is gone without a verdict (its runtime shut
                // down): the child was killed on drop.
                Err(_) => PluginExit::Gone,
            }
        }
    }

    /// From now on an exit is the host's doing, logged at debug.
    pub(crate) fn expect_exit(&self) {
        let _ = self.requests.send(Request::Expect);
    }

    /// Asks the watcher to SIGKILL the plugin (and its process group) and
    /// reap it; does not wait.
    pub(crate) fn kill_now(&self) {
        let _ = self.requests.send(Request::Kill);
    }

    /// SIGKILLs the plugin (and its process group) and waits until it is
    /// reaped, at most `bound`.
    pub(crate) async fn kill(&self, bound: Duration) -> Option<PluginExit> {
        self.kill_now();
        tokio::time::timeout(bound, self.wait()).await.ok()
    }

    /// Waits up to `grace` for the exit, then kills as [`ExitWatch::kill`].
    pub(crate) async fn stop(&self, grace: Duration) -> Option<PluginExit> {
        if let Ok(exit) = tokio::time::timeout(grace, self.wait()).await {
            return Some(exit);
        }
        tracing::warn!(
            pid = self.pid,
            "plugin failed to exit gracefully; killing it"
        );
        self.kill(KILL_BOUND).await
    }
}

/// How long a SIGKILLed process may take to be reaped before the host stops
/// waiting for it (it can only be stuck in the kernel).
pub(crate) const KILL_BOUND: Duration = Duration::from_secs(5);

/// How often a reattached plugin's pid is checked (go-plugin polls too).
const PID_POLL: Duration = Duration::from_millis(100);

async fn watch_child(
    mut child: Child,
    pid: Option<u32>,
    mut requests: mpsc::UnboundedReceiver<Request>,
    exit: watch::Sender<Option<PluginExit>>,
    label: WatchLabel,
) {
    // Dropped with the task (runtime shutdown): the child is SIGKILLed by
    // tokio's kill_on_drop, its group here.
    let _group = GroupGuard(pid);
    let mut expected = false;
    let mut open = true;
    let status = loop {
        // Requests first: an Expect sent before the plugin exited must count
        // even when the exit is ready at the same poll.
        tokio::select! {
            biased;
            request = requests.recv(), if open => match request {
                Some(Request::Expect) => expected = true,
                Some(Request::Kill) | None => {
                    open = request.is_some();
                    expected = true;
                    crate::process::kill_group(pid);
                    let _ = child.start_kill();
                }
            },
            status = child.wait() => break status,
        }
    };
    expected |= expect_pending(&mut requests);
    // What the plugin started and left behind goes too.
    crate::process::kill_group(pid);
    let verdict = match status {
        Ok(status) => PluginExit::Status(status),
        Err(err) => {
            tracing::debug!(plugin = %label.plugin, %err, "waiting for the plugin failed");
            PluginExit::Gone
        }
    };
    log_exit(&label, pid, verdict, expected);
    exit.send_replace(Some(verdict));
}

async fn watch_pid(
    pid: u32,
    mut requests: mpsc::UnboundedReceiver<Request>,
    exit: watch::Sender<Option<PluginExit>>,
    label: WatchLabel,
) {
    let mut expected = false;
    let mut tick = tokio::time::interval(PID_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            request = requests.recv() => match request {
                Some(Request::Expect) => expected = true,
                Some(Request::Kill) => {
                    expected = true;
                    crate::process::signal(pid, crate::process::SIGKILL);
                    tick.reset_immediately();
                }
                // A dropped reattached client leaves the plugin alone.
                None => return,
            },
            _ = tick.tick() => if !crate::process::alive(pid) { break },
        }
    }
    expected |= expect_pending(&mut requests);
    log_exit(&label, Some(pid), PluginExit::Gone, expected);
    exit.send_replace(Some(PluginExit::Gone));
}

async fn watch_task(
    mut task: tokio::task::JoinHandle<Result<(), crate::Error>>,
    shutdown: crate::shutdown::Shutdown,
    mut requests: mpsc::UnboundedReceiver<Request>,
    exit: watch::Sender<Option<PluginExit>>,
    label: WatchLabel,
) {
    let mut expected = false;
    let mut open = true;
    let served = loop {
        tokio::select! {
            biased;
            request = requests.recv(), if open => match request {
                Some(Request::Expect) => expected = true,
                Some(Request::Kill) | None => {
                    open = request.is_some();
                    expected = true;
                    shutdown.trigger();
                }
            },
            served = &mut task => break served,
        }
    };
    expected |= expect_pending(&mut requests);
    match served {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::error!(plugin = %label.plugin, %err, "in-process plugin failed"),
        Err(err) => tracing::error!(plugin = %label.plugin, %err, "in-process plugin task failed"),
    }
    log_exit(&label, None, PluginExit::Stopped, expected);
    exit.send_replace(Some(PluginExit::Stopped));
}

/// Whether a stop request reached the watcher's queue by the time the exit
/// was seen: the host asked first, so the exit is its doing.
fn expect_pending(requests: &mut mpsc::UnboundedReceiver<Request>) -> bool {
    let mut expected = false;
    while let Ok(request) = requests.try_recv() {
        expected |= matches!(request, Request::Expect | Request::Kill);
    }
    expected
}

fn log_exit(label: &WatchLabel, pid: Option<u32>, exit: PluginExit, expected: bool) {
    let plugin = &label.plugin;
    if expected {
        tracing::debug!(%plugin, pid, %exit, "plugin process exited");
    } else {
        let tail = label.tail.text();
        tracing::error!(%plugin, pid, %exit, stderr_tail = %tail.trim_end(), "plugin process exited unexpectedly");
    }
}

struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        crate::process::kill_group(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn is_zombie(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace().next().map(|state| state == "Z")
            })
            .unwrap_or(false)
    }

    /// The host asks to stop, and the plugin's exit is already there when
    /// the watcher first runs: the exit is the host's doing, logged at
    /// debug, never as "exited unexpectedly".
    #[test]
    fn an_exit_seen_together_with_the_stop_request_is_expected() {
        for _ in 0..100 {
            let logs = Captured::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                // The I/O driver turns before every task poll, so the exit
                // and the request are both ready when the watcher next runs.
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .event_interval(1)
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    let child = tokio::process::Command::new("true")
                        .spawn()
                        .expect("spawn true");
                    let pid = child.id().expect("pid");
                    let label = WatchLabel {
                        plugin: "true".into(),
                        tail: Default::default(),
                    };
                    let watch = ExitWatch::child(child, label);
                    // The watcher waits on both; it cannot run again before
                    // the next await.
                    tokio::task::yield_now().await;
                    while !is_zombie(pid) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    watch.expect_exit();
                    assert!(matches!(watch.wait().await, PluginExit::Status(_)));
                });
            });
            let text =
                String::from_utf8(logs.0.lock().expect("log buffer").clone()).expect("utf-8 logs");
            assert!(text.contains("plugin process exited"), "{text}");
            assert!(!text.contains("unexpectedly"), "{text}");
        }
    }
}
