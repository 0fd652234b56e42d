//! The `localfs_file` resource and data source: plan, apply, read, import.
//! Values come in and go out as [`Value`] objects with the schema's
//! attributes; problems are diagnostics, never panics.

use crate::functions::sha256_hex;
use rpcplugin_tfplugin::tfplugin6::{AttributePath, Diagnostic};
use rpcplugin_tfplugin::{Value, diag};
use std::path::Path;

/// Checks a configuration: `path`, when known, must be absolute.
pub fn validate(config: &Value) -> Vec<Diagnostic> {
    match config.get("path") {
        Some(Value::String(path)) if !Path::new(path).is_absolute() => {
            vec![diag::attribute_error(
                "path",
                "Relative path",
                format!("path must be absolute, got {path:?}"),
            )]
        }
        _ => Vec::new(),
    }
}

/// The planned state and the attributes whose change forces replacement.
pub struct Plan {
    pub state: Value,
    pub requires_replace: Vec<AttributePath>,
}

/// Plans a change: computed attributes become unknown when what they derive
/// from changes; a new `path` replaces the file.
pub fn plan(prior: &Value, proposed: Value) -> Plan {
    let Value::Map(mut state) = proposed else {
        // Destroy (null) or something this resource never produces.
        return Plan {
            state: proposed,
            requires_replace: Vec::new(),
        };
    };
    let mut requires_replace = Vec::new();
    if prior.is_null() {
        state.insert("id".into(), Value::Unknown);
        state.insert("sha256".into(), Value::Unknown);
    } else {
        if prior.get("path") != state.get("path") {
            requires_replace.push(diag::attribute_path(["path"]));
            state.insert("id".into(), Value::Unknown);
            state.insert("sha256".into(), Value::Unknown);
        }
        if prior.get("content") != state.get("content") {
            state.insert("sha256".into(), Value::Unknown);
        }
    }
    Plan {
        state: Value::Map(state),
        requires_replace,
    }
}

/// Applies a planned state: writes the file, or deletes it when `planned` is
/// null.
pub fn apply(prior: &Value, planned: &Value) -> Result<Value, Diagnostic> {
    if planned.is_null() {
        let path = known_string(prior, "path")?;
        return match std::fs::remove_file(path) {
            Ok(()) => Ok(Value::Null),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Value::Null),
            Err(err) => Err(diag::error("Cannot delete file", format!("{path}: {err}"))),
        };
    }
    let path = known_string(planned, "path")?;
    let content = known_string(planned, "content")?;
    std::fs::write(path, content)
        .map_err(|err| diag::error("Cannot write file", format!("{path}: {err}")))?;
    tracing::info!(path, bytes = content.len(), "wrote file");
    Ok(state(path, content))
}

/// Reads the file behind a state; `Ok(None)` when it no longer exists.
pub fn read(path: &str) -> Result<Option<Value>, Diagnostic> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let content = String::from_utf8(bytes).map_err(|_| {
                diag::error("File is not UTF-8", format!("{path} holds binary data"))
            })?;
            Ok(Some(state(path, &content)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(diag::error("Cannot read file", format!("{path}: {err}"))),
    }
}

/// Refreshes a resource state from the file system.
pub fn refresh(current: &Value) -> Result<Value, Diagnostic> {
    if current.is_null() {
        return Ok(Value::Null);
    }
    let path = known_string(current, "path")?;
    Ok(read(path)?.unwrap_or(Value::Null))
}

/// Imports an existing file by its absolute path.
pub fn import(id: &str) -> Result<Value, Diagnostic> {
    if !Path::new(id).is_absolute() {
        return Err(diag::error(
            "Cannot import",
            format!("the import id must be an absolute path, got {id:?}"),
        ));
    }
    read(id)?.ok_or_else(|| diag::error("Cannot import", format!("{id}: no such file")))
}

/// The data source: the file's content and hash.
pub fn read_data(config: &Value) -> Result<Value, Diagnostic> {
    let path = known_string(config, "path")?;
    let state = read(path)?.ok_or_else(|| {
        diag::attribute_error("path", "File not found", format!("{path}: no such file"))
    })?;
    Ok(Value::object([
        ("path", Value::string(path)),
        (
            "content",
            state.get("content").cloned().unwrap_or(Value::Null),
        ),
        (
            "sha256",
            state.get("sha256").cloned().unwrap_or(Value::Null),
        ),
    ]))
}

fn state(path: &str, content: &str) -> Value {
    Value::object([
        ("path", Value::string(path)),
        ("content", Value::string(content)),
        ("id", Value::string(path)),
        ("sha256", Value::string(sha256_hex(content.as_bytes()))),
    ])
}

fn known_string<'a>(value: &'a Value, name: &str) -> Result<&'a str, Diagnostic> {
    value.get(name).and_then(Value::as_str).ok_or_else(|| {
        diag::attribute_error(
            name,
            "Missing value",
            format!("{name} must be a known string"),
        )
    })
}
