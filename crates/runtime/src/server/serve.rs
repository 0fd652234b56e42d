//! Serving once prepared: the handshake line, signals, the server loop with
//! its grace period.

use super::SHUTDOWN_GRACE;
use super::prepare::Prepared;
use crate::error::Error;
use crate::mux::Muxer;
use crate::mux::session::ATTACH_TIMEOUT;
use crate::shutdown::Shutdown;
use rpcplugin_handshake::HandshakeLine;
use std::io::Write;

/// Writes the handshake line once to the host's stdout and flushes it.
pub(super) fn announce(line: &HandshakeLine, saved: Option<&std::fs::File>) -> Result<(), Error> {
    let text = line.to_line();
    match saved {
        Some(mut file) => file.write_all(text.as_bytes()).and_then(|()| file.flush()),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
    }
    .map_err(Error::io("writing the handshake line"))
}

pub(super) async fn run_server(prepared: Prepared) -> Result<(), Error> {
    let Prepared {
        listener,
        server_tls,
        router,
        shutdown,
        stdio,
        mux,
        ..
    } = prepared;
    // Closing the saved stdout leaves the host's stdout pipe with no writer
    // here: nothing can reach it after the handshake. The log handle stays.
    let _stderr = stdio.map(|s| s.stderr);
    #[cfg(unix)]
    {
        let shutdown = shutdown.clone();
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::spawn(async move {
                if term.recv().await.is_some() {
                    tracing::debug!("SIGTERM: shutting down");
                    shutdown.trigger();
                }
            });
        }
    }
    let deadline = async {
        shutdown.wait().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let served = async {
        match mux {
            None => {
                let incoming = crate::incoming::incoming(listener, server_tls);
                router
                    .serve_with_incoming_shutdown(incoming, shutdown.wait())
                    .await
            }
            Some(mux) => {
                let incoming = crate::mux::serve::incoming(mux.main_streams(), server_tls);
                accept_session(listener, mux, shutdown.clone());
                router
                    .serve_with_incoming_shutdown(incoming, shutdown.wait())
                    .await
            }
        }
    };
    tokio::select! {
        served = served => served?,
        () = deadline => tracing::debug!("calls still running after the grace period; stopping anyway"),
    }
    Ok(())
}

/// Multiplexing: takes the host's one connection (go-plugin waits 5 s for
/// it) and runs the session on it. The plugin stops when the session ends,
/// or when no connection came: as a Go plugin, it serves nobody else.
fn accept_session(listener: rpcplugin_transport::Listener, mux: Muxer, shutdown: Shutdown) {
    tokio::spawn(async move {
        let accepted = tokio::select! {
            accepted = tokio::time::timeout(ATTACH_TIMEOUT, listener.accept()) => accepted,
            () = shutdown.wait() => return mux.abandon(),
        };
        // Later connections are refused: the listener goes now.
        drop(listener);
        match accepted {
            Ok(Ok(stream)) => {
                tracing::debug!("multiplexed connection accepted");
                mux.attach(stream, shutdown.clone());
            }
            Ok(Err(err)) => {
                tracing::error!(%err, "accepting the host's multiplexed connection failed");
                mux.abandon();
            }
            Err(_) => {
                tracing::error!(
                    timeout = ?ATTACH_TIMEOUT,
                    "timed out waiting for the host's multiplexed connection"
                );
                mux.abandon();
            }
        }
        mux.closed().await;
        tracing::debug!("multiplexed connection gone: shutting down");
        shutdown.trigger();
    });
}

/// SIGINT goes to the whole process group on Ctrl-C; the host handles it.
pub(super) fn ignore_sigint() {
    #[cfg(unix)]
    if let Ok(mut int) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
        tokio::spawn(async move {
            let mut count = 0u64;
            while int.recv().await.is_some() {
                count += 1;
                tracing::trace!(count, "ignoring SIGINT");
            }
        });
    }
}

/// Panics go to the real stderr as one hclog JSON line at error level, so
/// every go-plugin host logs them as errors: hosts before go-plugin 1.5
/// (OpenTofu 1.10 embeds 1.4.3) log plain `panic: ` lines at debug, but keep
/// a JSON line's level.
pub(super) fn install_panic_hook(module: &str) {
    let layer = crate::logging::HclogLayer::new(module);
    std::panic::set_hook(Box::new(move |info| {
        let line = layer.format(tracing::Level::ERROR, &format!("panic: {info}"), &[]);
        crate::logging::write_log_line(line.as_bytes());
    }));
}

pub(super) fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
