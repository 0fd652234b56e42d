//! One misbehaving test plugin per case. For each: the host returns the
//! expected `rpcplugin::Error` variant within the bound, a healthy plugin
//! started by the same host keeps answering, and nothing is left behind.

use crate::census::{Census, MARK_ENV, Row, mark, ms, serial};
use crate::support::{Scratch, builder};
use rpcplugin::PluginChannel;
use rpcplugin::{CertError, Client, ClientBuilder, ClientTls, Error, KeyType, PluginExit};
use rpcplugin_handshake::ParseError;
use rpcplugin_kv::proto::kv_client::KvClient;
use rpcplugin_kv::proto::{GetRequest, PutRequest};
use rpcplugin_tests::{COOKIE_KEY, GRANDCHILD_REPORT_SUFFIX, keys, mode};
use std::time::Duration;
use tokio::time::Instant;

/// The bound for every failure that does not wait for a configured timeout.
const BOUND: Duration = Duration::from_secs(2);

/// A case gives up (and fails) after this much more than its bound.
const HANG_MARGIN: Duration = Duration::from_secs(10);

/// A client builder for the test plugin in `mode`, marked for the census.
fn launch(mode: &str, scratch: &Scratch) -> ClientBuilder {
    builder(mode, scratch).env(MARK_ENV, mark())
}

/// The variant name of an error, for the table (`{:#?}` is the variant and
/// its fields; `{:?}` is the message).
fn variant(err: &Error) -> String {
    let text = format!("{err:#?}");
    let end = text.find([' ', '(', '{']).unwrap_or(text.len());
    text[..end].to_owned()
}

/// Runs one fault case around a healthy companion plugin and records its row.
///
/// `body` drives the faulty plugin and returns what it measured, or why the
/// case failed.
fn fault_case(
    case: &str,
    expected: &str,
    bound: Duration,
    body: impl AsyncFnOnce(&Scratch) -> Result<String, String>,
) {
    serial(|| run_fault_case(case, expected, bound, body));
}

async fn run_fault_case(
    case: &str,
    expected: &str,
    bound: Duration,
    body: impl AsyncFnOnce(&Scratch) -> Result<String, String>,
) {
    let before = Census::take();
    let mut failures = Vec::new();

    let companion_scratch = Scratch::new();
    let mut companion = launch(mode::NORMAL, &companion_scratch)
        .start()
        .await
        .expect("the healthy companion plugin starts");

    let scratch = Scratch::new();
    let measured = match tokio::time::timeout(bound + HANG_MARGIN, body(&scratch)).await {
        Ok(Ok(measured)) => measured,
        Ok(Err(failure)) => {
            failures.push(failure);
            String::new()
        }
        Err(_) => {
            failures.push(format!("still running after {:?}", bound + HANG_MARGIN));
            String::new()
        }
    };

    match companion_answers(companion.channel()).await {
        Ok(_) => {}
        Err(err) => failures.push(format!("the healthy plugin stopped answering: {err}")),
    }
    if let Err(err) = companion.kill().await {
        failures.push(format!("killing the healthy plugin failed: {err}"));
    }
    drop(companion);
    let leaks = Census::leaks_since(&before).await;
    if !leaks.is_empty() {
        Census::kill_marked();
        failures.extend(leaks);
    }
    let row = Row {
        group: "fault",
        case: case.to_owned(),
        expected: expected.to_owned(),
        measured,
        bound: format!("{bound:?}"),
        failure: failures.join("; "),
    };
    row.record();
    assert!(row.failure.is_empty(), "{case}: {}", row.failure);
}

/// A Put then a Get on the companion, each within the bound.
async fn companion_answers(channel: PluginChannel) -> Result<Duration, String> {
    let started = Instant::now();
    let mut kv = KvClient::new(channel);
    let call = async {
        kv.put(PutRequest {
            key: "companion".into(),
            value: b"still here".to_vec().into(),
        })
        .await?;
        kv.get(GetRequest {
            key: "companion".into(),
        })
        .await
    };
    match tokio::time::timeout(BOUND, call).await {
        Ok(Ok(reply)) if reply.get_ref().value.as_ref() == b"still here" => Ok(started.elapsed()),
        Ok(Ok(reply)) => Err(format!("wrong value {:?}", reply.get_ref().value)),
        Ok(Err(status)) => Err(status.to_string()),
        Err(_) => Err(format!("no answer within {BOUND:?}")),
    }
}

