//! Runs one host process of the matrix: stdout captured, stderr to a log
//! file that is read back, killed at a deadline.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished host process printed.
pub(super) struct Finished {
    pub(super) status: ExitStatus,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

/// Why a host process gave no result.
pub(super) enum Failed {
    /// Still running at the deadline; killed.
    Deadline,
    /// Could not be started or waited for.
    Io(String),
}

/// Runs `cmd` until it exits or `deadline` passes (then kills it), with
/// stderr written to `log_path` and returned.
pub(super) fn run(
    mut cmd: Command,
    deadline: Instant,
    log_path: &Path,
) -> Result<Finished, Failed> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    match fs::File::create(log_path) {
        Ok(log) => cmd.stderr(log),
        Err(_) => cmd.stderr(Stdio::null()),
    };
    let mut child = cmd
        .spawn()
        .map_err(|err| Failed::Io(format!("cannot start {:?}: {err}", cmd.get_program())))?;
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_string(&mut out);
        }
        out
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failed::Deadline);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(err) => return Err(Failed::Io(format!("waiting for the host: {err}"))),
        }
    };
    let stdout = reader.join().unwrap_or_default();
    let stderr = fs::read(log_path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Ok(Finished {
        status,
        stdout,
        stderr,
    })
}
