//! Logs across the process boundary, in go-plugin's format.
//!
//! Plugin side: [`HclogLayer`] is a `tracing` layer that writes one hclog
//! JSON object per line to the plugin's real stderr, so a Go host shows Rust
//! logs at their level. Host side: [`parse_stderr_line`] reads a plugin's
//! stderr line the way go-plugin's host does, and the client turns it into a
//! `tracing` event.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;
use time::format_description::FormatItem;
use time::macros::format_description;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;

/// `2006-01-02T15:04:05.000000Z07:00` in Go's notation: exactly six
/// fractional digits, which go-plugin's host requires.
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Where plugin logs go: the real stderr, kept aside when fd 2 is redirected.
static LOG_SINK: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// Sends log lines to `file` instead of fd 2 from now on.
pub(crate) fn set_log_sink(file: std::fs::File) {
    if let Ok(mut sink) = LOG_SINK.lock() {
        *sink = Some(file);
    }
}

/// Writes one complete line to the log sink (or stderr before redirection).
pub(crate) fn write_log_line(line: &[u8]) {
    if let Ok(mut sink) = LOG_SINK.lock() {
        let _ = match sink.as_mut() {
            Some(file) => file.write_all(line),
            None => std::io::stderr().lock().write_all(line),
        };
    }
}

/// A `tracing` layer writing hclog-compatible JSON lines to the plugin's
/// stderr: `@level`, `@message`, `@module`, `@timestamp` (six fractional
/// digits, UTC) and the event's fields, keys sorted as hclog sorts them.
///
/// [`crate::PluginServer`] installs it unless told not to; install it
/// yourself to combine it with other layers:
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// let subscriber = tracing_subscriber::registry().with(rpcplugin_runtime::HclogLayer::new("kv"));
/// tracing::subscriber::with_default(subscriber, || tracing::info!(key = "a", "stored"));
/// ```
#[derive(Debug, Clone)]
pub struct HclogLayer {
    module: String,
}

impl HclogLayer {
    /// A layer whose lines carry `@module` = `module`.
    pub fn new(module: impl Into<String>) -> HclogLayer {
        HclogLayer {
            module: module.into(),
        }
    }

    /// Formats one event as an hclog JSON line (with trailing newline).
    ///
    /// ```
    /// use tracing::Level;
    /// let line = rpcplugin_runtime::HclogLayer::new("kv").format(Level::WARN, "disk low", &[("free", "3".into())]);
    /// assert!(line.starts_with(r#"{"@level":"warn","@message":"disk low","@module":"kv","@timestamp":""#));
    /// ```
    pub fn format(&self, level: Level, message: &str, fields: &[(&str, Value)]) -> String {
        let mut map = BTreeMap::new();
        for (k, v) in fields {
            map.insert((*k).to_owned(), v.clone());
        }
        self.render(level, message.to_owned(), map)
    }

    fn render(&self, level: Level, message: String, mut map: BTreeMap<String, Value>) -> String {
        let now = time::OffsetDateTime::now_utc();
        let timestamp = now.format(TIMESTAMP).unwrap_or_default();
        map.insert("@level".into(), Value::String(level_name(level).into()));
        map.insert("@message".into(), Value::String(message));
        if !self.module.is_empty() {
            map.insert("@module".into(), Value::String(self.module.clone()));
        }
        map.insert("@timestamp".into(), Value::String(timestamp));
        let mut line = serde_json::to_string(&map).unwrap_or_default();
        line.push('\n');
        line
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

#[derive(Default)]
struct JsonVisitor {
    message: String,
    fields: BTreeMap<String, Value>,
}

impl JsonVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            match value {
                Value::String(s) => self.message = s,
                other => self.message = other.to_string(),
            }
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for JsonVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.put(field, Value::String(s));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(crate::error::chain(value)));
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for HclogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = JsonVisitor::default();
        event.record(&mut visitor);
        let meta = event.metadata();
        let line = self.render(*meta.level(), visitor.message, visitor.fields);
        write_log_line(line.as_bytes());
    }
}

