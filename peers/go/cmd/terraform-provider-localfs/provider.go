package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// provider implements tfprotov6.ProviderServer; it keeps no state.
type provider struct{}

func capabilities() *tfprotov6.ServerCapabilities {
	return &tfprotov6.ServerCapabilities{PlanDestroy: true}
}

func checkType(name string) *tfprotov6.Diagnostic {
	if name != fileTypeName {
		return errorDiag("Unknown type", fmt.Sprintf("this provider has no resource or data source named %q", name))
	}
	return nil
}

// validateConfig: the resource and the data source validate alike.
func validateConfig(typeName string, config *tfprotov6.DynamicValue, typ tftypes.Type) []*tfprotov6.Diagnostic {
	if d := checkType(typeName); d != nil {
		return diags(d)
	}
	attrs, d := decode(config, typ)
	if d != nil {
		return diags(d)
	}
	return validate(attrs)
}

func unsupported(what string) []*tfprotov6.Diagnostic {
	return diags(errorDiag("Not supported", "this provider has no "+what))
}

func (*provider) GetMetadata(context.Context, *tfprotov6.GetMetadataRequest) (*tfprotov6.GetMetadataResponse, error) {
	resp := &tfprotov6.GetMetadataResponse{
		ServerCapabilities: capabilities(),
		DataSources:        []tfprotov6.DataSourceMetadata{{TypeName: fileTypeName}},
		Resources:          []tfprotov6.ResourceMetadata{{TypeName: fileTypeName}},
	}
	for name := range functions() {
		resp.Functions = append(resp.Functions, tfprotov6.FunctionMetadata{Name: name})
	}
	return resp, nil
}

func (*provider) GetProviderSchema(context.Context, *tfprotov6.GetProviderSchemaRequest) (*tfprotov6.GetProviderSchemaResponse, error) {
	return &tfprotov6.GetProviderSchemaResponse{
		ServerCapabilities: capabilities(),
		Provider:           providerSchema(),
		ResourceSchemas:    map[string]*tfprotov6.Schema{fileTypeName: resourceSchema()},
		DataSourceSchemas:  map[string]*tfprotov6.Schema{fileTypeName: dataSchema()},
		Functions:          functions(),
	}, nil
}

func (*provider) GetResourceIdentitySchemas(context.Context, *tfprotov6.GetResourceIdentitySchemasRequest) (*tfprotov6.GetResourceIdentitySchemasResponse, error) {
	return &tfprotov6.GetResourceIdentitySchemasResponse{}, nil
}

func (*provider) ValidateProviderConfig(_ context.Context, req *tfprotov6.ValidateProviderConfigRequest) (*tfprotov6.ValidateProviderConfigResponse, error) {
	return &tfprotov6.ValidateProviderConfigResponse{PreparedConfig: req.Config}, nil
}

func (*provider) ConfigureProvider(context.Context, *tfprotov6.ConfigureProviderRequest) (*tfprotov6.ConfigureProviderResponse, error) {
	return &tfprotov6.ConfigureProviderResponse{}, nil
}

func (*provider) StopProvider(context.Context, *tfprotov6.StopProviderRequest) (*tfprotov6.StopProviderResponse, error) {
	return &tfprotov6.StopProviderResponse{}, nil
}

func (*provider) ValidateResourceConfig(_ context.Context, req *tfprotov6.ValidateResourceConfigRequest) (*tfprotov6.ValidateResourceConfigResponse, error) {
	return &tfprotov6.ValidateResourceConfigResponse{Diagnostics: validateConfig(req.TypeName, req.Config, resourceType)}, nil
}

