package main

import (
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// fileTypeName names both the resource and the data source.
const fileTypeName = "localfs_file"

var resourceType = tftypes.Object{AttributeTypes: map[string]tftypes.Type{
	"path": tftypes.String, "content": tftypes.String, "id": tftypes.String, "sha256": tftypes.String,
}}

var dataType = tftypes.Object{AttributeTypes: map[string]tftypes.Type{
	"path": tftypes.String, "content": tftypes.String, "sha256": tftypes.String,
}}

func attribute(name, description string, required bool) *tfprotov6.SchemaAttribute {
	return &tfprotov6.SchemaAttribute{
		Name: name, Type: tftypes.String, Description: description,
		Required: required, Computed: !required,
	}
}

func block(description string, attrs ...*tfprotov6.SchemaAttribute) *tfprotov6.Schema {
	return &tfprotov6.Schema{Block: &tfprotov6.SchemaBlock{Attributes: attrs, Description: description}}
}

func providerSchema() *tfprotov6.Schema {
	return block("Manages files on the local file system.")
}

func resourceSchema() *tfprotov6.Schema {
	return block("A local file with the given content.",
		attribute("path", "Absolute path of the file.", true),
		attribute("content", "Content of the file (UTF-8).", true),
		attribute("id", "The path, once the file exists.", false),
		attribute("sha256", "SHA-256 of the content, hex.", false),
	)
}

func dataSchema() *tfprotov6.Schema {
	return block("Reads a local file.",
		attribute("path", "Absolute path of the file.", true),
		attribute("content", "Content of the file (UTF-8).", false),
		attribute("sha256", "SHA-256 of the content, hex.", false),
	)
}

func stringFunction(param, summary string) *tfprotov6.Function {
	return &tfprotov6.Function{
		Parameters: []*tfprotov6.FunctionParameter{{Name: param, Type: tftypes.String}},
		Return:     &tfprotov6.FunctionReturn{Type: tftypes.String},
		Summary:    summary,
	}
}

func functions() map[string]*tfprotov6.Function {
	return map[string]*tfprotov6.Function{
		"sha256":   stringFunction("input", "SHA-256 of a string, hex."),
		"basename": stringFunction("path", "The last element of a non-empty path."),
	}
}
