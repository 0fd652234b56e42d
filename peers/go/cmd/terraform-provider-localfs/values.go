package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// attrs is an object value split into its attributes; nil for null.
type attrs map[string]tftypes.Value

func decode(dv *tfprotov6.DynamicValue, typ tftypes.Type) (attrs, *tfprotov6.Diagnostic) {
	if dv == nil {
		return nil, nil
	}
	v, err := dv.Unmarshal(typ)
	if err != nil {
		return nil, errorDiag("Invalid value from OpenTofu", err.Error())
	}
	if v.IsNull() {
		return nil, nil
	}
	out := attrs{}
	if err := v.As((*map[string]tftypes.Value)(&out)); err != nil {
		return nil, errorDiag("Invalid value from OpenTofu", err.Error())
	}
	return out, nil
}

func encode(typ tftypes.Object, a attrs) (*tfprotov6.DynamicValue, *tfprotov6.Diagnostic) {
	var v tftypes.Value
	if a == nil {
		v = tftypes.NewValue(typ, nil)
	} else {
		v = tftypes.NewValue(typ, map[string]tftypes.Value(a))
	}
	dv, err := tfprotov6.NewDynamicValue(typ, v)
	if err != nil {
		return nil, errorDiag("Cannot encode value", err.Error())
	}
	return &dv, nil
}

// knownString returns the attribute as a known, non-null string.
func (a attrs) knownString(name string) (string, *tfprotov6.Diagnostic) {
	v, ok := a[name]
	var s string
	if !ok || !v.IsKnown() || v.IsNull() || v.As(&s) != nil {
		return "", attributeDiag(name, "Missing value", fmt.Sprintf("%s must be a known string", name))
	}
	return s, nil
}

func str(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }

var unknown = tftypes.NewValue(tftypes.String, tftypes.UnknownValue)

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func errorDiag(summary, detail string) *tfprotov6.Diagnostic {
	return &tfprotov6.Diagnostic{Severity: tfprotov6.DiagnosticSeverityError, Summary: summary, Detail: detail}
}

func attributeDiag(name, summary, detail string) *tfprotov6.Diagnostic {
	d := errorDiag(summary, detail)
	d.Attribute = tftypes.NewAttributePath().WithAttributeName(name)
	return d
}

func diags(d *tfprotov6.Diagnostic) []*tfprotov6.Diagnostic {
	if d == nil {
		return nil
	}
	return []*tfprotov6.Diagnostic{d}
}
