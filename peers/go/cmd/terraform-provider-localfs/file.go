package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// validate: path, when known, must be absolute.
func validate(config attrs) []*tfprotov6.Diagnostic {
	v, ok := config["path"]
	var path string
	if ok && v.IsKnown() && !v.IsNull() && v.As(&path) == nil && !filepath.IsAbs(path) {
		return diags(attributeDiag("path", "Relative path", fmt.Sprintf("path must be absolute, got %q", path)))
	}
	return nil
}

// plan marks computed attributes unknown when what they derive from changes.
func plan(prior, proposed attrs) (attrs, []*tftypes.AttributePath) {
	if proposed == nil {
		return nil, nil
	}
	var replace []*tftypes.AttributePath
	if prior == nil {
		proposed["id"], proposed["sha256"] = unknown, unknown
		return proposed, nil
	}
	if !prior["path"].Equal(proposed["path"]) {
		replace = append(replace, tftypes.NewAttributePath().WithAttributeName("path"))
		proposed["id"], proposed["sha256"] = unknown, unknown
	}
	if !prior["content"].Equal(proposed["content"]) {
		proposed["sha256"] = unknown
	}
	return proposed, replace
}

func fileState(path, content string) attrs {
	return attrs{"path": str(path), "content": str(content), "id": str(path), "sha256": str(sha256Hex([]byte(content)))}
}

// apply writes the planned file, or deletes it when planned is null.
func apply(prior, planned attrs) (attrs, *tfprotov6.Diagnostic) {
	if planned == nil {
		path, d := prior.knownString("path")
		if d != nil {
			return nil, d
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, errorDiag("Cannot delete file", err.Error())
		}
		return nil, nil
	}
	path, d := planned.knownString("path")
	if d != nil {
		return nil, d
	}
	content, d := planned.knownString("content")
	if d != nil {
		return nil, d
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return nil, errorDiag("Cannot write file", err.Error())
	}
	return fileState(path, content), nil
}

// read returns nil (and no diagnostic) when the file does not exist.
func read(path string) (attrs, *tfprotov6.Diagnostic) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errorDiag("Cannot read file", err.Error())
	}
	if !utf8.Valid(b) {
		return nil, errorDiag("File is not UTF-8", path+" holds binary data")
	}
	return fileState(path, string(b)), nil
}

func importFile(id string) (attrs, *tfprotov6.Diagnostic) {
	if !filepath.IsAbs(id) {
		return nil, errorDiag("Cannot import", fmt.Sprintf("the import id must be an absolute path, got %q", id))
	}
	state, d := read(id)
	if d == nil && state == nil {
		d = errorDiag("Cannot import", id+": no such file")
	}
	return state, d
}

func readData(config attrs) (attrs, *tfprotov6.Diagnostic) {
	path, d := config.knownString("path")
	if d != nil {
		return nil, d
	}
	state, d := read(path)
	if d != nil {
		return nil, d
	}
	if state == nil {
		return nil, attributeDiag("path", "File not found", path+": no such file")
	}
	delete(state, "id")
	return state, nil
}
