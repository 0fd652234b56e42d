//! Plugin-side stdio capture: fd 1 is pointed at a pipe right after the
//! handshake, and what arrives there is served to the host through
//! `plugin.GRPCStdio/StreamStdio`.
//!
//! fd 2 stays the process's real stderr, which the host reads line by line
//! as logs. That is where a Go plugin's fatal errors go too: whatever a
//! dying process writes last (Rust's abort messages, a stack overflow, an
//! allocation failure, a C library's complaint) must reach the host, and a
//! pipe read by a thread of the dying process would lose it.

use crate::error::Error;
use crate::proto::plugin::StdioData;
use crate::proto::plugin::grpc_stdio_server::GrpcStdio;
use crate::proto::plugin::stdio_data::Channel;
use crate::services::async_stream;
use crate::shutdown::Shutdown;
use std::io::PipeReader;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

/// go-plugin sends stdio in chunks of at most this many bytes.
const CHUNK: usize = 1024;

/// The original stdout and stderr, kept after fd 1 was redirected.
pub(crate) struct Saved {
    /// Where the handshake line goes (the host's pipe).
    pub(crate) stdout: std::fs::File,
    /// Where logs go (the host's stderr pipe).
    pub(crate) stderr: std::fs::File,
}

/// Keeps copies of fds 1 and 2, then points fd 1 at a fresh pipe whose read
/// end feeds the returned receiver.
pub(crate) fn capture() -> Result<(Saved, mpsc::Receiver<StdioData>), Error> {
    let saved = Saved {
        stdout: std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .map_err(Error::io("duplicating stdout"))?,
        stderr: std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .map_err(Error::io("duplicating stderr"))?,
    };
    let (tx, rx) = mpsc::channel(256);
    let (reader, writer) = std::io::pipe().map_err(Error::io("creating a stdio pipe"))?;
    rustix::stdio::dup2_stdout(&writer).map_err(|e| Error::io("redirecting stdout")(e.into()))?;
    spawn_reader(reader, Channel::Stdout, tx)?;
    Ok((saved, rx))
}

fn spawn_reader(
    reader: PipeReader,
    channel: Channel,
    tx: mpsc::Sender<StdioData>,
) -> Result<(), Error> {
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))
        .map_err(Error::io("reading a stdio pipe"))?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let data =
                        prost::bytes::Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                    let msg = StdioData {
                        channel: channel.into(),
                        data,
                    };
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(())
}

/// `plugin.GRPCStdio`: hands the captured output to the first caller.
pub(crate) struct StdioService {
    pub(crate) rx: Mutex<Option<mpsc::Receiver<StdioData>>>,
    pub(crate) shutdown: Shutdown,
}

#[tonic::async_trait]
impl GrpcStdio for StdioService {
    type StreamStdioStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<StdioData, Status>> + Send>>;

    async fn stream_stdio(
        &self,
        _: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        let taken = self.rx.lock().ok().and_then(|mut rx| rx.take());
        let shutdown = self.shutdown.clone();
        // Without captured stdio (embedded servers, or a second caller) the
        // stream stays open and silent until shutdown, as the protocol expects.
        let stream = async_stream(move |tx| async move {
            let Some(mut rx) = taken else {
                shutdown.wait().await;
                return;
            };
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(msg) => if tx.send(Ok(msg)).await.is_err() { return },
                        None => { shutdown.wait().await; return }
                    },
                    () = shutdown.wait() => break,
                }
            }
            // Flush what was already captured before the stream ends.
            while let Ok(msg) = rx.try_recv() {
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }
}
