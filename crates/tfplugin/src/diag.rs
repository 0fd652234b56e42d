//! Diagnostics: the errors and warnings a provider returns for OpenTofu to
//! print, with the attribute they are about.

use crate::tfplugin6::attribute_path::{Step, step::Selector};
use crate::tfplugin6::diagnostic::Severity;
use crate::tfplugin6::{AttributePath, Diagnostic};

/// An error diagnostic.
///
/// ```
/// let d = rpcplugin_tfplugin::diag::error("Cannot read file", "permission denied");
/// assert!(rpcplugin_tfplugin::diag::has_errors(&[d]));
/// ```
pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
    diagnostic(Severity::Error, summary, detail)
}

/// A warning diagnostic.
pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
    diagnostic(Severity::Warning, summary, detail)
}

/// An error about one top-level attribute; OpenTofu points at it in the
/// configuration.
///
/// ```
/// let d = rpcplugin_tfplugin::diag::attribute_error("path", "Relative path", "use an absolute path");
/// assert_eq!(d.attribute.unwrap().steps.len(), 1);
/// ```
pub fn attribute_error(
    attribute: &str,
    summary: impl Into<String>,
    detail: impl Into<String>,
) -> Diagnostic {
    Diagnostic {
        attribute: Some(attribute_path([attribute])),
        ..error(summary, detail)
    }
}

/// A path of attribute names (`a.b.c` as `["a", "b", "c"]`).
pub fn attribute_path<'a>(names: impl IntoIterator<Item = &'a str>) -> AttributePath {
    AttributePath {
        steps: names
            .into_iter()
            .map(|name| Step {
                selector: Some(Selector::AttributeName(name.to_owned())),
            })
            .collect(),
    }
}

/// Whether any diagnostic is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error as i32)
}

fn diagnostic(
    severity: Severity,
    summary: impl Into<String>,
    detail: impl Into<String>,
) -> Diagnostic {
    Diagnostic {
        severity: severity as i32,
        summary: summary.into(),
        detail: detail.into(),
        attribute: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_and_paths() {
        let w = warning("w", "");
        assert_eq!(w.severity, Severity::Warning as i32);
        assert!(!has_errors(&[w]));
        let e = attribute_error("content", "bad", "why");
        assert!(has_errors(std::slice::from_ref(&e)));
        let steps = e.attribute.unwrap().steps;
        assert_eq!(
            steps[0].selector,
            Some(Selector::AttributeName("content".into()))
        );
    }
}
