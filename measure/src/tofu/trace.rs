//! Reads OpenTofu's `TF_LOG=trace` log: provider launches and what the
//! provider itself logged.
//!
//! go-plugin (1.4.3 in OpenTofu 1.10) logs, per launch, `provider: starting
//! plugin: path=..` then `provider: using plugin: version=N` once the
//! handshake line was read; the provider's own stderr lines appear as
//! `provider.terraform-provider-<name>: ..` at the level they carry.

/// One provider launch seen in the log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Launch {
    /// "starting plugin" to "using plugin", in milliseconds.
    pub(crate) ms: f64,
    /// The negotiated protocol version.
    pub(crate) version: u32,
}

/// What one command's trace log says about the provider.
#[derive(Debug, Default)]
pub(crate) struct TraceSummary {
    pub(crate) launches: Vec<Launch>,
    /// Provider log lines at WARN or ERROR.
    pub(crate) problems: Vec<String>,
    /// Launches that started but never reached "using plugin".
    pub(crate) unfinished: usize,
}

/// Milliseconds since midnight of a line's leading RFC 3339 timestamp
/// (`2026-11-30T16:08:32.196Z ...`).
fn timestamp_ms(line: &str) -> Option<f64> {
    let time = line.get(11..23)?;
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(((h * 60.0 + m) * 60.0 + s) * 1000.0)
}

/// Parses a trace log. `provider_logger` is the logger name of the
/// provider's own lines, e.g. `provider.terraform-provider-localfs`.
pub(crate) fn parse(log: &str, provider_logger: &str) -> TraceSummary {
    let mut summary = TraceSummary::default();
    let mut pending: Vec<f64> = Vec::new();
    let own = format!("{provider_logger}:");
    for line in log.lines() {
        if line.contains("provider: starting plugin:") {
            if let Some(t) = timestamp_ms(line) {
                pending.push(t);
            }
        } else if let Some(rest) = line.split("provider: using plugin: version=").nth(1) {
            let version = rest.trim().parse().unwrap_or(0);
            if let (Some(t), Some(start)) = (timestamp_ms(line), pending.first().copied()) {
                pending.remove(0);
                let mut ms = t - start;
                if ms < 0.0 {
                    ms += 86_400_000.0; // crossed midnight
                }
                summary.launches.push(Launch { ms, version });
            }
        } else if line.contains(&own) && (line.contains("[WARN]") || line.contains("[ERROR]")) {
            summary.problems.push(line.to_owned());
        }
    }
    summary.unfinished = pending.len();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-11-30T16:08:32.196Z [DEBUG] provider: starting plugin: path=/p/terraform-provider-localfs args=[\"/p\"]
2026-11-30T16:08:32.197Z [DEBUG] provider: plugin started: path=/p/terraform-provider-localfs pid=12232
2026-11-30T16:08:32.221Z [DEBUG] provider.terraform-provider-localfs: plugin ready: @module=localfs
2026-11-30T16:08:32.221Z [DEBUG] provider: using plugin: version=6
2026-11-30T16:08:32.300Z [WARN]  provider.terraform-provider-localfs: slow disk: @module=localfs
2026-11-30T16:08:32.301Z [WARN]  some other component: not ours
2026-11-30T23:59:59.990Z [DEBUG] provider: starting plugin: path=/p/terraform-provider-localfs
2026-12-01T00:00:00.010Z [DEBUG] provider: using plugin: version=5
2026-12-01T00:00:01.000Z [DEBUG] provider: starting plugin: path=/p/terraform-provider-localfs
";

    #[test]
    fn launches_problems_and_unfinished() {
        let s = parse(LOG, "provider.terraform-provider-localfs");
        assert_eq!(s.launches.len(), 2);
        assert!((s.launches[0].ms - 25.0).abs() < 1e-6);
        assert_eq!(s.launches[0].version, 6);
        assert!((s.launches[1].ms - 20.0).abs() < 1e-6);
        assert_eq!(s.launches[1].version, 5);
        assert_eq!(s.problems.len(), 1);
        assert!(s.problems[0].contains("slow disk"));
        assert_eq!(s.unfinished, 1);
    }
}
