//! Names the service and method in a plugin's `Unimplemented` answer.
//!
//! A tonic plugin answers a call it does not serve with status 12 and an
//! empty message, a grpcio plugin with `Method not found!`; neither says
//! which call it was. The host knows: it sent the path. The answer arrives
//! as a trailers-only response (the status in the response head), which is
//! where this rewrites `grpc-message`, so the `tonic::Status` the caller
//! gets says what was missing.

use http::{HeaderMap, HeaderValue};

const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";
/// `tonic::Code::Unimplemented`, as the header carries it.
const UNIMPLEMENTED: &[u8] = b"12";

/// Rewrites the `grpc-message` of an `Unimplemented` response head to name
/// the method and service of `path` (`/package.Service/Method`), keeping
/// the plugin's own words after it. Any other head is left alone.
pub(crate) fn name_the_call(path: &str, headers: &mut HeaderMap) {
    if headers.get(GRPC_STATUS).map(HeaderValue::as_bytes) != Some(UNIMPLEMENTED) {
        return;
    }
    let Some((service, method)) = split_path(path) else {
        return;
    };
    // The header is percent-encoded; what is appended stays as it came.
    let original = headers
        .get(GRPC_MESSAGE)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let mut message =
        format!("the plugin does not implement method {method} of service {service}").into_bytes();
    if !original.is_empty() {
        message.extend_from_slice(b" (it said: ");
        message.extend_from_slice(original);
        message.push(b')');
    }
    if let Ok(value) = HeaderValue::from_bytes(&message) {
        headers.insert(GRPC_MESSAGE, value);
    }
}

/// `/package.Service/Method` as (`package.Service`, `Method`).
fn split_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: &'static str, message: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_STATUS, HeaderValue::from_static(status));
        if let Some(message) = message {
            headers.insert(GRPC_MESSAGE, HeaderValue::from_static(message));
        }
        headers
    }

    fn message(headers: &HeaderMap) -> Option<&str> {
        headers.get(GRPC_MESSAGE).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn an_empty_unimplemented_answer_gets_the_call_named() {
        let mut headers = head("12", None);
        name_the_call("/greeter.Greeter/SayHello", &mut headers);
        assert_eq!(
            message(&headers),
            Some("the plugin does not implement method SayHello of service greeter.Greeter")
        );
    }

    #[test]
    fn the_plugins_own_words_are_kept() {
        let mut headers = head("12", Some("Method not found!"));
        name_the_call("/proto.KV/Delete", &mut headers);
        assert_eq!(
            message(&headers),
            Some(
                "the plugin does not implement method Delete of service proto.KV (it said: Method not found!)"
            )
        );
    }

    #[test]
    fn other_answers_and_odd_paths_are_left_alone() {
        for (status, path) in [
            ("0", "/proto.KV/Get"),
            ("14", "/proto.KV/Get"),
            ("12", "/"),
            ("12", "no-slash"),
            ("12", "/proto.KV/"),
            ("12", "/a/b/c"),
        ] {
            let mut headers = head(status, Some("as sent"));
            name_the_call(path, &mut headers);
            assert_eq!(message(&headers), Some("as sent"), "{status} {path}");
        }
        let mut no_status = HeaderMap::new();
        name_the_call("/proto.KV/Get", &mut no_status);
        assert!(no_status.is_empty());
    }
}