func (*provider) UpgradeResourceState(_ context.Context, req *tfprotov6.UpgradeResourceStateRequest) (*tfprotov6.UpgradeResourceStateResponse, error) {
	if d := checkType(req.TypeName); d != nil {
		return &tfprotov6.UpgradeResourceStateResponse{Diagnostics: diags(d)}, nil
	}
	v, err := req.RawState.Unmarshal(resourceType)
	if err != nil {
		return &tfprotov6.UpgradeResourceStateResponse{Diagnostics: diags(errorDiag("Invalid stored state", err.Error()))}, nil
	}
	dv, err := tfprotov6.NewDynamicValue(resourceType, v)
	if err != nil {
		return &tfprotov6.UpgradeResourceStateResponse{Diagnostics: diags(errorDiag("Cannot encode value", err.Error()))}, nil
	}
	return &tfprotov6.UpgradeResourceStateResponse{UpgradedState: &dv}, nil
}

func (*provider) ReadResource(_ context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	resp := &tfprotov6.ReadResourceResponse{Private: req.Private}
	current, d := decode(req.CurrentState, resourceType)
	if d == nil {
		d = checkType(req.TypeName)
	}
	var state attrs
	if d == nil && current != nil {
		var path string
		if path, d = current.knownString("path"); d == nil {
			state, d = read(path)
		}
	}
	if d == nil {
		resp.NewState, d = encode(resourceType, state)
	}
	resp.Diagnostics = diags(d)
	return resp, nil
}

func (*provider) PlanResourceChange(_ context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	resp := &tfprotov6.PlanResourceChangeResponse{PlannedPrivate: req.PriorPrivate}
	d := checkType(req.TypeName)
	var prior, proposed attrs
	if d == nil {
		prior, d = decode(req.PriorState, resourceType)
	}
	if d == nil {
		proposed, d = decode(req.ProposedNewState, resourceType)
	}
	if d == nil {
		var planned attrs
		planned, resp.RequiresReplace = plan(prior, proposed)
		resp.PlannedState, d = encode(resourceType, planned)
	}
	resp.Diagnostics = diags(d)
	return resp, nil
}

func (*provider) ApplyResourceChange(_ context.Context, req *tfprotov6.ApplyResourceChangeRequest) (*tfprotov6.ApplyResourceChangeResponse, error) {
	resp := &tfprotov6.ApplyResourceChangeResponse{Private: req.PlannedPrivate}
	d := checkType(req.TypeName)
	var prior, planned, state attrs
	if d == nil {
		prior, d = decode(req.PriorState, resourceType)
	}
	if d == nil {
		planned, d = decode(req.PlannedState, resourceType)
	}
	if d == nil {
		state, d = apply(prior, planned)
	}
	if d == nil {
		resp.NewState, d = encode(resourceType, state)
	}
	resp.Diagnostics = diags(d)
	return resp, nil
}

func (*provider) ImportResourceState(_ context.Context, req *tfprotov6.ImportResourceStateRequest) (*tfprotov6.ImportResourceStateResponse, error) {
	d := checkType(req.TypeName)
	var state attrs
	if d == nil {
		state, d = importFile(req.ID)
	}
	var dv *tfprotov6.DynamicValue
	if d == nil {
		dv, d = encode(resourceType, state)
	}
	if d != nil {
		return &tfprotov6.ImportResourceStateResponse{Diagnostics: diags(d)}, nil
	}
	return &tfprotov6.ImportResourceStateResponse{
		ImportedResources: []*tfprotov6.ImportedResource{{TypeName: req.TypeName, State: dv}},
	}, nil
}

func (*provider) MoveResourceState(_ context.Context, req *tfprotov6.MoveResourceStateRequest) (*tfprotov6.MoveResourceStateResponse, error) {
	return &tfprotov6.MoveResourceStateResponse{Diagnostics: unsupported("state moves from " + req.SourceTypeName)}, nil
}

func (*provider) UpgradeResourceIdentity(context.Context, *tfprotov6.UpgradeResourceIdentityRequest) (*tfprotov6.UpgradeResourceIdentityResponse, error) {
	return &tfprotov6.UpgradeResourceIdentityResponse{Diagnostics: unsupported("resource identities")}, nil
}

func (*provider) GenerateResourceConfig(context.Context, *tfprotov6.GenerateResourceConfigRequest) (*tfprotov6.GenerateResourceConfigResponse, error) {
	return &tfprotov6.GenerateResourceConfigResponse{Diagnostics: unsupported("configuration generation")}, nil
}

