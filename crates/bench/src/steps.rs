//! Times the library's own start steps: a `tracing` layer that records,
//! for every span of `rpcplugin_runtime` (`plugin_start` and its steps
//! `keygen`, `spawn`, `handshake`, `connect`, `health_check`), the time
//! from its creation to its close.
//!
//! ```
//! use rpcplugin_bench::steps::StepClock;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let clock = StepClock::default();
//! let subscriber = tracing_subscriber::registry().with(clock.clone());
//! tracing::subscriber::with_default(subscriber, || {
//!     // Spans of other crates are not recorded.
//!     let _span = tracing::info_span!("elsewhere").entered();
//! });
//! assert!(clock.steps().is_empty());
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::span::{Attributes, Id};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Spans of targets under this prefix are timed.
const TARGET: &str = "rpcplugin_runtime";

/// One closed span.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The span's name.
    pub name: &'static str,
    /// Creation to close.
    pub elapsed: Duration,
    /// Wall clock at creation, microseconds since the Unix epoch.
    pub opened_unix_us: u64,
    /// Wall clock at close, microseconds since the Unix epoch.
    pub closed_unix_us: u64,
}

/// The layer; clones share one list of steps.
#[derive(Debug, Clone, Default)]
pub struct StepClock {
    steps: Arc<Mutex<Vec<Step>>>,
}

/// When a span was created, kept in its extensions.
struct Opened {
    at: Instant,
    unix_us: u64,
}

impl StepClock {
    /// The steps closed so far, in closing order.
    pub fn steps(&self) -> Vec<Step> {
        self.steps.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The last closed step named `name`.
    pub fn step(&self, name: &str) -> Option<Step> {
        self.steps().into_iter().rev().find(|s| s.name == name)
    }
}

fn timed(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.target().starts_with(TARGET)
}

impl<S> tracing_subscriber::Layer<S> for StepClock
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !timed(attrs.metadata()) {
            return;
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Opened {
                at: Instant::now(),
                unix_us: crate::unix_us(),
            });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let extensions = span.extensions();
        let Some(opened) = extensions.get::<Opened>() else {
            return;
        };
        let step = Step {
            name: span.name(),
            elapsed: opened.at.elapsed(),
            opened_unix_us: opened.unix_us,
            closed_unix_us: crate::unix_us(),
        };
        if let Ok(mut steps) = self.steps.lock() {
            steps.push(step);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn records_runtime_spans_with_their_names_and_times() {
        let clock = StepClock::default();
        let subscriber = tracing_subscriber::registry().with(clock.clone());
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::span!(
                target: "rpcplugin_runtime::client::builder",
                tracing::Level::DEBUG,
                "plugin_start"
            )
            .entered();
            {
                let _step = tracing::span!(
                    target: "rpcplugin_runtime::client::builder",
                    tracing::Level::DEBUG,
                    "spawn"
                )
                .entered();
            }
            {
                let _other = tracing::info_span!("not_ours").entered();
            }
            drop(outer);
        });
        let names: Vec<&str> = clock.steps().iter().map(|s| s.name).collect();
        assert_eq!(names, ["spawn", "plugin_start"]);
        let (spawn, start) = (
            clock.step("spawn").unwrap(),
            clock.step("plugin_start").unwrap(),
        );
        assert!(spawn.elapsed <= start.elapsed);
        assert!(start.opened_unix_us <= spawn.opened_unix_us);
        assert!(spawn.closed_unix_us <= start.closed_unix_us);
    }
}
