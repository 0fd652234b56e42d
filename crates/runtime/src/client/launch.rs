//! Starting the plugin process: the command line and environment, the
//! checksum of exactly the file that runs, and the bounded handshake read.

use super::exit::{ExitWatch, KILL_BOUND, PluginExit};
use super::relay::Tail;
use crate::error::Error;
use rpcplugin_handshake::{self as handshake, HandshakeLine};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::task::JoinHandle;

/// The executable a launch runs, found once.
pub(crate) struct Program {
    /// What the caller named (for messages).
    pub(crate) named: PathBuf,
    /// What `execve` is given.
    exec: PathBuf,
    /// argv\[0\] for the plugin, when `exec` is not what it should see.
    arg0: Option<PathBuf>,
    /// Keeps the verified file open until the child has been spawned.
    _verified: Option<std::fs::File>,
    /// The verified file starts with `#!`: its interpreter opens it by path.
    script: bool,
}

impl Program {
    /// Runs `command` as the operating system would find it.
    pub(crate) fn unchecked(command: &Path) -> Program {
        Program {
            named: command.to_path_buf(),
            exec: command.to_path_buf(),
            arg0: None,
            _verified: None,
            script: false,
        }
    }

    /// Resolves `command` with the child's `PATH` (as go-plugin hashes the
    /// path it executes), checks its SHA-256 and runs exactly the bytes that
    /// were hashed: on Linux the file is executed through its open
    /// descriptor, so it cannot be swapped between the check and the exec.
    pub(crate) fn verified(
        command: &Path,
        child_path: Option<&OsStr>,
        expected: &[u8],
    ) -> Result<Program, Error> {
        let spawn_error = |source| Error::Spawn {
            command: command.to_path_buf(),
            source,
        };
        let resolved = resolve(command, child_path).map_err(spawn_error)?;
        let mut file = std::fs::File::open(&resolved).map_err(spawn_error)?;
        let (actual, script) = sha256(&mut file).map_err(spawn_error)?;
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        // Not secret, but compare in constant time as go-plugin does.
        if aws_lc_rs::constant_time::verify_slices_are_equal(&actual, expected).is_err() {
            return Err(Error::ChecksumMismatch {
                path: resolved,
                expected: hex(expected),
                actual: hex(&actual),
            });
        }
        let mut program = by_descriptor(command, resolved, file);
        program.script = script;
        Ok(program)
    }

    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(&self.exec);
        #[cfg(unix)]
        if let Some(arg0) = &self.arg0 {
            cmd.arg0(arg0);
        }
        cmd
    }
}

#[cfg(target_os = "linux")]
fn by_descriptor(command: &Path, resolved: PathBuf, file: std::fs::File) -> Program {
    use std::os::fd::AsRawFd;
    let fd_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    if !fd_path.exists() {
        // No /proc: run the resolved path.
        return Program {
            named: command.to_path_buf(),
            exec: resolved,
            arg0: None,
            _verified: None,
            script: false,
        };
    }
    Program {
        named: command.to_path_buf(),
        exec: fd_path,
        arg0: Some(resolved),
        _verified: Some(file),
        script: false,
    }
}

#[cfg(not(target_os = "linux"))]
fn by_descriptor(command: &Path, resolved: PathBuf, _file: std::fs::File) -> Program {
    Program {
        named: command.to_path_buf(),
        exec: resolved,
        arg0: None,
        _verified: None,
        script: false,
    }
}

/// For a descriptor-executed script, keeps its descriptor open across exec:
/// the interpreter named by `#!` opens `/proc/self/fd/N` after the exec.
/// (A binary needs no such thing, and does not inherit the descriptor.)
#[allow(unsafe_code)]
pub(crate) fn keep_descriptor(cmd: &mut Command, program: &Program) {
    #[cfg(target_os = "linux")]
    if let Some(file) = program._verified.as_ref().filter(|_| program.script) {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: runs between fork and exec; fcntl(2) is async-signal-safe
        // and the closure allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                let fd = rustix::fd::BorrowedFd::borrow_raw(fd);
                rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (cmd, program);
}

/// Finds `command` the way `execvp` would with the child's `PATH`.
fn resolve(command: &Path, child_path: Option<&OsStr>) -> std::io::Result<PathBuf> {
    if command.components().count() > 1 || command.is_absolute() {
        return std::path::absolute(command);
    }
    let dirs = child_path.map(std::env::split_paths).into_iter().flatten();
    for dir in dirs {
        let candidate = if dir.as_os_str().is_empty() {
            PathBuf::from(".").join(command)
        } else {
            dir.join(command)
        };
        if is_executable(&candidate) {
            return std::path::absolute(candidate);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{} not found in the plugin's PATH", command.display()),
    ))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok() && path.is_file()
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// The file's SHA-256, and whether it starts with `#!`.
fn sha256(file: &mut std::fs::File) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::Read;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 64 << 10];
    let mut script = None;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        script.get_or_insert_with(|| chunk.starts_with(b"#!"));
        ctx.update(chunk);
    }
    Ok((ctx.finish().as_ref().to_vec(), script.unwrap_or(false)))
}