func (*provider) ValidateDataResourceConfig(_ context.Context, req *tfprotov6.ValidateDataResourceConfigRequest) (*tfprotov6.ValidateDataResourceConfigResponse, error) {
	return &tfprotov6.ValidateDataResourceConfigResponse{Diagnostics: validateConfig(req.TypeName, req.Config, dataType)}, nil
}

func (*provider) ReadDataSource(_ context.Context, req *tfprotov6.ReadDataSourceRequest) (*tfprotov6.ReadDataSourceResponse, error) {
	resp := &tfprotov6.ReadDataSourceResponse{}
	d := checkType(req.TypeName)
	var config, state attrs
	if d == nil {
		config, d = decode(req.Config, dataType)
	}
	if d == nil {
		state, d = readData(config)
	}
	if d == nil {
		resp.State, d = encode(dataType, state)
	}
	resp.Diagnostics = diags(d)
	return resp, nil
}

func (*provider) GetFunctions(context.Context, *tfprotov6.GetFunctionsRequest) (*tfprotov6.GetFunctionsResponse, error) {
	return &tfprotov6.GetFunctionsResponse{Functions: functions()}, nil
}

func (*provider) CallFunction(_ context.Context, req *tfprotov6.CallFunctionRequest) (*tfprotov6.CallFunctionResponse, error) {
	fail := func(text string, arg *int64) (*tfprotov6.CallFunctionResponse, error) {
		return &tfprotov6.CallFunctionResponse{Error: &tfprotov6.FunctionError{Text: text, FunctionArgument: arg}}, nil
	}
	first := int64(0)
	if len(req.Arguments) != 1 {
		return fail(fmt.Sprintf("%s takes exactly one argument, got %d", req.Name, len(req.Arguments)), nil)
	}
	v, err := req.Arguments[0].Unmarshal(tftypes.String)
	var input string
	if err != nil || !v.IsKnown() || v.IsNull() || v.As(&input) != nil {
		return fail("the argument must be a known string", &first)
	}
	var out string
	switch req.Name {
	case "sha256":
		out = sha256Hex([]byte(input))
	case "basename":
		trimmed := strings.TrimRight(input, "/")
		if trimmed == "" {
			return fail("path must not be empty or only slashes", &first)
		}
		out = trimmed[strings.LastIndex(trimmed, "/")+1:]
	default:
		return fail(fmt.Sprintf("no function named %q", req.Name), nil)
	}
	dv, err := tfprotov6.NewDynamicValue(tftypes.String, str(out))
	if err != nil {
		return fail(err.Error(), nil)
	}
	return &tfprotov6.CallFunctionResponse{Result: &dv}, nil
}

func (*provider) ValidateEphemeralResourceConfig(context.Context, *tfprotov6.ValidateEphemeralResourceConfigRequest) (*tfprotov6.ValidateEphemeralResourceConfigResponse, error) {
	return &tfprotov6.ValidateEphemeralResourceConfigResponse{Diagnostics: unsupported("ephemeral resources")}, nil
}

func (*provider) OpenEphemeralResource(context.Context, *tfprotov6.OpenEphemeralResourceRequest) (*tfprotov6.OpenEphemeralResourceResponse, error) {
	return &tfprotov6.OpenEphemeralResourceResponse{Diagnostics: unsupported("ephemeral resources")}, nil
}

func (*provider) RenewEphemeralResource(context.Context, *tfprotov6.RenewEphemeralResourceRequest) (*tfprotov6.RenewEphemeralResourceResponse, error) {
	return &tfprotov6.RenewEphemeralResourceResponse{Diagnostics: unsupported("ephemeral resources")}, nil
}

func (*provider) CloseEphemeralResource(context.Context, *tfprotov6.CloseEphemeralResourceRequest) (*tfprotov6.CloseEphemeralResourceResponse, error) {
	return &tfprotov6.CloseEphemeralResourceResponse{Diagnostics: unsupported("ephemeral resources")}, nil
}
