//! What runs beside a connected plugin: the stderr log relay, the stdout
//! drain, and the broker and stdio streams.

use crate::broker::Broker;
use crate::channel::PluginChannel;
use crate::conn::MAX_MESSAGE_SIZE;
use crate::logging;
use crate::proto::plugin::grpc_broker_client::GrpcBrokerClient;
use crate::proto::plugin::grpc_stdio_client::GrpcStdioClient;
use crate::proto::plugin::stdio_data::Channel as StdioChannel;
use crate::shutdown::Shutdown;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::task::JoinHandle;

/// A place plugin output is copied to.
pub(crate) type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// Where the last stderr lines of a plugin are kept for error messages.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    const LINES: usize = 20;
    const LINE_BYTES: usize = 512;

    pub(crate) fn push(&self, line: &str) {
        if let Ok(mut lines) = self.0.lock() {
            let mut line = line.trim_end().to_owned();
            if line.len() > Self::LINE_BYTES {
                let mut cut = Self::LINE_BYTES;
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line.truncate(cut);
                line.push('…');
            }
            if lines.len() == Self::LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    pub(crate) fn text(&self) -> String {
        self.0
            .lock()
            .map(|lines| lines.iter().map(|l| format!("  {l}\n")).collect())
            .unwrap_or_default()
    }
}

/// Reads the plugin's stderr as log lines, however long they are, and
/// copies the raw bytes to `raw` when the host asked for them.
pub(crate) async fn relay_stderr<R: AsyncRead + Unpin>(
    stderr: R,
    plugin: String,
    tail: Tail,
    raw: Option<Sink>,
) {
    /// Lines longer than this are logged in pieces instead of buffered whole.
    const MAX_LOG_LINE: u64 = 1 << 20;
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    let mut in_panic = false;
    loop {
        buf.clear();
        match (&mut reader)
            .take(MAX_LOG_LINE)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if let Some(raw) = &raw
                    && let Ok(mut raw) = raw.lock()
                {
                    let _ = raw.write_all(&buf).and_then(|()| raw.flush());
                }
                let text = String::from_utf8_lossy(&buf);
                tail.push(&text);
                // No subscriber takes plugin logs: skip the parsing work
                // (go-plugin v1.7 does the same).
                if !tracing::enabled!(target: logging::PLUGIN_LOG_TARGET, tracing::Level::ERROR) {
                    continue;
                }
                let line = logging::parse_stderr_line(&text, in_panic);
                in_panic |= line.starts_panic;
                logging::emit(&plugin, &line);
            }
        }
    }
}

/// Keeps the plugin's stdout pipe empty after the handshake.
pub(crate) async fn drain<R: AsyncRead + Unpin>(mut stdout: R) {
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = stdout.read(&mut buf).await {
        if n == 0 {
            return;
        }
        tracing::trace!(bytes = n, "discarded plugin stdout after the handshake");
    }
}

/// Starts the broker and stdio streams every connected client runs.
pub(crate) fn spawn_streams(
    channel: &PluginChannel,
    broker: &Broker,
    shutdown: &Shutdown,
    (stdout, stderr): (Option<Sink>, Option<Sink>),
) -> [JoinHandle<()>; 2] {
    [
        tokio::spawn(run_broker_stream(
            channel.clone(),
            broker.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(run_stdio_stream(
            channel.clone(),
            stdout,
            stderr,
            shutdown.clone(),
        )),
    ]
}

async fn run_broker_stream(channel: PluginChannel, broker: Broker, shutdown: Shutdown) {
    let Some(outgoing) = broker.take_outgoing() else {
        return;
    };
    let mut client = GrpcBrokerClient::new(channel).max_decoding_message_size(MAX_MESSAGE_SIZE);
    let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(outgoing);
    match client.start_stream(stream).await {
        Ok(response) => broker.pump(response.into_inner()).await,
        Err(status) if shutdown.is_triggered() => {
            tracing::debug!(%status, "broker stream not opened before shutdown");
        }
        Err(status) => tracing::debug!(%status, "plugin broker stream unavailable"),
    }
}

/// Copies what the plugin sends through `plugin.GRPCStdio` to the host's
/// sinks. Plugins that do not serve GRPCStdio (older go-plugin versions,
/// other implementations) answer Unimplemented; that is not a fault.
async fn run_stdio_stream(
    channel: PluginChannel,
    stdout: Option<Sink>,
    stderr: Option<Sink>,
    shutdown: Shutdown,
) {
    let mut client = GrpcStdioClient::new(channel).max_decoding_message_size(MAX_MESSAGE_SIZE);
    let opened = tokio::select! {
        opened = client.stream_stdio(()) => opened,
        () = shutdown.wait() => return,
    };
    let mut stream = match opened {
        Ok(response) => response.into_inner(),
        Err(status) => {
            // The plugin went away, or does not serve stdio: either way the
            // cause shows elsewhere (exit notice, failing calls).
            tracing::debug!(%status, "plugin stdio stream unavailable");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            msg = stream.message() => msg,
            () = shutdown.wait() => return,
        };
        let Ok(Some(data)) = msg else { return };
        let sink = match StdioChannel::try_from(data.channel) {
            Ok(StdioChannel::Stdout) => &stdout,
            Ok(StdioChannel::Stderr) => &stderr,
            _ => {
                tracing::debug!(channel = data.channel, "unknown stdio channel from plugin");
                continue;
            }
        };
        if let Some(sink) = sink
            && let Ok(mut sink) = sink.lock()
        {
            let _ = sink.write_all(&data.data).and_then(|()| sink.flush());
        }
    }
}
