//! `rpcplugin probe --preset terraform`: reads a provider's schema with
//! `GetProviderSchema` (protocol 6) or `GetSchema` (protocol 5) and lists
//! its resource types, data sources and functions.
//!
//! The JSON form (under `schema` in `probe --json`) is shaped for scripts:
//! `{"protocol": 6, "resources": [{"name", "version", "attributes": [..],
//! "blocks": [..]}], "data_sources": [..], "functions": [{"name",
//! "parameters", "return", "summary"}], "provider": {..}, "diagnostics": [..]}`,
//! every list sorted by name.

use rpcplugin::PluginChannel;
use rpcplugin_tfplugin::{tfplugin5, tfplugin6, types};
use serde_json::Value;
use std::time::Duration;

/// Why a schema could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SchemaError {
    /// The negotiated version is not a Terraform provider protocol.
    #[error("protocol version {0} is not a Terraform provider protocol (5 or 6)")]
    NotTerraform(u32),
    /// The call failed (the provider answered with an error status).
    #[error("GetProviderSchema failed")]
    Rpc(#[source] tonic::Status),
    /// The provider did not answer in time.
    #[error("GetProviderSchema got no answer within {0:?}")]
    Timeout(Duration),
}

/// Reads the schema over an established connection, within `timeout`.
pub(crate) async fn read(
    channel: PluginChannel,
    version: u32,
    timeout: Duration,
) -> Result<Value, SchemaError> {
    let call = async {
        match version {
            6 => {
                let mut client = tfplugin6::provider_client::ProviderClient::new(channel)
                    .max_decoding_message_size(rpcplugin::MAX_MESSAGE_SIZE);
                let resp = client
                    .get_provider_schema(tfplugin6::get_provider_schema::Request {})
                    .await
                    .map_err(SchemaError::Rpc)?;
                Ok(v6::response(6, resp.into_inner()))
            }
            5 => {
                let mut client = tfplugin5::provider_client::ProviderClient::new(channel)
                    .max_decoding_message_size(rpcplugin::MAX_MESSAGE_SIZE);
                let resp = client
                    .get_schema(tfplugin5::get_provider_schema::Request {})
                    .await
                    .map_err(SchemaError::Rpc)?;
                Ok(v5::response(5, resp.into_inner()))
            }
            other => Err(SchemaError::NotTerraform(other)),
        }
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| SchemaError::Timeout(timeout))?
}

fn type_text(type_json: &[u8]) -> String {
    if type_json.is_empty() {
        "nested".into()
    } else {
        types::display(type_json)
    }
}

fn sorted_by_name(mut items: Vec<Value>) -> Vec<Value> {
    items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    items
}