/// Starts `builder`, which must fail within `bound` with an error `check`
/// accepts; returns the measurement for the table.
async fn start_fails(
    builder: ClientBuilder,
    bound: Duration,
    check: impl FnOnce(&Error) -> bool,
) -> Result<String, String> {
    let started = Instant::now();
    let result = builder.start().await;
    let took = started.elapsed();
    let err = match result {
        Ok(mut client) => {
            let _ = client.kill().await;
            return Err("the plugin started".into());
        }
        Err(err) => err,
    };
    if !check(&err) {
        return Err(format!("unexpected error {err:?}"));
    }
    if took > bound {
        return Err(format!(
            "took {} to report {}: {err}",
            ms(took),
            variant(&err)
        ));
    }
    Ok(format!("`{}` after {}", variant(&err), ms(took)))
}

/// Stops `client` within `bound`, expecting an exit `check` accepts.
async fn kill_within(
    client: &mut Client,
    bound: Duration,
    check: impl FnOnce(Option<std::process::ExitStatus>) -> bool,
) -> Result<(Duration, String), String> {
    let started = Instant::now();
    let status = client.kill().await.map_err(|e| format!("kill: {e}"))?;
    let took = started.elapsed();
    let text = status.map_or("no status".to_owned(), |s| s.to_string());
    if !check(status) {
        return Err(format!("unexpected exit: {text}"));
    }
    if took > bound {
        return Err(format!("kill took {} ({text})", ms(took)));
    }
    Ok((took, text))
}

fn signal_of(status: Option<std::process::ExitStatus>) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.and_then(|s| s.signal())
}

#[test]
fn exits_before_the_handshake() {
    fault_case(
        "exits with status 3 before the handshake",
        "`PluginExited` (status 3, stderr tail)",
        BOUND,
        async |s| {
            start_fails(launch(mode::EXIT_EARLY, s), BOUND, |e| {
                matches!(e, Error::PluginExited { exit: Some(PluginExit::Status(status)), stderr_tail }
                    if status.code() == Some(3) && stderr_tail.contains("giving up"))
            })
            .await
        },
    );
}

#[test]
fn exits_right_after_the_handshake() {
    fault_case(
        "prints a valid handshake, then exits with status 4",
        "`Connect` (nothing listens any more)",
        BOUND,
        async |s| {
            start_fails(launch(mode::EXIT_AFTER_HANDSHAKE, s), BOUND, |e| {
                matches!(e, Error::Connect { .. })
            })
            .await
        },
    );
}

#[test]
fn prints_garbage() {
    fault_case(
        "prints garbage instead of the handshake",
        "`InvalidHandshake` (field count)",
        BOUND,
        async |s| {
            start_fails(launch(mode::GARBAGE, s), BOUND, |e| {
                matches!(
                    e,
                    Error::InvalidHandshake {
                        source: ParseError::FieldCount { .. },
                        ..
                    }
                )
            })
            .await
        },
    );
}

#[test]
fn prints_to_stdout_before_the_handshake() {
    fault_case(
        "prints a line to stdout before its handshake",
        "`InvalidHandshake` (field count)",
        BOUND,
        async |s| {
            start_fails(launch(mode::STDOUT_BEFORE_HANDSHAKE, s), BOUND, |e| {
                matches!(
                    e,
                    Error::InvalidHandshake {
                        source: ParseError::FieldCount { .. },
                        ..
                    }
                )
            })
            .await
        },
    );
}

#[test]
fn prints_a_10mb_line() {
    fault_case(
        "prints a 10 MB first line",
        "`InvalidHandshake` (too long; at most 64 KiB read)",
        BOUND,
        async |s| {
            start_fails(launch(mode::HUGE_LINE, s), BOUND, |e| {
                matches!(
                    e,
                    Error::InvalidHandshake {
                        source: ParseError::TooLong { .. },
                        ..
                    }
                )
            })
            .await
        },
    );
}

#[test]
fn never_prints() {
    let timeout = Duration::from_secs(1);
    fault_case(
        "never prints anything (start timeout 1 s)",
        "`StartTimeout` after the configured 1 s",
        timeout + Duration::from_millis(500),
        async |s| {
            let started = Instant::now();
            let measured = start_fails(
                launch(mode::SILENT, s).start_timeout(timeout),
                timeout + Duration::from_millis(500),
                |e| matches!(e, Error::StartTimeout { timeout: t, .. } if *t == timeout),
            )
            .await?;
            if started.elapsed() < timeout {
                return Err(format!("gave up early, after {}", ms(started.elapsed())));
            }
            Ok(measured)
        },
    );
}

