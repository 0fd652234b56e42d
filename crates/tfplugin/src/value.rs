//! [`Value`]: a Terraform/OpenTofu value as `DynamicValue` carries it, with
//! its msgpack and JSON codecs (`docs/plugin-protocol/object-wire-format.md`
//! in OpenTofu's source).
//!
//! The codec is schema-free: lists, sets and tuples all decode to
//! [`Value::List`]; maps, objects and blocks to [`Value::Map`]. That is all a
//! provider needs to read its own configuration, since it knows its schema.
//! Attributes of type `"dynamic"` (a type tag in binary plus a value) are not
//! supported and decode to a typed error.

use crate::tfplugin6::DynamicValue;
use std::collections::BTreeMap;

/// The deepest msgpack nesting decoded (objects in lists in maps ...);
/// deeper input is an error rather than deep recursion.
pub const MAX_DEPTH: usize = 64;

/// The msgpack extension type of an unknown value without refinements.
pub const UNKNOWN_EXT: i8 = 0;
/// The msgpack extension type of a refined unknown value (decoded as
/// [`Value::Unknown`]; the refinements are ignored, which the format allows).
pub const REFINED_UNKNOWN_EXT: i8 = 12;

/// A value of the OpenTofu type system.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `null` of any type.
    Null,
    /// Known only after apply (msgpack extension, any code).
    Unknown,
    /// `bool`.
    Bool(bool),
    /// `number` (integers stay exact; other numbers are 64-bit floats).
    Number(serde_json::Number),
    /// `string`.
    String(String),
    /// `list`, `set` or `tuple`; nested blocks of mode LIST and SET.
    List(Vec<Value>),
    /// `map` or `object`; a block's attributes.
    Map(BTreeMap<String, Value>),
}

/// Why a `DynamicValue` could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Neither `msgpack` nor `json` was set.
    #[error("the DynamicValue carries neither msgpack nor JSON")]
    Empty,
    /// The msgpack bytes are malformed or nested too deeply.
    #[error("invalid msgpack in DynamicValue")]
    Msgpack(#[source] rmpv::decode::Error),
    /// Bytes were left after the first msgpack value.
    #[error("{0} bytes after the msgpack value")]
    TrailingBytes(usize),
    /// The JSON bytes are malformed or nested too deeply.
    #[error("invalid JSON in DynamicValue")]
    Json(#[source] serde_json::Error),
    /// A map key that is not a UTF-8 string.
    #[error("a map key is not a UTF-8 string")]
    NonStringKey,
    /// A string that is not UTF-8.
    #[error("a string is not valid UTF-8")]
    InvalidUtf8,
    /// A number that is neither an integer, a finite float nor a decimal string.
    #[error("invalid number {0:?}")]
    InvalidNumber(String),
    /// A msgpack type the wire format does not use for values (binary outside
    /// of `"dynamic"`, which this codec does not support).
    #[error("unsupported msgpack value: {0}")]
    Unsupported(&'static str),
    /// Writing msgpack failed.
    #[error("encoding msgpack")]
    Encode(#[source] rmpv::encode::Error),
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// An object (or block) value from `(attribute, value)` pairs.
    ///
    /// ```
    /// use rpcplugin_tfplugin::Value;
    /// let v = Value::object([("path", Value::string("/tmp/a")), ("id", Value::Unknown)]);
    /// assert_eq!(v.get("path").and_then(Value::as_str), Some("/tmp/a"));
    /// ```
    pub fn object<K: Into<String>>(attrs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The attribute `name` of an object, `None` for anything else.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Map(map) => map.get(name),
            _ => None,
        }
    }

    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether this value and everything inside it is known.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(items) => items.iter().all(Value::is_wholly_known),
            Value::Map(map) => map.values().all(Value::is_wholly_known),
            _ => true,
        }
    }

    /// Decodes a `DynamicValue`: msgpack when set, else JSON.
    pub fn decode(dv: &DynamicValue) -> Result<Value, CodecError> {
        if !dv.msgpack.is_empty() {
            Value::from_msgpack(&dv.msgpack)
        } else if !dv.json.is_empty() {
            Value::from_json(&dv.json)
        } else {
            Err(CodecError::Empty)
        }
    }

    /// Decodes an optional `DynamicValue`; an absent one is `null`.
    pub fn decode_opt(dv: Option<&DynamicValue>) -> Result<Value, CodecError> {
        dv.map_or(Ok(Value::Null), Value::decode)
    }

    /// Encodes as a msgpack `DynamicValue`, the encoding hosts expect in
    /// responses.
    ///
    /// ```
    /// use rpcplugin_tfplugin::Value;
    /// let v = Value::object([("id", Value::Unknown), ("n", Value::Number(3.into()))]);
    /// let back = Value::decode(&v.encode().unwrap()).unwrap();
    /// assert_eq!(back, v);
    /// ```
    pub fn encode(&self) -> Result<DynamicValue, CodecError> {
        Ok(DynamicValue {
            msgpack: self.to_msgpack()?.into(),
            json: Default::default(),
        })
    }

    /// Decodes one msgpack value; trailing bytes are an error, and so is
    /// nesting deeper than [`MAX_DEPTH`].
    pub fn from_msgpack(bytes: &[u8]) -> Result<Value, CodecError> {
        let mut rest = bytes;
        let raw = // rmpv spends two units of its budget per nesting level.
        rmpv::decode::read_value_with_max_depth(&mut rest, MAX_DEPTH * 2 + 2).map_err(CodecError::Msgpack)?;
        if !rest.is_empty() {
            return Err(CodecError::TrailingBytes(rest.len()));
        }
        from_rmpv(raw)
    }

    /// Decodes JSON (which has no unknown values). Nesting is bounded by
    /// serde_json's recursion limit.
    pub fn from_json(bytes: &[u8]) -> Result<Value, CodecError> {
        let raw: serde_json::Value = serde_json::from_slice(bytes).map_err(CodecError::Json)?;
        Ok(from_json_value(raw))
    }

    /// Encodes as msgpack bytes (unknowns as extension 0).
    pub fn to_msgpack(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &to_rmpv(self)).map_err(CodecError::Encode)?;
        Ok(out)
    }
}