/// JSON conversions for one generated protocol module; both versions share
/// field names, so the code is the same text.
macro_rules! conversions {
    ($name:ident, $proto:ident) => {
        mod $name {
            use super::{sorted_by_name, type_text};
            use rpcplugin_tfplugin::$proto::{Diagnostic, Function, Schema, get_provider_schema, schema};
            use serde_json::{Value, json};

            fn block(b: &schema::Block) -> Value {
                let attributes: Vec<Value> = b
                    .attributes
                    .iter()
                    .map(|a| {
                        json!({
                            "name": a.name,
                            "type": type_text(&a.r#type),
                            "required": a.required,
                            "optional": a.optional,
                            "computed": a.computed,
                            "sensitive": a.sensitive,
                        })
                    })
                    .collect();
                let blocks: Vec<Value> = b
                    .block_types
                    .iter()
                    .map(|nb| {
                        json!({
                            "name": nb.type_name,
                            "nesting": schema::nested_block::NestingMode::try_from(nb.nesting)
                                .map_or("INVALID", |m| m.as_str_name()),
                            "block": nb.block.as_ref().map(block),
                        })
                    })
                    .collect();
                json!({ "attributes": sorted_by_name(attributes), "blocks": sorted_by_name(blocks) })
            }

            fn schemas(map: &std::collections::HashMap<String, Schema>) -> Vec<Value> {
                sorted_by_name(
                    map.iter()
                        .map(|(name, s)| {
                            let mut v = serde_json::Map::new();
                            v.insert("name".into(), json!(name));
                            v.insert("version".into(), json!(s.version));
                            if let Some(Value::Object(b)) = s.block.as_ref().map(block) {
                                v.extend(b);
                            }
                            Value::Object(v)
                        })
                        .collect(),
                )
            }

            fn function(name: &str, f: &Function) -> Value {
                json!({
                    "name": name,
                    "parameters": f.parameters.iter().map(|p| json!({"name": p.name, "type": type_text(&p.r#type)})).collect::<Vec<_>>(),
                    "variadic": f.variadic_parameter.as_ref().map(|p| json!({"name": p.name, "type": type_text(&p.r#type)})),
                    "return": f.r#return.as_ref().map(|r| type_text(&r.r#type)),
                    "summary": f.summary,
                })
            }

            fn diagnostic(d: &Diagnostic) -> Value {
                json!({"severity": d.severity().as_str_name(), "summary": d.summary, "detail": d.detail})
            }

            pub(super) fn response(protocol: u32, r: get_provider_schema::Response) -> Value {
                json!({
                    "protocol": protocol,
                    "provider": r.provider.as_ref().and_then(|s| s.block.as_ref()).map(block),
                    "resources": schemas(&r.resource_schemas),
                    "data_sources": schemas(&r.data_source_schemas),
                    "functions": sorted_by_name(r.functions.iter().map(|(n, f)| function(n, f)).collect()),
                    "diagnostics": r.diagnostics.iter().map(diagnostic).collect::<Vec<_>>(),
                    "server_capabilities": r.server_capabilities.map(|c| json!({
                        "plan_destroy": c.plan_destroy,
                        "get_provider_schema_optional": c.get_provider_schema_optional,
                        "move_resource_state": c.move_resource_state,
                    })),
                })
            }
        }
    };
}

conversions!(v5, tfplugin5);
conversions!(v6, tfplugin6);

/// Prints the schema as text: one line per kind, names only, plus each
/// function's signature.
pub(crate) fn print_text(schema: &Value) {
    println!("schema: protocol {}", schema["protocol"]);
    for key in ["resources", "data_sources"] {
        let names: Vec<&str> = schema[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str())
            .collect();
        println!("  {key} ({}): {}", names.len(), names.join(", "));
    }
    let functions = schema["functions"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    println!("  functions ({}):", functions.len());
    for f in functions {
        let params: Vec<String> = f["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{} {}",
                    p["name"].as_str().unwrap_or("?"),
                    p["type"].as_str().unwrap_or("?")
                )
            })
            .collect();
        println!(
            "    {}({}) {}",
            f["name"].as_str().unwrap_or("?"),
            params.join(", "),
            f["return"].as_str().unwrap_or("")
        );
    }
    for d in schema["diagnostics"].as_array().into_iter().flatten() {
        println!("  {}: {} {}", d["severity"], d["summary"], d["detail"]);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use rpcplugin_tfplugin::tfplugin6::{Function, Schema, function, get_provider_schema, schema};
    use serde_json::json;

    fn attr(name: &str, ty: &[u8], required: bool) -> schema::Attribute {
        schema::Attribute {
            name: name.into(),
            r#type: ty.to_vec().into(),
            required,
            computed: !required,
            ..Default::default()
        }
    }

    #[test]
    fn a_v6_schema_becomes_sorted_json() {
        let block = schema::Block {
            attributes: vec![
                attr("path", types::STRING, true),
                attr("id", types::STRING, false),
            ],
            block_types: vec![schema::NestedBlock {
                type_name: "rule".into(),
                nesting: schema::nested_block::NestingMode::List as i32,
                block: Some(schema::Block {
                    attributes: vec![attr("n", types::NUMBER, true)],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let resp = get_provider_schema::Response {
            resource_schemas: [
                (
                    "zeta_thing".to_owned(),
                    Schema {
                        version: 2,
                        block: Some(block.clone()),
                    },
                ),
                (
                    "alpha_thing".to_owned(),
                    Schema {
                        version: 0,
                        block: Some(block),
                    },
                ),
            ]
            .into(),
            functions: [(
                "upper".to_owned(),
                Function {
                    parameters: vec![function::Parameter {
                        name: "s".into(),
                        r#type: types::STRING.to_vec().into(),
                        ..Default::default()
                    }],
                    r#return: Some(function::Return {
                        r#type: types::collection("list", types::STRING).into(),
                    }),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        };
        let v = v6::response(6, resp);
        assert_eq!(v["protocol"], 6);
        assert_eq!(v["resources"][0]["name"], "alpha_thing");
        assert_eq!(v["resources"][1]["name"], "zeta_thing");
        assert_eq!(v["resources"][1]["version"], 2);
        assert_eq!(v["resources"][0]["attributes"][0]["name"], "id");
        assert_eq!(v["resources"][0]["attributes"][1]["required"], true);
        assert_eq!(v["resources"][0]["blocks"][0]["nesting"], "LIST");
        assert_eq!(
            v["resources"][0]["blocks"][0]["block"]["attributes"][0]["type"],
            "number"
        );
        assert_eq!(v["data_sources"], json!([]));
        assert_eq!(v["functions"][0]["parameters"][0]["type"], "string");
        assert_eq!(v["functions"][0]["return"], "list(string)");
    }

    #[test]
    fn a_v5_schema_with_diagnostics() {
        let resp = tfplugin5::get_provider_schema::Response {
            diagnostics: vec![tfplugin5::Diagnostic {
                severity: tfplugin5::diagnostic::Severity::Warning as i32,
                summary: "old".into(),
                detail: "d".into(),
            }],
            ..Default::default()
        };
        let v = v5::response(5, resp);
        assert_eq!(v["protocol"], 5);
        assert_eq!(v["diagnostics"][0]["severity"], "WARNING");
        assert_eq!(v["resources"], json!([]));
    }
}
