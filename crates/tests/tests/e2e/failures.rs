//! Every way a plugin can fail to start gives its own typed error, fast,
//! and leaves no process or socket directory behind.

use crate::support::{FAILURE_BUDGET, Scratch, builder};
use rpcplugin::{CertError, ClientBuilder, ClientTls, Error, KeyType, PluginExit};
use rpcplugin_handshake::ParseError;
use rpcplugin_tests::{COOKIE_KEY, mode};
use std::time::Duration;
use tokio::time::Instant;

/// Starts, expects an error within the budget, checks nothing is left.
async fn start_fails(builder: ClientBuilder, scratch: &Scratch) -> Error {
    let started = Instant::now();
    let result = builder.start().await;
    let elapsed = started.elapsed();
    let err = match result {
        Ok(client) => panic!("the plugin started: {client:?}"),
        Err(err) => err,
    };
    eprintln!("start failed after {elapsed:?}: {err}");
    assert!(
        elapsed < FAILURE_BUDGET,
        "took {elapsed:?} to report: {err}"
    );
    scratch.assert_plugin_gone();
    err
}

#[tokio::test]
async fn plugin_exits_before_the_handshake() {
    let scratch = Scratch::new();
    let err = start_fails(builder(mode::EXIT_EARLY, &scratch), &scratch).await;
    match &err {
        Error::PluginExited {
            exit: Some(PluginExit::Status(status)),
            stderr_tail,
        } => {
            assert_eq!(status.code(), Some(3), "{err}");
            assert!(err.to_string().contains("(exit status: 3)"), "{err}");
            assert!(
                stderr_tail.contains("giving up before the handshake"),
                "{err}"
            );
        }
        other => panic!("expected PluginExited, got {other:?}"),
    }
}

#[tokio::test]
async fn not_a_plugin() {
    let scratch = Scratch::new();
    let err = start_fails(builder(mode::GARBAGE, &scratch), &scratch).await;
    assert!(
        matches!(
            err,
            Error::InvalidHandshake {
                source: ParseError::FieldCount { count: 1, .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_cookie() {
    let scratch = Scratch::new();
    let builder = builder(mode::NORMAL, &scratch).cookie(COOKIE_KEY, "not-the-cookie");
    let err = start_fails(builder, &scratch).await;
    match &err {
        Error::CookieRejected { stderr_tail } => {
            assert!(stderr_tail.contains("This binary is a plugin"), "{err}");
        }
        other => panic!("expected CookieRejected, got {other:?}"),
    }
}

#[tokio::test]
async fn incompatible_core_version() {
    let scratch = Scratch::new();
    let err = start_fails(builder(mode::CORE_VERSION, &scratch), &scratch).await;
    assert!(
        matches!(err, Error::IncompatibleCoreVersion { plugin: 2, host: 1 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn incompatible_app_version() {
    // The plugin only has version 1: with no version in common it
    // announces its lowest, which this host does not speak.
    let scratch = Scratch::new();
    let err = start_fails(builder(mode::NORMAL, &scratch).versions([5, 6]), &scratch).await;
    match &err {
        Error::IncompatibleVersion { plugin, host } => {
            assert_eq!((*plugin, host.as_slice()), (1, &[5, 6][..]), "{err}");
        }
        other => panic!("expected IncompatibleVersion, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_network() {
    let scratch = Scratch::new();
    let err = start_fails(builder(mode::UNKNOWN_NETWORK, &scratch), &scratch).await;
    assert!(
        matches!(
            &err,
            Error::InvalidHandshake { source: ParseError::UnknownNetwork { value }, .. } if value == "udp"
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn netrpc_protocol() {
    let scratch = Scratch::new();
    let err = start_fails(builder(mode::NETRPC, &scratch), &scratch).await;
    assert!(
        matches!(&err, Error::UnsupportedProtocol { protocol } if protocol == "netrpc"),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_base64_certificate() {
    let scratch = Scratch::new();
    let err = start_fails(builder(mode::BAD_CERT, &scratch), &scratch).await;
    assert!(
        matches!(
            err,
            Error::InvalidHandshake {
                source: ParseError::InvalidCertificate { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn no_certificate_although_automtls_is_on() {
    let scratch = Scratch::new();
    let builder = builder(mode::IGNORE_CLIENT_CERT, &scratch).tls(ClientTls::Auto(KeyType::EcP256));
    let err = start_fails(builder, &scratch).await;
    assert!(matches!(err, Error::MissingServerCert), "{err:?}");
}

#[tokio::test]
async fn certificate_although_tls_is_off() {
    let scratch = Scratch::new();
    let builder = builder(mode::INJECT_CLIENT_CERT, &scratch).tls(ClientTls::Disabled);
    let err = start_fails(builder, &scratch).await;
    assert!(matches!(err, Error::UnexpectedServerCert), "{err:?}");
}

#[tokio::test]
async fn plugin_presents_another_certificate_than_announced() {
    let scratch = Scratch::new();
    let err = start_fails(builder(mode::WRONG_CERT, &scratch), &scratch).await;
    match &err {
        Error::Connect { hint, .. } => {
            // The typed cause is reachable through the source chain.
            assert!(
                matches!(CertError::find_in(&err), Some(CertError::NotPinned { .. })),
                "{err}"
            );
            assert!(
                err.to_string().contains("other than the pinned one"),
                "{err}"
            );
            assert!(hint.is_some(), "{err}");
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[tokio::test]
async fn plugin_refuses_the_host_certificate() {
    let scratch = Scratch::new();
    let err = start_fails(builder(mode::PIN_OTHER_HOST, &scratch), &scratch).await;
    // With TLS 1.3 the client's side of the handshake is over before the
    // server has checked the client certificate; the host reads ahead for
    // the server's alert, so the refusal is a connect error with its hint.
    match &err {
        Error::Connect { hint, .. } => assert!(hint.is_some(), "{err}"),
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[tokio::test]
async fn plugin_not_serving() {
    let scratch = Scratch::new();
    let err = start_fails(builder(mode::UNHEALTHY, &scratch), &scratch).await;
    match &err {
        Error::Unhealthy(reason) => assert!(reason.contains("NOT_SERVING"), "{err}"),
        other => panic!("expected Unhealthy, got {other:?}"),
    }
}

#[tokio::test]
async fn silent_plugin_times_out() {
    let scratch = Scratch::new();
    let builder = builder(mode::SILENT, &scratch).start_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let err = start_fails(builder, &scratch).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        matches!(err, Error::StartTimeout { timeout, .. } if timeout == Duration::from_secs(1)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_10mb_first_line() {
    let scratch = Scratch::new();
    let err = start_fails(builder(mode::HUGE_LINE, &scratch), &scratch).await;
    assert!(
        matches!(
            err,
            Error::InvalidHandshake {
                source: ParseError::TooLong { .. },
                ..
            }
        ),
        "{err:?}"
    );
}
