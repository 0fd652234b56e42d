//! Decimal numbers read the way a Go program reads them.

/// Reads `text` as Go's `strconv.Atoi` does, within `u32`: an optional `+`
/// or `-` sign, then one or more ASCII digits, nothing else (no spaces, no
/// `_`, no base prefix).
///
/// go-plugin reads handshake versions and `PLUGIN_PROTOCOL_VERSIONS` entries
/// with `Atoi`, so `+5` and `-0` are versions there. A negative number other
/// than zero is `None`: no go-plugin peer can match it either.
pub(crate) fn parse_go_int(text: &str) -> Option<u32> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u32 = digits.parse().ok()?;
    if negative && value != 0 {
        return None;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_go_atoi_accepts() {
        for (text, value) in [
            ("0", 0),
            ("007", 7),
            ("+5", 5),
            ("+0", 0),
            ("-0", 0),
            ("4294967295", u32::MAX),
            ("+4294967295", u32::MAX),
        ] {
            assert_eq!(parse_go_int(text), Some(value), "{text:?}");
        }
    }

    #[test]
    fn what_go_atoi_rejects_or_u32_cannot_hold() {
        // Atoi rejects the first group; the second is valid for Atoi but
        // outside u32 (negative or too large), so no go-plugin peer could
        // agree on it as a version.
        for text in [
            "", "+", "-", "++1", "+-1", " 1", "1 ", "1_000", "0x1", "1e3", "١",
        ] {
            assert_eq!(parse_go_int(text), None, "{text:?}");
        }
        for text in ["-1", "-4294967295", "4294967296"] {
            assert_eq!(parse_go_int(text), None, "{text:?}");
        }
    }
}