#[test]
fn wrong_core_version() {
    fault_case(
        "announces core protocol version 2",
        "`IncompatibleCoreVersion`",
        BOUND,
        async |s| {
            start_fails(launch(mode::CORE_VERSION, s), BOUND, |e| {
                matches!(e, Error::IncompatibleCoreVersion { plugin: 2, host: 1 })
            })
            .await
        },
    );
}

#[test]
fn wrong_app_version() {
    fault_case(
        "announces app version 1, host speaks 5 and 6",
        "`IncompatibleVersion`",
        BOUND,
        async |s| {
            start_fails(launch(mode::NORMAL, s).versions([5, 6]), BOUND, |e| {
                matches!(e, Error::IncompatibleVersion { plugin: 1, .. })
            })
            .await
        },
    );
}

#[test]
fn wrong_network() {
    fault_case(
        "announces network `udp`",
        "`InvalidHandshake` (unknown network)",
        BOUND,
        async |s| {
            start_fails(launch(mode::UNKNOWN_NETWORK, s), BOUND, |e| {
                matches!(
                    e,
                    Error::InvalidHandshake {
                        source: ParseError::UnknownNetwork { .. },
                        ..
                    }
                )
            })
            .await
        },
    );
}

#[test]
fn netrpc_protocol() {
    fault_case(
        "announces protocol `netrpc`",
        "`UnsupportedProtocol`",
        BOUND,
        async |s| {
            start_fails(
                launch(mode::NETRPC, s),
                BOUND,
                |e| matches!(e, Error::UnsupportedProtocol { protocol } if protocol == "netrpc"),
            )
            .await
        },
    );
}

#[test]
fn bad_base64_certificate() {
    fault_case(
        "certificate field is not base64",
        "`InvalidHandshake` (invalid certificate)",
        BOUND,
        async |s| {
            start_fails(launch(mode::BAD_CERT, s), BOUND, |e| {
                matches!(
                    e,
                    Error::InvalidHandshake {
                        source: ParseError::InvalidCertificate { .. },
                        ..
                    }
                )
            })
            .await
        },
    );
}

#[test]
fn bad_der_certificate() {
    fault_case(
        "certificate field is base64 but not DER",
        "`Certs` (not a certificate)",
        BOUND,
        async |s| {
            start_fails(launch(mode::BAD_DER_CERT, s), BOUND, |e| {
                matches!(e, Error::Certs(_))
            })
            .await
        },
    );
}

#[test]
fn no_certificate_although_the_host_sent_one() {
    fault_case(
        "no certificate although the host sent PLUGIN_CLIENT_CERT",
        "`MissingServerCert`",
        BOUND,
        async |s| {
            let builder = launch(mode::IGNORE_CLIENT_CERT, s).tls(ClientTls::Auto(KeyType::EcP256));
            start_fails(builder, BOUND, |e| matches!(e, Error::MissingServerCert)).await
        },
    );
}

#[test]
fn certificate_although_host_tls_is_off() {
    fault_case(
        "sends a certificate although host TLS is off",
        "`UnexpectedServerCert`",
        BOUND,
        async |s| {
            let builder = launch(mode::INJECT_CLIENT_CERT, s).tls(ClientTls::Disabled);
            start_fails(builder, BOUND, |e| matches!(e, Error::UnexpectedServerCert)).await
        },
    );
}

#[test]
fn serves_another_certificate_than_announced() {
    fault_case(
        "serves TLS with a certificate other than the one in its handshake",
        "`Connect` (not the pinned certificate, with hint)",
        BOUND,
        async |s| {
            start_fails(launch(mode::WRONG_CERT, s), BOUND, |e| {
                matches!(e, Error::Connect { hint: Some(_), .. })
                    && matches!(CertError::find_in(e), Some(CertError::NotPinned { .. }))
            })
            .await
        },
    );
}

#[test]
fn refuses_the_host_certificate() {
    fault_case(
        "pins another host certificate (refuses ours)",
        "`Connect` or `Rpc` (TLS 1.3 reports it on first use)",
        BOUND,
        async |s| {
            start_fails(launch(mode::PIN_OTHER_HOST, s), BOUND, |e| {
                matches!(e, Error::Connect { .. } | Error::Rpc { .. })
            })
            .await
        },
    );
}

#[test]
fn wrong_cookie() {
    fault_case(
        "host sends the wrong magic cookie",
        "`CookieRejected` (plugin's message in the tail)",
        BOUND,
        async |s| {
            let builder = launch(mode::NORMAL, s).cookie(COOKIE_KEY, "not-the-cookie");
            start_fails(builder, BOUND, |e| {
                matches!(e, Error::CookieRejected { stderr_tail } if stderr_tail.contains("This binary is a plugin"))
            })
            .await
        },
    );
}

