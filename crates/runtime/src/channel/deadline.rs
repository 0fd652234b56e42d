//! The `grpc-timeout` request header (gRPC over HTTP/2: at most eight
//! digits and a unit), enforced on the host side as tonic's own channel
//! does, so `Request::set_timeout` keeps working.

use http::HeaderMap;
use std::time::Duration;

const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The deadline a request carries, if it carries a valid one.
pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Duration> {
    parse(headers.get(GRPC_TIMEOUT)?.to_str().ok()?)
}

/// Gives a request without a valid deadline the channel's default one.
pub(crate) fn set_default(headers: &mut HeaderMap, timeout: Duration) {
    if from_headers(headers).is_some() {
        return;
    }
    // At most eight digits: milliseconds up to about 27 hours, then seconds.
    let millis = timeout.as_millis();
    let value = if millis < 100_000_000 {
        format!("{}m", millis.max(1))
    } else {
        format!("{}S", timeout.as_secs().min(99_999_999))
    };
    if let Ok(value) = http::HeaderValue::from_str(&value) {
        headers.insert(GRPC_TIMEOUT, value);
    }
}

fn parse(value: &str) -> Option<Duration> {
    let unit_at = value.len().checked_sub(1)?;
    let (digits, unit) = (value.get(..unit_at)?, value.get(unit_at..)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_refusals() {
        assert_eq!(parse("500m"), Some(Duration::from_millis(500)));
        assert_eq!(parse("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("1M"), Some(Duration::from_secs(60)));
        assert_eq!(parse("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "m", "123456789m", "5x", "-5m", "5 m", "५m"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn default_only_where_none_is_set() {
        let mut headers = HeaderMap::new();
        set_default(&mut headers, Duration::from_millis(1500));
        assert_eq!(from_headers(&headers), Some(Duration::from_millis(1500)));
        set_default(&mut headers, Duration::from_secs(9));
        assert_eq!(from_headers(&headers), Some(Duration::from_millis(1500)));
        let mut long = HeaderMap::new();
        set_default(&mut long, Duration::from_secs(200_000));
        assert_eq!(from_headers(&long), Some(Duration::from_secs(200_000)));
    }

    #[test]
    fn read_from_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(from_headers(&headers), None);
        headers.insert(GRPC_TIMEOUT, http::HeaderValue::from_static("250m"));
        assert_eq!(from_headers(&headers), Some(Duration::from_millis(250)));
    }
}