/// Installs the hclog layer as the global subscriber, filtered by
/// `RUST_LOG` (default: debug for everything but the gRPC and TLS stack).
/// Returns false when a global subscriber was already set.
///
/// `RUST_LOG` takes comma-separated `target=level` directives and a bare
/// default level, such as `info,my_plugin=trace` (tracing-subscriber's
/// [`Targets`](tracing_subscriber::filter::Targets) syntax); span and field
/// filters (`target[span{field}]=level`) are not supported. A value that
/// does not parse (an unknown level, a second `=`) is reported in one
/// warning and the default filter is used instead.
///
/// ```
/// rpcplugin_runtime::init_plugin_logging("kv");
/// tracing::info!("ready");
/// ```
pub fn init_plugin_logging(module: &str) -> bool {
    use tracing_subscriber::layer::SubscriberExt;
    // `Targets` rather than `EnvFilter`: the latter's directive parser
    // brings a regular-expression engine into every plugin executable, and
    // code a plugin links is memory it keeps resident.
    let (filter, rejected) = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => match value.parse() {
            Ok(filter) => (filter, None),
            Err(err) => (default_log_filter(), Some((value, err))),
        },
        _ => (default_log_filter(), None),
    };
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(HclogLayer::new(module));
    let installed = tracing::subscriber::set_global_default(subscriber).is_ok();
    if installed && let Some((value, err)) = rejected {
        tracing::warn!(
            rust_log = %value,
            %err,
            "RUST_LOG not understood (it takes target=level directives); using the default filter"
        );
    }
    installed
}

/// Debug for everything but the gRPC and TLS stack, which log at info.
fn default_log_filter() -> tracing_subscriber::filter::Targets {
    use tracing::level_filters::LevelFilter;
    tracing_subscriber::filter::Targets::new()
        .with_default(LevelFilter::DEBUG)
        .with_targets(
            [
                "h2",
                "hyper",
                "hyper_util",
                "tower",
                "tonic",
                "rustls",
                "loona_hpack",
            ]
            .map(|target| (target, LevelFilter::INFO)),
        )
}

/// One plugin stderr line, read the way go-plugin's host reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct StderrLine {
    /// The level the host logs it at.
    pub level: Level,
    /// The message (for JSON lines `@message`, otherwise the raw line).
    pub message: String,
    /// Other JSON keys, sorted (empty for text lines).
    pub fields: Vec<(String, String)>,
    /// Whether this line starts a panic (`panic: ` or `fatal error: `).
    pub starts_panic: bool,
}

/// Reads one plugin stderr line as go-plugin's host does (§6.1 of the
/// protocol notes): an hclog JSON object with a known `@level` and a
/// six-digit `@timestamp` (or none) keeps its level; a JSON object without a
/// usable level is logged raw at debug; text lines tagged `[TRACE]` ...
/// `[ERROR]` keep that level; `panic: ` and `fatal error: ` lines (and Rust's
/// own fatal messages: a panic, `memory allocation of N bytes failed`, a
/// stack overflow, `fatal runtime error: `) are errors, and so is every
/// untagged line after them (`in_panic`). Non-string
/// `@level`/`@message`/`@timestamp` values, which crash a Go host, are
/// handled as text here.
///
/// ```
/// use rpcplugin_runtime::internal::parse_stderr_line;
/// use tracing::Level;
/// let line = parse_stderr_line(r#"{"@level":"warn","@message":"low disk","@timestamp":"2026-03-01T12:00:00.123456Z","free":3}"#, false);
/// assert_eq!(line.level, Level::WARN);
/// assert_eq!(line.message, "low disk");
/// assert_eq!(line.fields, vec![("free".to_string(), "3".to_string())]);
/// assert_eq!(parse_stderr_line("[ERROR] boom", false).level, Level::ERROR);
/// assert_eq!(parse_stderr_line("hello", true).level, Level::ERROR);
/// assert_eq!(parse_stderr_line("memory allocation of 64 bytes failed", false).level, Level::ERROR);
/// ```
pub fn parse_stderr_line(line: &str, in_panic: bool) -> StderrLine {
    let trimmed = line.trim_end_matches(['\r', '\n']);
    if let Some(parsed) = parse_json_line(trimmed) {
        return parsed;
    }
    let text = |level| StderrLine {
        level,
        message: trimmed.to_owned(),
        fields: Vec::new(),
        starts_panic: false,
    };
    for (tag, level) in [
        ("[TRACE]", Level::TRACE),
        ("[DEBUG]", Level::DEBUG),
        ("[INFO]", Level::INFO),
        ("[WARN]", Level::WARN),
        ("[ERROR]", Level::ERROR),
    ] {
        if trimmed.starts_with(tag) {
            return text(level);
        }
    }
    if trimmed.starts_with("panic: ") || trimmed.starts_with("fatal error: ") || rust_fatal(trimmed)
    {
        return StderrLine {
            starts_panic: true,
            ..text(Level::ERROR)
        };
    }
    text(if in_panic { Level::ERROR } else { Level::DEBUG })
}

