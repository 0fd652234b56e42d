//! Application protocol version negotiation (`PLUGIN_PROTOCOL_VERSIONS`).

use crate::number::parse_go_int;

/// The versions listed in a `PLUGIN_PROTOCOL_VERSIONS` value.
///
/// ```
/// use rpcplugin_handshake::parse_protocol_versions;
///
/// let parsed = parse_protocol_versions("6,x,5");
/// assert_eq!(parsed.versions, [6, 5]);
/// assert_eq!(parsed.invalid, ["x"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtocolVersions {
    /// The entries that parsed, in the order given (duplicates kept).
    pub versions: Vec<u32>,
    /// The entries that were skipped because they are not numbers as Go's
    /// `strconv.Atoi` reads them, or are outside `u32`,
    /// verbatim, so the caller can warn about each, e.g.
    /// `server sent invalid plugin version "x"`.
    pub invalid: Vec<String>,
}

/// Parses a `PLUGIN_PROTOCOL_VERSIONS` value.
///
/// The value is a comma-separated list of decimal versions in any order. An
/// empty value (the legacy case: no list) gives no versions. Each entry is
/// read as a go-plugin plugin reads it, with Go's `strconv.Atoi`: decimal
/// with an optional sign, so `+7` is 7. Entries that do not read, including
/// empty ones and ones with spaces, are skipped and listed in
/// [`ProtocolVersions::invalid`], as go-plugin skips them with a warning.
/// Negative entries are skipped too; go-plugin keeps them, but no plugin
/// can serve a negative version, so the outcome is the same.
///
/// ```
/// use rpcplugin_handshake::parse_protocol_versions;
///
/// assert_eq!(parse_protocol_versions("6,5").versions, [6, 5]);
/// assert!(parse_protocol_versions("").versions.is_empty());
/// assert!(parse_protocol_versions("").invalid.is_empty());
/// assert_eq!(parse_protocol_versions("5,,6").invalid, [""]);
/// assert_eq!(parse_protocol_versions("+7").versions, [7]);
/// ```
pub fn parse_protocol_versions(value: &str) -> ProtocolVersions {
    let mut parsed = ProtocolVersions::default();
    if value.is_empty() {
        return parsed;
    }
    for entry in value.split(',') {
        match parse_go_int(entry) {
            Some(version) => parsed.versions.push(version),
            None => parsed.invalid.push(entry.to_owned()),
        }
    }
    parsed
}

/// Picks the application protocol version a plugin should serve.
///
/// This is the highest version in both lists. When they have none in common,
/// it is the server's *lowest* version: that serves legacy hosts which send
/// no list, and a modern host will reject it with a clear error. `None` only
/// when `server_versions` is empty.
///
/// ```
/// use rpcplugin_handshake::negotiate;
///
/// assert_eq!(negotiate(&[5, 6], &[4, 5, 6]), Some(6));
/// assert_eq!(negotiate(&[6, 5], &[5]), Some(5));
/// assert_eq!(negotiate(&[], &[3, 2]), Some(2));
/// assert_eq!(negotiate(&[7], &[5, 6]), Some(5));
/// assert_eq!(negotiate(&[5], &[]), None);
/// ```
pub fn negotiate(client_versions: &[u32], server_versions: &[u32]) -> Option<u32> {
    server_versions
        .iter()
        .copied()
        .filter(|version| client_versions.contains(version))
        .max()
        .or_else(|| server_versions.iter().copied().min())
}

/// Formats versions as a `PLUGIN_PROTOCOL_VERSIONS` value: decimal,
/// comma-separated, no spaces, in the order given.
///
/// ```
/// use rpcplugin_handshake::{format_protocol_versions, parse_protocol_versions};
///
/// assert_eq!(format_protocol_versions(&[1, 2, 5]), "1,2,5");
/// assert_eq!(format_protocol_versions(&[]), "");
/// assert_eq!(parse_protocol_versions(&format_protocol_versions(&[6, 5])).versions, [6, 5]);
/// ```
pub fn format_protocol_versions(versions: &[u32]) -> String {
    let mut out = String::new();
    for (i, version) in versions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&version.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_go_plugin_skips_with_a_warning() {
        // A go-plugin plugin warns "server sent invalid plugin version" for
        // each of these and keeps going.
        let parsed = parse_protocol_versions("5, 6,x,6 ,,0x7,8");
        assert_eq!(parsed.versions, [5, 8]);
        assert_eq!(parsed.invalid, [" 6", "x", "6 ", "", "0x7"]);
    }

    #[test]
    fn signed_entries_read_as_go_atoi_reads_them() {
        // Go's strconv.Atoi takes an optional sign, so a go-plugin plugin
        // offered "+7" serves version 7.
        let parsed = parse_protocol_versions("+7,-0,5");
        assert_eq!(parsed.versions, [7, 0, 5]);
        assert!(parsed.invalid.is_empty());
    }

    #[test]
    fn entries_no_plugin_can_serve_are_skipped() {
        // Go keeps -1 and 4294967296 as ints, but no plugin has such a
        // version, so skipping them negotiates the same version.
        let parsed = parse_protocol_versions("-1,4294967296,6");
        assert_eq!(parsed.versions, [6]);
        assert_eq!(parsed.invalid, ["-1", "4294967296"]);
        assert_eq!(negotiate(&parsed.versions, &[5, 6]), Some(6));
    }

    #[test]
    fn duplicates_are_kept() {
        assert_eq!(parse_protocol_versions("5,5").versions, [5, 5]);
        assert_eq!(negotiate(&[5, 5], &[5, 5, 4]), Some(5));
    }

    #[test]
    fn terraform_hosts() {
        // Terraform sends 5 and 6 in either order; a v6 provider and a v5+v6
        // provider both pick 6, a v5-only provider picks 5.
        for client in [[5, 6], [6, 5]] {
            assert_eq!(negotiate(&client, &[6]), Some(6));
            assert_eq!(negotiate(&client, &[5, 6]), Some(6));
            assert_eq!(negotiate(&client, &[5]), Some(5));
        }
    }
}
