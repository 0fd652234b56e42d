//! Leak accounting for the reliability suite, and the rows it reports.
//!
//! Every test of this binary holds [`serial`] for its whole run, so counts
//! of this process's file descriptors and children are exact. Processes
//! launched by the suite carry [`MARK_ENV`] (grandchildren inherit it), so
//! they are found wherever they were reparented. Socket directories are
//! counted under the temp dir; one that is new and persists counts as a
//! leak unless some live process still listens on a socket inside it
//! (another program's plugin, running alongside this suite).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Set on every process the suite launches; the value is this test
/// process's id.
pub const MARK_ENV: &str = "RPCPLUGIN_RELIABILITY_MARK";

/// Where rows go, one JSON object per line (set by `cargo xtask reliability`).
pub const OUT_ENV: &str = "RPCPLUGIN_RELIABILITY_OUT";

/// How long leftovers may take to disappear (async drops, reaping).
const SETTLE: Duration = Duration::from_secs(2);

/// Runs `test` alone: no other test of this binary runs, and no other
/// test's runtime exists, while it does. The runtime is built under the
/// lock, and the first test warms up what tokio and the runtime create once
/// per process (signal pipe, first-spawn state) before anyone counts.
pub fn serial<F: Future<Output = ()>>(test: impl FnOnce() -> F) {
    static SERIAL: Mutex<()> = Mutex::new(());
    static WARM: std::sync::Once = std::sync::Once::new();
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        if !WARM.is_completed() {
            warm_up().await;
            WARM.call_once(|| {});
        }
        test().await;
    });
}

/// Starts and stops one plugin, so lazily created process-wide state
/// exists before the first census.
async fn warm_up() {
    let scratch = crate::support::Scratch::new();
    if let Ok(mut client) = crate::support::builder(rpcplugin_tests::mode::NORMAL, &scratch)
        .env(MARK_ENV, mark())
        .start()
        .await
    {
        let _ = client.kill().await;
    }
}

/// The value of [`MARK_ENV`] for this process.
pub fn mark() -> String {
    std::process::id().to_string()
}

/// What this process holds, and what the suite launched, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Census {
    /// Entries of /proc/self/fd.
    pub fds: usize,
    /// Children of this process (running or zombie), with their state.
    pub children: BTreeSet<(u32, String)>,
    /// Processes carrying this process's mark (any parent).
    pub marked: BTreeSet<u32>,
    /// `rpcplugin-*` directories in this process's temp dir
    /// ([`crate::support::suite_tmp`]).
    pub tmp_dirs: BTreeSet<PathBuf>,
}

impl Census {
    pub fn take() -> Census {
        let fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0);
        let me = std::process::id();
        let marker = format!("{MARK_ENV}={}", mark());
        let mut children = BTreeSet::new();
        let mut marked = BTreeSet::new();
        for (pid, state, ppid) in processes() {
            if ppid == me {
                children.insert((pid, state));
            }
            if pid != me && has_env(pid, &marker) {
                marked.insert(pid);
            }
        }
        Census {
            fds,
            children,
            marked,
            tmp_dirs: tmp_dirs(),
        }
    }

    /// Waits (up to [`SETTLE`]) for everything launched since `before` to
    /// go away; returns what is still there.
    pub async fn leaks_since(before: &Census) -> Vec<String> {
        let deadline = Instant::now() + SETTLE;
        loop {
            let now = Census::take();
            let leaks = now.compare(before);
            if leaks.is_empty() || Instant::now() >= deadline {
                return leaks;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn compare(&self, before: &Census) -> Vec<String> {
        let mut leaks = Vec::new();
        if self.fds > before.fds {
            leaks.push(format!(
                "{} more open file descriptors ({} -> {}): {}",
                self.fds - before.fds,
                before.fds,
                self.fds,
                fd_targets().join(", ")
            ));
        }
        let new_children: Vec<_> = self.children.difference(&before.children).collect();
        if !new_children.is_empty() {
            leaks.push(format!(
                "child processes left (pid, state): {new_children:?}"
            ));
        }
        let new_marked: Vec<_> = self.marked.difference(&before.marked).collect();
        if !new_marked.is_empty() {
            leaks.push(format!("launched processes still running: {new_marked:?}"));
        }
        let new_dirs: Vec<_> = self
            .tmp_dirs
            .difference(&before.tmp_dirs)
            .filter(|dir| !has_live_socket(dir))
            .collect();
        if !new_dirs.is_empty() {
            leaks.push(format!("temp dirs left: {new_dirs:?}"));
        }
        leaks
    }

    /// Waits for everything launched since `before` to go away, as
    /// [`Census::leaks_since`]; adds what is left to `failures` and kills
    /// leftover marked processes.
    pub async fn check_since(before: &Census, failures: &mut Vec<String>) {
        let leaks = Census::leaks_since(before).await;
        if !leaks.is_empty() {
            Census::kill_marked();
            failures.extend(leaks);
        }
    }

    /// Kills every process carrying the mark (cleanup after a failure).
    pub fn kill_marked() {
        for pid in Census::take().marked {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

pub use rpcplugin_tests::processes;

fn has_env(pid: u32, marker: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .any(|var| var == marker.as_bytes())
}

/// Where this process's descriptors point (for leak messages).
fn fd_targets() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.display().to_string())
        .collect()
}

fn tmp_dirs() -> BTreeSet<PathBuf> {
    let Ok(entries) = std::fs::read_dir(crate::support::suite_tmp()) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("rpcplugin-") && !name.starts_with("rpcplugin-e2e-scratch-")
        })
        .map(|e| e.path())
        .collect()
}

/// Whether some process listens on a unix socket inside `dir`.
fn has_live_socket(dir: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return false;
    };
    let prefix = format!("{}/", dir.display());
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(7))
        .any(|path| path.starts_with(&prefix))
}

/// One line of docs/reliability.md.
#[derive(Debug, Clone)]
pub struct Row {
    /// Table section: `fault`, `rogue peer`, `socket`.
    pub group: &'static str,
    pub case: String,
    pub expected: String,
    /// What was measured, e.g. `error after 12 ms`.
    pub measured: String,
    /// The bound it was held to, e.g. `2 s`.
    pub bound: String,
    /// Empty when the case passed, else why it failed.
    pub failure: String,
}

impl Row {
    /// Appends the row to `$RPCPLUGIN_RELIABILITY_OUT` (when set) and
    /// prints it.
    pub fn record(&self) {
        let json = serde_json::json!({
            "group": self.group,
            "case": self.case,
            "expected": self.expected,
            "measured": self.measured,
            "bound": self.bound,
            "result": if self.failure.is_empty() { "pass" } else { "FAIL" },
            "failure": self.failure,
        });
        eprintln!("reliability: {json}");
        if let Some(path) = std::env::var_os(OUT_ENV) {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path);
            if let Ok(mut file) = file {
                let _ = writeln!(file, "{json}");
            }
        }
    }
}

impl Row {
    /// Records the row, then fails the test when the case failed.
    pub fn finish(self) {
        self.record();
        assert!(self.failure.is_empty(), "{}: {}", self.case, self.failure);
    }
}

/// Milliseconds, for tables.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}
