//! The Rust bench plugin: the KV service with no per-call logging, served by
//! `PluginServer`.
//!
//! Knobs (environment, passed on by the host):
//! - `RPCPLUGIN_BENCH_RUNTIME`: `multi` (default: `PluginServer::run`, a
//!   multi-thread tokio runtime) or `current` (`serve()` on a current-thread
//!   runtime);
//! - `RPCPLUGIN_BENCH_TIMINGS`: a file to write `{"main_us", "seed_us",
//!   "ready_us"}` to: when `main` started, what the process's first random
//!   draw cost (the DRBG seeding; done eagerly so it can be told apart), and
//!   when the server was about to print its handshake line.

use rpcplugin::{PluginServer, Routes};
use rpcplugin_bench::{BenchKv, COOKIE, RUNTIME_ENV, TIMINGS_ENV, unix_us};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let main_us = unix_us();
    let timings = std::env::var_os(TIMINGS_ENV).filter(|v| !v.is_empty());
    let mut server = PluginServer::new(COOKIE.0, COOKIE.1)
        .version(1, |_ctx| Routes::new(BenchKv::default().into_service()));
    if let Some(path) = timings {
        let started = Instant::now();
        let mut byte = [0u8; 1];
        let _ = aws_lc_rs::rand::fill(&mut byte);
        let seed_us = started.elapsed().as_secs_f64() * 1e6;
        server = server.logging(None);
        install_ready_probe(path.into(), main_us, seed_us);
    }
    let flavor = std::env::var(RUNTIME_ENV).unwrap_or_default();
    if flavor != "current" {
        return server.run();
    }
    let runtime = match rpcplugin_bench::runtime("current") {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("kv-bench-plugin: cannot build the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server.serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kv-bench-plugin: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Records the moment the runtime logs "plugin ready" (its last step before
/// the handshake line) into `path`, with the other timings.
fn install_ready_probe(path: std::path::PathBuf, main_us: u64, seed_us: f64) {
    use tracing_subscriber::layer::SubscriberExt;
    let probe = ReadyProbe {
        path,
        main_us,
        seed_us,
    };
    let subscriber = tracing_subscriber::registry().with(probe);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

struct ReadyProbe {
    path: std::path::PathBuf,
    main_us: u64,
    seed_us: f64,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ReadyProbe {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let meta = event.metadata();
        if !meta.target().starts_with("rpcplugin_runtime::server") {
            return;
        }
        let mut visitor = MessageIs("plugin ready", false);
        event.record(&mut visitor);
        if visitor.1 {
            let line = serde_json::json!({
                "main_us": self.main_us,
                "seed_us": self.seed_us,
                "ready_us": unix_us(),
            });
            let _ = std::fs::write(&self.path, line.to_string());
        }
    }
}

/// Checks whether an event's message is the given text.
struct MessageIs(&'static str, bool);

impl tracing::field::Visit for MessageIs {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" && value == self.0 {
            self.1 = true;
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && format!("{value:?}") == self.0 {
            self.1 = true;
        }
    }
}
