//! Likely causes of a failure, named from the typed errors in its source
//! chain, and from a peer's own words only where nothing typed exists.

use std::io;

/// Likely causes, one sentence each.
pub(crate) mod cause {
    pub(crate) const KEY_TYPE: &str = "the peer cannot use the key type of a certificate offered (grpcio/BoringSSL cannot verify P-521, for one); choose a P-256 or P-384 key";
    pub(crate) const CLIENT_CERT: &str = "the peer requires a client certificate and none was accepted; check that both sides use AutoMTLS or the same manual TLS setup";
    pub(crate) const WRONG_CERT: &str = "a certificate other than the expected one was presented: the peer's certificate is not pinned on this side or this side's is not trusted there";
    pub(crate) const ALPN: &str =
        "the peer did not negotiate ALPN h2, which gRPC over TLS requires";
    pub(crate) const PLAINTEXT: &str =
        "one side speaks TLS and the other plaintext: check that TLS is on or off on both sides";
    pub(crate) const NOT_LISTENING: &str =
        "the plugin is no longer listening at its address (did it exit?)";
    pub(crate) const CONNECTION_LOST: &str =
        "the connection to the plugin broke: did the plugin exit? (Client::explain names its exit)";
    pub(crate) const CLOSED_IN_HANDSHAKE: &str = "the plugin closed the connection during the TLS handshake: it refused this host's certificate, or cannot use the key type of one of the certificates (grpcio cannot verify P-521)";
}

/// When a failure happened: I/O errors mean different things while
/// connecting and in the middle of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Connect,
    Call,
}

/// Names the likely cause of a failure from the typed errors in its source
/// chain: rustls errors and alerts, and I/O error kinds.
pub(crate) fn typed_hint(
    err: &(dyn std::error::Error + 'static),
    stage: Stage,
) -> Option<&'static str> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return rustls_hint(tls);
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return rustls_hint(tls);
            }
            if let Some(hint) = io_hint(io.kind(), stage) {
                return Some(hint);
            }
        }
        current = e.source();
    }
    None
}

fn rustls_hint(err: &rustls::Error) -> Option<&'static str> {
    use rustls::AlertDescription as Alert;
    use rustls::{Error as E, PeerIncompatible as P};
    match err {
        E::AlertReceived(Alert::HandshakeFailure | Alert::InsufficientSecurity)
        | E::PeerIncompatible(
            P::NoSignatureSchemesInCommon | P::NoCertificateRequestSignatureSchemesInCommon,
        ) => Some(cause::KEY_TYPE),
        E::AlertReceived(Alert::CertificateRequired) | E::NoCertificatesPresented => {
            Some(cause::CLIENT_CERT)
        }
        E::AlertReceived(Alert::BadCertificate | Alert::UnknownCA | Alert::CertificateUnknown)
        | E::InvalidCertificate(_) => Some(cause::WRONG_CERT),
        E::AlertReceived(Alert::NoApplicationProtocol) | E::NoApplicationProtocol => {
            Some(cause::ALPN)
        }
        E::InvalidMessage(_) | E::AlertReceived(Alert::RecordOverflow) => Some(cause::PLAINTEXT),
        _ => None,
    }
}

fn io_hint(kind: io::ErrorKind, stage: Stage) -> Option<&'static str> {
    match kind {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => Some(cause::NOT_LISTENING),
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::UnexpectedEof => Some(match stage {
            Stage::Connect => cause::CLOSED_IN_HANDSHAKE,
            Stage::Call => cause::CONNECTION_LOST,
        }),
        _ => None,
    }
}

/// Recognises TLS failures in a peer's own words: a gRPC status message from
/// a Go or Python peer is text, with no typed cause to inspect. Local
/// failures are named by [`typed_hint`] instead.
pub(crate) fn tls_hint(text: &str) -> Option<&'static str> {
    let t = text.to_ascii_lowercase();
    let rules: &[(&[&str], &'static str)] = &[
        (
            &["handshake failure", "insufficient security", "no signature"],
            cause::KEY_TYPE,
        ),
        (
            &["certificate required", "no certificates"],
            cause::CLIENT_CERT,
        ),
        (
            &[
                "bad certificate",
                "unknown certificate authority",
                "certificate unknown",
            ],
            cause::WRONG_CERT,
        ),
        (&["no application protocol"], cause::ALPN),
        (
            &[
                "first record does not look like a tls handshake",
                "wrong version number",
            ],
            cause::PLAINTEXT,
        ),
    ];
    rules
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| t.contains(n)))
        .map(|(_, hint)| *hint)
}

/// Joins an error and its sources into one line.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn hints_come_from_typed_causes() {
        use rustls::AlertDescription as Alert;
        let tls = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let hint = |e: io::Error, stage| typed_hint(&e, stage);
        assert_eq!(
            hint(
                tls(rustls::Error::AlertReceived(Alert::HandshakeFailure)),
                Stage::Connect
            ),
            Some(cause::KEY_TYPE)
        );
        assert_eq!(
            hint(tls(rustls::Error::NoCertificatesPresented), Stage::Connect),
            Some(cause::CLIENT_CERT)
        );
        assert_eq!(
            hint(
                tls(rustls::Error::InvalidMessage(
                    rustls::InvalidMessage::InvalidContentType
                )),
                Stage::Connect
            ),
            Some(cause::PLAINTEXT)
        );
        // A broken pipe means a refusal during the handshake, but a lost
        // plugin in the middle of a call: never a TLS guess there.
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert_eq!(
            hint(pipe(), Stage::Connect),
            Some(cause::CLOSED_IN_HANDSHAKE)
        );
        assert_eq!(hint(pipe(), Stage::Call), Some(cause::CONNECTION_LOST));
        assert_eq!(hint(io::Error::other("all good"), Stage::Call), None);
    }

    #[test]
    fn a_peers_words_are_read_when_there_is_nothing_typed() {
        let status = tonic::Status::unavailable(
            "connection error: desc = \"transport: authentication handshake failed: remote error: tls: handshake failure\"",
        );
        assert!(matches!(
            Error::from_status(status),
            Error::Rpc {
                hint: Some(cause::KEY_TYPE),
                ..
            }
        ));
        assert!(matches!(
            Error::from_status(tonic::Status::internal("all good")),
            Error::Rpc { hint: None, .. }
        ));
    }
}