/// The `PATH` the child will see, with go-plugin's precedence (the host's
/// environment over the caller's variables).
pub(crate) fn child_path(env: &[(OsString, OsString)], skip_host_env: bool) -> Option<OsString> {
    let host = (!skip_host_env).then(|| std::env::var_os("PATH")).flatten();
    host.or_else(|| {
        env.iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
    })
}

/// Reads the first stdout line within `timeout`, watching for an early exit.
/// On failure the plugin and its process group are killed and reaped.
pub(crate) async fn read_handshake<R: AsyncRead + Unpin>(
    watch: &ExitWatch,
    stdout: &mut BufReader<R>,
    timeout: Duration,
    tail: &Tail,
    stderr_task: Option<JoinHandle<()>>,
) -> Result<(String, Option<JoinHandle<()>>), Error> {
    // The limit excludes the line terminator, which may be "\r\n".
    let limit = handshake::MAX_LINE_LEN as u64 + 2;
    let mut buf = Vec::new();
    let outcome = {
        let read = async {
            let mut limited = (&mut *stdout).take(limit);
            limited.read_until(b'\n', &mut buf).await
        };
        tokio::pin!(read);
        tokio::select! {
            read = &mut read => Some(read),
            () = tokio::time::sleep(timeout) => None,
            _ = watch.wait() => {
                // Exited. What it wrote is in the pipe already; do not wait
                // for EOF, which never comes while a grandchild holds the
                // pipe open.
                match tokio::time::timeout(Duration::from_millis(100), &mut read).await {
                    Ok(read) => Some(read),
                    Err(_) => Some(Ok(0)),
                }
            }
        }
    };
    match outcome {
        Some(Ok(n)) if n > 0 && buf.ends_with(b"\n") => {
            return Ok((String::from_utf8_lossy(&buf).into_owned(), stderr_task));
        }
        None => {
            watch.kill(KILL_BOUND).await;
            finish_stderr(stderr_task).await;
            return Err(Error::StartTimeout {
                timeout,
                stderr_tail: tail.text(),
            });
        }
        Some(Ok(n)) if n as u64 >= limit => {
            watch.kill(KILL_BOUND).await;
            finish_stderr(stderr_task).await;
            return Err(match HandshakeLine::parse(&buf) {
                Err(source) => Error::InvalidHandshake {
                    source,
                    stderr_tail: tail.text(),
                },
                Ok(_) => Error::Config("handshake line over the length limit".into()),
            });
        }
        Some(Ok(_)) | Some(Err(_)) => {}
    }
    // EOF: the plugin exited, or closed stdout without a line.
    let exit = match tokio::time::timeout(Duration::from_secs(2), watch.wait()).await {
        Ok(exit) => Some(exit),
        Err(_) => {
            watch.kill(KILL_BOUND).await;
            None
        }
    };
    // What it started goes too (the watcher killed the group), so the
    // stderr relay sees EOF.
    finish_stderr(stderr_task).await;
    let stderr_tail = tail.text();
    let exit = exit.filter(|exit| matches!(exit, PluginExit::Status(_)));
    if !buf.is_empty() {
        // A last line without '\n' before exit: judge it as a handshake.
        return Err(match HandshakeLine::parse(&buf) {
            Ok(_) => Error::PluginExited { exit, stderr_tail },
            Err(source) => Error::InvalidHandshake {
                source,
                stderr_tail,
            },
        });
    }
    let lower = stderr_tail.to_ascii_lowercase();
    if lower.contains("magic cookie") || lower.contains("is a plugin") {
        return Err(Error::CookieRejected { stderr_tail });
    }
    Err(Error::PluginExited { exit, stderr_tail })
}

/// Lets the stderr relay reach EOF (so the tail is complete), bounded: a
/// grandchild outside the process group can hold the pipe open.
async fn finish_stderr(task: Option<JoinHandle<()>>) {
    if let Some(mut task) = task
        && tokio::time::timeout(Duration::from_millis(500), &mut task)
            .await
            .is_err()
    {
        task.abort();
    }
}
