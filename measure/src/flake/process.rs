//! Runs a command to completion with a deadline, capturing its output.

use anyhow::{Context, Result};
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the output pipes may stay open after the process exited (a
/// leftover child process still holding them) before the run counts as
/// leaking one.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// What one run produced.
#[derive(Debug)]
pub(crate) struct Captured {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) timed_out: bool,
    /// The output pipes were still open `DRAIN_GRACE` after the process
    /// exited: a process it started outlived it.
    pub(crate) pipes_held: bool,
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

/// Runs `cmd` with stdout and stderr captured separately, killing it after
/// `timeout`.
pub(crate) fn run_captured(mut cmd: Command, timeout: Duration) -> Result<Captured> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let stdout = child.stdout.take().map(Drain::start);
    let stderr = child.stderr.take().map(Drain::start);
    let (status, timed_out) = wait(&mut child, timeout)?;
    let deadline = Instant::now() + DRAIN_GRACE;
    let (stdout, out_closed) = stdout.map_or((String::new(), true), |d| d.finish(deadline));
    let (stderr, err_closed) = stderr.map_or((String::new(), true), |d| d.finish(deadline));
    Ok(Captured {
        status,
        stdout,
        stderr,
        timed_out,
        pipes_held: !(out_closed && err_closed),
    })
}

/// Runs `cmd` with stdout and stderr on one pipe (as `2>&1`), so their lines
/// keep their relative order, killing it after `timeout`.
pub(crate) fn run_merged(mut cmd: Command, timeout: Duration) -> Result<Captured> {
    let (reader, writer) = std::io::pipe().context("creating a pipe")?;
    cmd.stdin(Stdio::null())
        .stdout(writer.try_clone().context("duplicating a pipe")?)
        .stderr(writer);
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    // The command holds the parent's copies of the write end: drop them so
    // that the pipe ends when the child's side closes.
    drop(cmd);
    let output = Drain::start(reader);
    let (status, timed_out) = wait(&mut child, timeout)?;
    let (stdout, closed) = output.finish(Instant::now() + DRAIN_GRACE);
    Ok(Captured {
        status,
        stdout,
        stderr: String::new(),
        timed_out,
        pipes_held: !closed,
    })
}

/// Waits for `child` to exit, killing it after `timeout`.
fn wait(child: &mut Child, timeout: Duration) -> Result<(ExitStatus, bool)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("waiting for a test process")? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let status = child.wait().context("reaping a killed test process")?;
            return Ok((status, true));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_both_streams_and_the_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let c = run_captured(cmd, Duration::from_secs(60)).unwrap();
        assert_eq!((c.stdout.as_str(), c.stderr.as_str()), ("out\n", "err\n"));
        assert_eq!(c.status.code(), Some(3));
        assert!(!c.timed_out && !c.pipes_held);
    }

    #[test]
    fn merges_streams_in_order() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo one; echo two >&2; echo three"]);
        let c = run_merged(cmd, Duration::from_secs(60)).unwrap();
        assert_eq!(c.stdout, "one\ntwo\nthree\n");
        assert!(c.status.success());
    }

    #[test]
    fn kills_a_run_past_its_deadline() {
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        let c = run_captured(cmd, Duration::from_millis(200)).unwrap();
        assert!(c.timed_out);
        assert!(!c.status.success());
    }
}
