//! Provider-defined functions: pure, called during plan and apply.

use rpcplugin_tfplugin::Value;
use rpcplugin_tfplugin::tfplugin6::FunctionError;

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Calls function `name`; a bad argument is a `FunctionError` naming it.
pub fn call(name: &str, args: &[Value]) -> Result<Value, FunctionError> {
    let input = match args {
        [Value::String(s)] => s.as_str(),
        [_] => return Err(arg_error(0, "the argument must be a known string")),
        _ => {
            return Err(FunctionError {
                text: format!("{name} takes exactly one argument, got {}", args.len()),
                function_argument: None,
            });
        }
    };
    match name {
        "sha256" => Ok(Value::string(sha256_hex(input.as_bytes()))),
        "basename" => basename(input).map(Value::string),
        other => Err(FunctionError {
            text: format!("no function named {other:?}"),
            function_argument: None,
        }),
    }
}

fn basename(path: &str) -> Result<String, FunctionError> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(arg_error(0, "path must not be empty or only slashes"));
    }
    Ok(trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned())
}

fn arg_error(index: i64, text: &str) -> FunctionError {
    FunctionError {
        text: text.into(),
        function_argument: Some(index),
    }
}