fn from_rmpv(raw: rmpv::Value) -> Result<Value, CodecError> {
    use rmpv::Value as M;
    Ok(match raw {
        M::Nil => Value::Null,
        M::Boolean(b) => Value::Bool(b),
        M::Integer(i) => Value::Number(integer(i)?),
        M::F32(f) => Value::Number(float(f64::from(f))?),
        M::F64(f) => Value::Number(float(f)?),
        M::String(s) => {
            let s = s.into_str().ok_or(CodecError::InvalidUtf8)?;
            Value::String(s)
        }
        M::Binary(_) => return Err(CodecError::Unsupported("binary (a \"dynamic\" attribute)")),
        M::Array(items) => Value::List(items.into_iter().map(from_rmpv).collect::<Result<_, _>>()?),
        M::Map(pairs) => {
            let mut map = BTreeMap::new();
            for (k, v) in pairs {
                let key = match k {
                    M::String(s) => s.into_str().ok_or(CodecError::NonStringKey)?,
                    _ => return Err(CodecError::NonStringKey),
                };
                map.insert(key, from_rmpv(v)?);
            }
            Value::Map(map)
        }
        M::Ext(_, _) => Value::Unknown,
    })
}

fn integer(i: rmpv::Integer) -> Result<serde_json::Number, CodecError> {
    if let Some(n) = i.as_i64() {
        Ok(n.into())
    } else if let Some(n) = i.as_u64() {
        Ok(n.into())
    } else {
        Err(CodecError::InvalidNumber(i.to_string()))
    }
}

fn float(f: f64) -> Result<serde_json::Number, CodecError> {
    serde_json::Number::from_f64(f).ok_or_else(|| CodecError::InvalidNumber(f.to_string()))
}