/// What Rust's runtime writes to fd 2 as a process dies: the default panic
/// message, an abort on allocation failure, a stack overflow, and other
/// fatal runtime errors. (A Rust plugin's stderr is not redirected, so these
/// reach the host as Go's fatal errors do.)
fn rust_fatal(line: &str) -> bool {
    line.starts_with("fatal runtime error: ")
        || (line.starts_with("memory allocation of ") && line.ends_with(" failed"))
        || (line.starts_with("thread '")
            && (line.ends_with("has overflowed its stack") || line.contains("' panicked at ")))
}

fn parse_json_line(line: &str) -> Option<StderrLine> {
    if !line.starts_with('{') {
        return None;
    }
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line) else {
        return None;
    };
    let string_or_absent = |key: &str| match map.get(key) {
        None => Some(None),
        Some(Value::String(s)) => Some(Some(s.as_str())),
        Some(_) => None,
    };
    let level = string_or_absent("@level")?;
    let message = string_or_absent("@message")?.unwrap_or_default();
    if let Some(ts) = string_or_absent("@timestamp")?
        && !valid_go_timestamp(ts)
    {
        return None;
    }
    let level = match level.map(str::to_ascii_lowercase).as_deref() {
        Some("trace") => Level::TRACE,
        Some("debug") => Level::DEBUG,
        Some("info") => Level::INFO,
        Some("warn") => Level::WARN,
        Some("error") => Level::ERROR,
        _ => {
            return Some(StderrLine {
                level: Level::DEBUG,
                message: line.to_owned(),
                fields: Vec::new(),
                starts_panic: false,
            });
        }
    };
    Some(StderrLine {
        level,
        message: message.to_owned(),
        fields: other_fields(&map),
        starts_panic: false,
    })
}

fn other_fields(map: &Map<String, Value>) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = map
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "@level" | "@message" | "@timestamp"))
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect();
    fields.sort();
    fields
}

/// `2006-01-02T15:04:05.000000Z07:00`: six fractional digits, then `Z` or `±hh:mm`.
fn valid_go_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let head = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19)
        && at(19, b'.')
        && digits(20..26);
    let zone = match b.get(26..) {
        Some(b"Z") => true,
        Some([sign, ..]) if (*sign == b'+' || *sign == b'-') && b.len() == 32 => {
            digits(27..29) && at(29, b':') && digits(30..32)
        }
        _ => false,
    };
    head && zone
}

/// The `tracing` target of relayed plugin logs.
pub(crate) const PLUGIN_LOG_TARGET: &str = "rpcplugin::plugin";

/// Emits a parsed plugin stderr line as a `tracing` event of its level.
pub(crate) fn emit(plugin: &str, line: &StderrLine) {
    let fields = if line.fields.is_empty() {
        String::new()
    } else {
        line.fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let message = line.message.as_str();
    match line.level {
        Level::TRACE => tracing::trace!(target: PLUGIN_LOG_TARGET, plugin, fields, "{message}"),
        Level::DEBUG => tracing::debug!(target: PLUGIN_LOG_TARGET, plugin, fields, "{message}"),
        Level::INFO => tracing::info!(target: PLUGIN_LOG_TARGET, plugin, fields, "{message}"),
        Level::WARN => tracing::warn!(target: PLUGIN_LOG_TARGET, plugin, fields, "{message}"),
        Level::ERROR => tracing::error!(target: PLUGIN_LOG_TARGET, plugin, fields, "{message}"),
    }
}

#[cfg(test)]
mod tests;
