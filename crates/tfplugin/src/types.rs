//! Type constraints as `Schema.Attribute.type` and function signatures carry
//! them: compact JSON (`"string"`, `["list","string"]`).

/// `string`.
pub const STRING: &[u8] = b"\"string\"";
/// `number`.
pub const NUMBER: &[u8] = b"\"number\"";
/// `bool`.
pub const BOOL: &[u8] = b"\"bool\"";
/// `dynamic` (any type).
pub const DYNAMIC: &[u8] = b"\"dynamic\"";

/// `list(<element>)`, `set(..)` or `map(..)` with a primitive element type.
///
/// ```
/// use rpcplugin_tfplugin::types;
/// assert_eq!(types::collection("list", types::STRING), br#"["list","string"]"#);
/// ```
pub fn collection(kind: &str, element: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(element.len() + kind.len() + 6);
    out.extend_from_slice(b"[\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(element);
    out.push(b']');
    out
}

/// The type constraint as text, for display (`string`, `list(string)`).
/// Anything that is not valid JSON is shown as it is.
///
/// ```
/// use rpcplugin_tfplugin::types;
/// assert_eq!(types::display(br#"["map",["list","number"]]"#), "map(list(number))");
/// assert_eq!(types::display(types::STRING), "string");
/// assert_eq!(types::display(br#"["tuple",["string","bool"]]"#), "tuple([string, bool])");
/// ```
pub fn display(type_json: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(type_json) {
        Ok(v) => render(&v),
        Err(_) => String::from_utf8_lossy(type_json).into_owned(),
    }
}

fn render(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::String(s) => s.clone(),
        J::Array(parts) => match parts.as_slice() {
            [J::String(kind), J::Object(attrs)] => {
                let inner: Vec<String> = attrs
                    .iter()
                    .map(|(k, t)| format!("{k}={}", render(t)))
                    .collect();
                format!("{kind}({{{}}})", inner.join(", "))
            }
            [J::String(kind), J::Array(elems)] if kind == "tuple" => {
                let inner: Vec<String> = elems.iter().map(render).collect();
                format!("{kind}([{}])", inner.join(", "))
            }
            [J::String(kind), elem] => format!("{kind}({})", render(elem)),
            _ => v.to_string(),
        },
        _ => v.to_string(),
    }
}