fn from_json_value(raw: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match raw {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => Value::Number(n),
        J::String(s) => Value::String(s),
        J::Array(items) => Value::List(items.into_iter().map(from_json_value).collect()),
        J::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (k, from_json_value(v)))
                .collect(),
        ),
    }
}

fn to_rmpv(value: &Value) -> rmpv::Value {
    use rmpv::Value as M;
    match value {
        Value::Null => M::Nil,
        Value::Unknown => M::Ext(UNKNOWN_EXT, vec![0]),
        Value::Bool(b) => M::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                M::from(i)
            } else if let Some(u) = n.as_u64() {
                M::from(u)
            } else {
                // serde_json numbers are i64, u64 or finite f64.
                M::F64(n.as_f64().unwrap_or_default())
            }
        }
        Value::String(s) => M::from(s.as_str()),
        Value::List(items) => M::Array(items.iter().map(to_rmpv).collect()),
        Value::Map(map) => M::Map(
            map.iter()
                .map(|(k, v)| (M::from(k.as_str()), to_rmpv(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unknown_is_extension_zero_and_refined_unknown_decodes() {
        let bytes = Value::Unknown.to_msgpack().unwrap();
        assert_eq!(bytes, [0xd4, 0x00, 0x00]);
        // fixext1, code 12, refinement payload: still unknown.
        assert_eq!(
            Value::from_msgpack(&[0xd4, 12, 0x80]).unwrap(),
            Value::Unknown
        );
    }

    #[test]
    fn json_and_msgpack_decode_alike() {
        let json = br#"{"path":"/tmp/x","n":1.5,"tags":["a","b"],"on":true,"none":null}"#;
        let v = Value::from_json(json).unwrap();
        let again = Value::from_msgpack(&v.to_msgpack().unwrap()).unwrap();
        assert_eq!(v, again);
        assert_eq!(v.get("path").and_then(Value::as_str), Some("/tmp/x"));
        assert!(v.get("none").is_some_and(Value::is_null));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert!(matches!(
            Value::decode(&DynamicValue::default()),
            Err(CodecError::Empty)
        ));
        assert!(matches!(
            Value::from_msgpack(&[0x92, 0xc0]),
            Err(CodecError::Msgpack(_))
        ));
        assert!(matches!(
            Value::from_msgpack(&[0xc0, 0xc0]),
            Err(CodecError::TrailingBytes(1))
        ));
        // {1: nil}
        assert!(matches!(
            Value::from_msgpack(&[0x81, 0x01, 0xc0]),
            Err(CodecError::NonStringKey)
        ));
        assert!(matches!(
            Value::from_msgpack(&[0xc4, 0x01, 0x00]),
            Err(CodecError::Unsupported(_))
        ));
        assert!(matches!(Value::from_json(b"{"), Err(CodecError::Json(_))));
        // A deeply nested array: an error, not a stack overflow.
        let deep = vec![0x91u8; 100_000];
        assert!(matches!(
            Value::from_msgpack(&deep),
            Err(CodecError::Msgpack(_))
        ));
        let mut ok = vec![0x91u8; MAX_DEPTH - 1];
        ok.push(0xc0);
        assert!(Value::from_msgpack(&ok).is_ok());
    }

    #[test]
    fn wholly_known_looks_inside() {
        let v = Value::object([("a", Value::List(vec![Value::Unknown]))]);
        assert!(!v.is_wholly_known());
        assert!(Value::object([("a", Value::string("x"))]).is_wholly_known());
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            Just(Value::Unknown),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            any::<u64>().prop_map(|n| Value::Number(n.into())),
            any::<f64>()
                .prop_filter_map("finite", serde_json::Number::from_f64)
                .prop_map(Value::Number),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
                prop::collection::btree_map(".*", inner, 0..8).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn msgpack_round_trips(v in arb_value()) {
            let back = Value::from_msgpack(&v.to_msgpack().unwrap()).unwrap();
            prop_assert_eq!(back, v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = Value::from_msgpack(&bytes);
            let _ = Value::from_json(&bytes);
        }
    }
}
