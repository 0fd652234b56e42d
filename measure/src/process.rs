//! The one process runner of the measurement jobs: spawn a command, capture
//! its output, and kill and reap it at a deadline.
//!
//! The exit is awaited by a blocking `wait` on a thread of its own (no
//! polling), so [`Captured::elapsed`] is the spawn-to-exit time to the
//! microsecond: the benchmarks time cold starts with it.

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the output pipes may stay open after the process exited (a
/// leftover child process still holding them) before the run counts as
/// leaking one.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// How long a killed process may take to be reaped.
const REAP_GRACE: Duration = Duration::from_secs(10);

/// Why a command could not be run to an exit status.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started.
    #[error("cannot start {program}")]
    Spawn {
        /// The command, as `Debug` prints it.
        program: String,
        /// What `spawn` returned.
        #[source]
        source: std::io::Error,
    },
    /// A pipe or log file for its output could not be set up.
    #[error("setting up the output of {program}")]
    Output {
        /// The command, as `Debug` prints it.
        program: String,
        /// The pipe or file error.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the process failed.
    #[error("waiting for {program}")]
    Wait {
        /// The command, as `Debug` prints it.
        program: String,
        /// What `wait` returned.
        #[source]
        source: std::io::Error,
    },
    /// The process was killed at the deadline and not reaped within
    /// `REAP_GRACE`.
    #[error("{program} was killed at its deadline but never reaped")]
    NotReaped {
        /// The command, as `Debug` prints it.
        program: String,
    },
}

/// Where the standard error of a run goes.
#[derive(Debug, Clone)]
pub enum Stderr {
    /// Captured into [`Captured::stderr`].
    Capture,
    /// On the stdout pipe, so that both keep their relative order (`2>&1`).
    Merge,
    /// The caller's standard error.
    Inherit,
    /// Appended to this file; [`Captured::stderr`] stays empty.
    AppendTo(PathBuf),
}

/// What one run produced.
#[derive(Debug)]
pub struct Captured {
    /// The exit status (of the kill, when [`Captured::timed_out`]).
    pub status: ExitStatus,
    /// Standard output (and error, with [`Stderr::Merge`]), lossily UTF-8.
    pub stdout: String,
    /// Standard error, with [`Stderr::Capture`].
    pub stderr: String,
    /// The deadline passed and the process was killed.
    pub timed_out: bool,
    /// The output pipes were still open `DRAIN_GRACE` after the process
    /// exited: a process it started outlived it.
    pub pipes_held: bool,
    /// From spawn to the exit observed by `wait`.
    pub elapsed: Duration,
}

/// A pipe read to the end on its own thread, into a buffer that can be
/// taken before the end if the writer never closes it.
struct Drain {
    buf: Arc<Mutex<Vec<u8>>>,
    eof: mpsc::Receiver<()>,
}

impl Drain {
    fn start(mut pipe: impl Read + Send + 'static) -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, eof) = mpsc::channel();
        let sink = buf.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                if let Ok(mut b) = sink.lock() {
                    b.extend_from_slice(chunk.get(..n).unwrap_or_default());
                }
            }
            let _ = tx.send(());
        });
        Drain { buf, eof }
    }

    /// Waits until `deadline` for the end of the pipe; returns what was read
    /// and whether the end was reached.
    fn finish(self, deadline: Instant) -> (String, bool) {
        let closed = self
            .eof
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok();
        let bytes = self.buf.lock().map(|b| b.clone()).unwrap_or_default();
        (String::from_utf8_lossy(&bytes).into_owned(), closed)
    }
}