#[test]
fn health_not_serving() {
    fault_case(
        "health reports NOT_SERVING",
        "`Unhealthy`",
        BOUND,
        async |s| {
            start_fails(
                launch(mode::UNHEALTHY, s),
                BOUND,
                |e| matches!(e, Error::Unhealthy(reason) if reason.contains("NOT_SERVING")),
            )
            .await
        },
    );
}

#[test]
fn executable_missing() {
    fault_case("executable does not exist", "`Spawn`", BOUND, async |s| {
        let builder = Client::builder(s.path().join("no-such-plugin"))
            .cookie(COOKIE_KEY, "x")
            .env(MARK_ENV, mark());
        start_fails(builder, BOUND, |e| matches!(e, Error::Spawn { .. })).await
    });
}

/// Starts the test plugin in normal mode (AutoMTLS), asks it to do `key`
/// in a Put that must fail, and returns the error, the time the call took
/// and the client.
async fn failing_call(
    scratch: &Scratch,
    mode: &str,
    key: &str,
    value: &[u8],
    deadline: Option<Duration>,
) -> Result<(Error, Duration, Client), String> {
    let client = launch(mode, scratch)
        .start()
        .await
        .map_err(|e| format!("start: {e}"))?;
    let mut request = tonic::Request::new(PutRequest {
        key: key.into(),
        value: value.to_vec().into(),
    });
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    let started = Instant::now();
    let result = KvClient::new(client.channel()).put(request).await;
    let took = started.elapsed();
    match result {
        Ok(_) => Err(format!("the {key} call succeeded")),
        Err(status) => Ok((Error::from(status), took, client)),
    }
}

#[test]
fn crashes_mid_rpc_with_an_exit_code() {
    fault_case(
        "exits with status 7 in the middle of an RPC",
        "the call fails (`Rpc`), `kill` returns status 7",
        BOUND,
        async |s| {
            let (err, took, mut client) =
                failing_call(s, mode::NORMAL, keys::EXIT, b"7", None).await?;
            if !matches!(err, Error::Rpc { .. }) || took > BOUND {
                return Err(format!("after {}: {err:?}", ms(took)));
            }
            let (killed, status) =
                kill_within(&mut client, BOUND, |s| s.and_then(|s| s.code()) == Some(7)).await?;
            Ok(format!(
                "`Rpc` ({}) after {}; kill {} ({status})",
                rpc_code(&err),
                ms(took),
                ms(killed)
            ))
        },
    );
}

#[test]
fn crashes_mid_rpc_with_a_signal() {
    fault_case(
        "aborts (SIGABRT) in the middle of an RPC",
        "the call fails (`Rpc`), `kill` returns signal 6",
        BOUND,
        async |s| {
            let (err, took, mut client) =
                failing_call(s, mode::NORMAL, keys::ABORT, b"", None).await?;
            if !matches!(err, Error::Rpc { .. }) || took > BOUND {
                return Err(format!("after {}: {err:?}", ms(took)));
            }
            let (killed, status) =
                kill_within(&mut client, BOUND, |s| signal_of(s) == Some(6)).await?;
            Ok(format!(
                "`Rpc` ({}) after {}; kill {} ({status})",
                rpc_code(&err),
                ms(took),
                ms(killed)
            ))
        },
    );
}

fn rpc_code(err: &Error) -> String {
    match err {
        Error::Rpc { status, .. } => format!("{:?}", status.code()),
        _ => String::new(),
    }
}

#[test]
fn hangs_in_an_rpc() {
    let deadline = Duration::from_millis(500);
    fault_case(
        "hangs in an RPC (client deadline 500 ms)",
        "the call ends at its deadline (`Rpc` DeadlineExceeded/Cancelled); health still answers; `kill` within 2 s",
        BOUND,
        async |s| {
            let (err, took, mut client) =
                failing_call(s, mode::NORMAL, keys::HANG, b"", Some(deadline)).await?;
            let code = rpc_code(&err);
            if !(code == "DeadlineExceeded" || code == "Cancelled") || took > BOUND {
                return Err(format!("after {}: {err:?}", ms(took)));
            }
            client
                .ping()
                .await
                .map_err(|e| format!("ping while a call hangs: {e}"))?;
            let (killed, status) = kill_within(&mut client, BOUND, |s| s.is_some()).await?;
            Ok(format!(
                "`Rpc` ({code}) after {}; kill {} ({status})",
                ms(took),
                ms(killed)
            ))
        },
    );
}

