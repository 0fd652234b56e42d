//! Points the generated code's `tonic::` paths at the facade.
//!
//! tonic-build writes `tonic::…` paths, which resolve only in a crate that
//! depends on tonic under that name. prost and the codec have path options;
//! tonic does not, so its paths are rewritten here.

use std::path::{Path, PathBuf};

use crate::Error;

/// Rewrites every `.rs` file of `from` into `to`; returns the files written.
pub(crate) fn rewrite_dir(from: &Path, to: &Path, facade: &str) -> Result<Vec<PathBuf>, Error> {
    let mut written = Vec::new();
    let entries = std::fs::read_dir(from).map_err(Error::io("list", from))?;
    for entry in entries {
        let source = entry.map_err(Error::io("list", from))?.path();
        if source.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let Some(name) = source.file_name() else {
            continue;
        };
        let code = std::fs::read_to_string(&source).map_err(Error::io("read", &source))?;
        let target = to.join(name);
        std::fs::write(&target, through_facade(&code, facade))
            .map_err(Error::io("write", &target))?;
        written.push(target);
    }
    written.sort();
    Ok(written)
}

/// Replaces each path that starts with the crate name `tonic` (`tonic::`
/// not preceded by an identifier character or `:`) with `{facade}::tonic::`.
pub(crate) fn through_facade(code: &str, facade: &str) -> String {
    const NEEDLE: &str = "tonic::";
    let mut out = String::with_capacity(code.len() + code.len() / 8);
    let mut rest = code;
    let mut prev: Option<char> = None;
    while let Some(at) = rest.find(NEEDLE) {
        let (before, from) = rest.split_at(at);
        let prev_char = before.chars().next_back().or(prev);
        out.push_str(before);
        if prev_char.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            out.push_str(NEEDLE);
        } else {
            out.push_str(facade);
            out.push_str("::");
            out.push_str(NEEDLE);
        }
        rest = from.get(NEEDLE.len()..).unwrap_or_default();
        prev = Some(':');
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_paths_go_through_the_facade() {
        assert_eq!(
            through_facade("use tonic::codegen::*;", "::rpcplugin"),
            "use ::rpcplugin::tonic::codegen::*;"
        );
        assert_eq!(
            through_facade("Result<tonic::Response<T>, tonic::Status>", "::x"),
            "Result<::x::tonic::Response<T>, ::x::tonic::Status>"
        );
        assert_eq!(through_facade("tonic::Status", "::x"), "::x::tonic::Status");
    }

    #[test]
    fn other_paths_are_left_alone() {
        for code in [
            "::tonic::Status",
            "my_tonic::Status",
            "tonic_prost::ProstCodec",
            "crate::tonic::Status",
            "no paths here",
        ] {
            assert_eq!(through_facade(code, "::x"), code);
        }
    }
}