/// Runs `cmd` (stdin closed, stdout captured, stderr as `stderr` says) until
/// it exits, killing it with SIGKILL and reaping it once `timeout` passed.
///
/// ```no_run
/// use rpcplugin_measure::process::{run, Stderr};
/// use std::process::Command;
/// use std::time::Duration;
///
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", "echo hello"]);
/// let out = run(cmd, Duration::from_secs(5), Stderr::Capture)?;
/// assert_eq!(out.stdout, "hello\n");
/// # Ok::<(), rpcplugin_measure::process::ProcessError>(())
/// ```
pub fn run(mut cmd: Command, timeout: Duration, stderr: Stderr) -> Result<Captured, ProcessError> {
    let program = format!("{cmd:?}");
    let output_error = |source| ProcessError::Output {
        program: program.clone(),
        source,
    };
    cmd.stdin(Stdio::null());
    let mut merged = None;
    match &stderr {
        Stderr::Capture => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        Stderr::Inherit => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        }
        Stderr::AppendTo(path) => {
            let file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(output_error)?;
            cmd.stdout(Stdio::piped()).stderr(file);
        }
        Stderr::Merge => {
            let (reader, writer) = std::io::pipe().map_err(output_error)?;
            cmd.stdout(writer.try_clone().map_err(output_error)?)
                .stderr(writer);
            merged = Some(reader);
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
        program: program.clone(),
        source,
    })?;
    // The command holds the parent's copies of a merged pipe's write end:
    // drop them so that the pipe ends when the child's side closes.
    drop(cmd);
    let out = match merged {
        Some(reader) => Some(Drain::start(reader)),
        None => child.stdout.take().map(Drain::start),
    };
    let err = child.stderr.take().map(Drain::start);
    let pid = child.id();
    let (tx, exited) = mpsc::channel();
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send((status, Instant::now()));
    });
    let (status, ended, timed_out) = match exited.recv_timeout(timeout) {
        Ok((status, ended)) => (status, ended, false),
        Err(_) => {
            kill(pid);
            match exited.recv_timeout(REAP_GRACE) {
                Ok((status, ended)) => (status, ended, true),
                Err(_) => return Err(ProcessError::NotReaped { program }),
            }
        }
    };
    let status = status.map_err(|source| ProcessError::Wait {
        program: program.clone(),
        source,
    })?;
    let deadline = Instant::now() + DRAIN_GRACE;
    let (stdout, out_closed) = out.map_or((String::new(), true), |d| d.finish(deadline));
    let (stderr, err_closed) = err.map_or((String::new(), true), |d| d.finish(deadline));
    Ok(Captured {
        status,
        stdout,
        stderr,
        timed_out,
        pipes_held: !(out_closed && err_closed),
        elapsed: ended.duration_since(started),
    })
}

/// Runs `cmd` with the caller's stdio to its end (a build step: no
/// deadline) and fails unless it exits 0.
pub fn checked(cmd: &mut Command) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        anyhow::bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// The first file named `cmd` in a directory of `PATH`.
pub fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(cmd))
            .find(|p| p.is_file())
    })
}

/// SIGKILL to `pid`, a child that the waiter thread has not reaped yet (it
/// had not reported an exit when the deadline passed).
fn kill(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn captures_both_streams_and_the_status() {
        let c = run(
            sh("echo out; echo err >&2; exit 3"),
            Duration::from_secs(60),
            Stderr::Capture,
        )
        .unwrap();
        assert_eq!((c.stdout.as_str(), c.stderr.as_str()), ("out\n", "err\n"));
        assert_eq!(c.status.code(), Some(3));
        assert!(!c.timed_out && !c.pipes_held);
    }

    #[test]
    fn merges_streams_in_order() {
        let c = run(
            sh("echo one; echo two >&2; echo three"),
            Duration::from_secs(60),
            Stderr::Merge,
        )
        .unwrap();
        assert_eq!(c.stdout, "one\ntwo\nthree\n");
        assert!(c.status.success());
    }

    #[test]
    fn appends_stderr_to_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run.log");
        std::fs::write(&log, "before\n").unwrap();
        let c = run(
            sh("echo out; echo err >&2"),
            Duration::from_secs(60),
            Stderr::AppendTo(log.clone()),
        )
        .unwrap();
        assert_eq!((c.stdout.as_str(), c.stderr.as_str()), ("out\n", ""));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "before\nerr\n");
    }

    #[test]
    fn kills_and_reaps_a_run_past_its_deadline() {
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        let c = run(cmd, Duration::from_millis(200), Stderr::Capture).unwrap();
        assert!(c.timed_out);
        assert!(!c.status.success());
        assert!(c.elapsed < Duration::from_secs(600));
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let cmd = Command::new("/nonexistent/program");
        let err = run(cmd, Duration::from_secs(5), Stderr::Capture).unwrap_err();
        assert!(matches!(err, ProcessError::Spawn { .. }), "{err}");
    }
}
