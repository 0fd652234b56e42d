//! The provider's schema: what OpenTofu validates configurations against.

use rpcplugin_tfplugin::tfplugin6::{Function, Schema, function, schema};
use rpcplugin_tfplugin::types;
use std::collections::HashMap;

/// The type name of the resource and of the data source.
pub const FILE: &str = "localfs_file";

fn attribute(name: &str, description: &str, required: bool) -> schema::Attribute {
    schema::Attribute {
        name: name.into(),
        r#type: types::STRING.to_vec().into(),
        description: description.into(),
        required,
        computed: !required,
        ..Default::default()
    }
}

fn block(attributes: Vec<schema::Attribute>, description: &str) -> Schema {
    Schema {
        version: 0,
        block: Some(schema::Block {
            attributes,
            description: description.into(),
            ..Default::default()
        }),
    }
}

/// The provider block takes no arguments.
pub fn provider() -> Schema {
    block(Vec::new(), "Manages files on the local file system.")
}

/// `resource "localfs_file"`.
pub fn file_resource() -> Schema {
    block(
        vec![
            attribute("path", "Absolute path of the file.", true),
            attribute("content", "Content of the file (UTF-8).", true),
            attribute("id", "The path, once the file exists.", false),
            attribute("sha256", "SHA-256 of the content, hex.", false),
        ],
        "A local file with the given content.",
    )
}

/// `data "localfs_file"`.
pub fn file_data_source() -> Schema {
    block(
        vec![
            attribute("path", "Absolute path of the file.", true),
            attribute("content", "Content of the file (UTF-8).", false),
            attribute("sha256", "SHA-256 of the content, hex.", false),
        ],
        "Reads a local file.",
    )
}

fn string_function(param: &str, summary: &str) -> Function {
    Function {
        parameters: vec![function::Parameter {
            name: param.into(),
            r#type: types::STRING.to_vec().into(),
            ..Default::default()
        }],
        r#return: Some(function::Return {
            r#type: types::STRING.to_vec().into(),
        }),
        summary: summary.into(),
        ..Default::default()
    }
}

/// `provider::localfs::<name>` functions.
pub fn functions() -> HashMap<String, Function> {
    HashMap::from([
        (
            "sha256".to_owned(),
            string_function("input", "SHA-256 of a string, hex."),
        ),
        (
            "basename".to_owned(),
            string_function("path", "The last element of a non-empty path."),
        ),
    ])
}