#[test]
fn ignores_shutdown() {
    let grace = Duration::from_secs(1);
    fault_case(
        "does not exit after Shutdown (exit grace 1 s)",
        "`kill` SIGKILLs it after the grace period",
        BOUND,
        async |s| {
            let mut client = launch(mode::IGNORE_SHUTDOWN, s)
                .kill_timeouts(Duration::from_millis(500), grace)
                .start()
                .await
                .map_err(|e| format!("start: {e}"))?;
            let (killed, status) =
                kill_within(&mut client, BOUND, |s| signal_of(s) == Some(9)).await?;
            if killed < grace {
                return Err(format!("killed before the grace period: {}", ms(killed)));
            }
            Ok(format!("kill {} ({status})", ms(killed)))
        },
    );
}

/// Resident set size of this process, in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn floods_stdout_and_stderr() {
    fault_case(
        "floods stdout and stderr (raw pipes, GRPCStdio, hclog) after the handshake",
        "calls keep working; `kill` within 2 s; host memory bounded",
        BOUND,
        async |s| {
            let rss_before = rss_kib();
            let sink = crate::support::Sink::new();
            let mut client = launch(mode::FLOOD, s)
                .stdout(sink.clone())
                .stderr(std::io::sink())
                .start()
                .await
                .map_err(|e| format!("start: {e}"))?;
            if !sink.wait_for("captured stdout").await {
                return Err("no flooded stdout arrived through GRPCStdio".into());
            }
            let mut slowest = Duration::ZERO;
            let flooding_since = Instant::now();
            let mut calls = 0;
            while flooding_since.elapsed() < Duration::from_secs(1) {
                let took = companion_answers(client.channel()).await?;
                slowest = slowest.max(took);
                calls += 2;
            }
            let rss_during = rss_kib();
            let (killed, status) = kill_within(&mut client, BOUND, |s| s.is_some()).await?;
            let growth_mib = rss_during.saturating_sub(rss_before) / 1024;
            if growth_mib > 256 {
                return Err(format!("host RSS grew by {growth_mib} MiB"));
            }
            Ok(format!(
                "{calls} calls in 1 s of flood, slowest {}; host RSS +{growth_mib} MiB; kill {} ({status})",
                ms(slowest),
                ms(killed)
            ))
        },
    );
}

/// Whether the grandchild reported in the scratch dir is still running.
fn grandchild_alive(scratch: &Scratch) -> Option<u32> {
    let path = format!(
        "{}{GRANDCHILD_REPORT_SUFFIX}",
        scratch.report_path().display()
    );
    let report = rpcplugin_tests::Report::parse(&std::fs::read_to_string(path).ok()?)?;
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", report.pid)).ok()?;
    let state = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .to_owned();
    (state != "Z").then_some(report.pid)
}

/// Waits up to 2 s for the grandchild report to appear.
async fn wait_for_grandchild(scratch: &Scratch) -> Result<u32, String> {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(pid) = grandchild_alive(scratch) {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            return Err("the grandchild never started".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn forks_a_grandchild_then_serves() {
    fault_case(
        "starts a grandchild that holds stdout/stderr, then serves",
        "`kill` within 2 s; the grandchild is gone too",
        BOUND,
        async |s| {
            let mut client = launch(mode::GRANDCHILD, s)
                .start()
                .await
                .map_err(|e| format!("start: {e}"))?;
            let grandchild = wait_for_grandchild(s).await?;
            let (killed, status) = kill_within(&mut client, BOUND, |s| s.is_some()).await?;
            let deadline = Instant::now() + BOUND;
            while grandchild_alive(s).is_some() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if grandchild_alive(s).is_some() {
                return Err(format!("grandchild {grandchild} outlived the plugin"));
            }
            Ok(format!("kill {} ({status}); grandchild gone", ms(killed)))
        },
    );
}

#[test]
fn forks_a_grandchild_then_exits_before_the_handshake() {
    fault_case(
        "starts a grandchild that holds stdout/stderr, exits before the handshake",
        "`PluginExited` within 2 s (not the 60 s start timeout); the grandchild is gone too",
        BOUND,
        async |s| {
            let measured = start_fails(
                launch(mode::GRANDCHILD_EXIT_EARLY, s),
                BOUND,
                |e| matches!(e, Error::PluginExited { exit: Some(PluginExit::Status(status)), .. } if status.code() == Some(5)),
            )
            .await?;
            let deadline = Instant::now() + BOUND;
            while grandchild_alive(s).is_some() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if let Some(pid) = grandchild_alive(s) {
                return Err(format!(
                    "{measured}, but grandchild {pid} outlived the plugin"
                ));
            }
            Ok(format!("{measured}; grandchild gone"))
        },
    );
}
