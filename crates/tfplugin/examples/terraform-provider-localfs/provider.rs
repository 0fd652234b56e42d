//! The gRPC `tfplugin6.Provider` service: decodes values, calls the
//! resource logic in `file.rs`, encodes the answer. Codec failures become
//! diagnostics, so OpenTofu prints them.

use crate::schema::{self, FILE};
use crate::{file, functions};
use rpcplugin_tfplugin::tfplugin6::provider_server::Provider;
use rpcplugin_tfplugin::tfplugin6::*;
use rpcplugin_tfplugin::{Value, diag};
use tonic::{Request, Response, Status};

/// The provider; it keeps no state between calls.
pub struct LocalFs;

type Reply<T> = Result<Response<T>, Status>;

fn decode(dv: Option<&DynamicValue>) -> Result<Value, Diagnostic> {
    Value::decode_opt(dv).map_err(|err| diag::error("Invalid value from OpenTofu", err.to_string()))
}

fn encode(value: &Value) -> Result<DynamicValue, Diagnostic> {
    value
        .encode()
        .map_err(|err| diag::error("Cannot encode value", err.to_string()))
}

fn unknown_type(type_name: &str) -> Diagnostic {
    diag::error(
        "Unknown type",
        format!("this provider has no resource or data source named {type_name:?}"),
    )
}

fn check_type(type_name: &str) -> Result<(), Diagnostic> {
    if type_name == FILE {
        Ok(())
    } else {
        Err(unknown_type(type_name))
    }
}

/// The resource and the data source validate their configuration alike.
fn validate_config(type_name: &str, config: Option<&DynamicValue>) -> Vec<Diagnostic> {
    check_type(type_name)
        .and_then(|()| decode(config))
        .map_or_else(|d| vec![d], |config| file::validate(&config))
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: false,
        move_resource_state: false,
    }
}

#[tonic::async_trait]
impl Provider for LocalFs {
    async fn get_metadata(
        &self,
        _: Request<get_metadata::Request>,
    ) -> Reply<get_metadata::Response> {
        Ok(Response::new(get_metadata::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: Vec::new(),
            data_sources: vec![get_metadata::DataSourceMetadata {
                type_name: FILE.into(),
            }],
            resources: vec![get_metadata::ResourceMetadata {
                type_name: FILE.into(),
            }],
            functions: schema::functions()
                .into_keys()
                .map(|name| get_metadata::FunctionMetadata { name })
                .collect(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<get_provider_schema::Request>,
    ) -> Reply<get_provider_schema::Response> {
        Ok(Response::new(get_provider_schema::Response {
            provider: Some(schema::provider()),
            resource_schemas: [(FILE.to_owned(), schema::file_resource())].into(),
            data_source_schemas: [(FILE.to_owned(), schema::file_data_source())].into(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(capabilities()),
            functions: schema::functions(),
        }))
    }

    async fn validate_provider_config(
        &self,
        _: Request<validate_provider_config::Request>,
    ) -> Reply<validate_provider_config::Response> {
        Ok(Response::new(validate_provider_config::Response {
            diagnostics: Vec::new(),
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<validate_resource_config::Request>,
    ) -> Reply<validate_resource_config::Response> {
        let req = request.into_inner();
        let diagnostics = validate_config(&req.type_name, req.config.as_ref());
        Ok(Response::new(validate_resource_config::Response {
            diagnostics,
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<validate_data_resource_config::Request>,
    ) -> Reply<validate_data_resource_config::Response> {
        let req = request.into_inner();
        let diagnostics = validate_config(&req.type_name, req.config.as_ref());
        Ok(Response::new(validate_data_resource_config::Response {
            diagnostics,
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<upgrade_resource_state::Request>,
    ) -> Reply<upgrade_resource_state::Response> {
        let req = request.into_inner();
        // Schema version 0 is the only one, so upgrading is re-encoding the
        // stored JSON as msgpack.
        let json = req.raw_state.map(|raw| raw.json).unwrap_or_default();
        let upgraded = check_type(&req.type_name)
            .and_then(|()| {
                Value::from_json(&json)
                    .map_err(|err| diag::error("Invalid stored state", err.to_string()))
            })
            .and_then(|state| encode(&state));
        let (upgraded_state, diagnostics) = split(upgraded);
        Ok(Response::new(upgrade_resource_state::Response {
            upgraded_state,
            diagnostics,
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<configure_provider::Request>,
    ) -> Reply<configure_provider::Response> {
        tracing::debug!(host = request.get_ref().terraform_version, "configured");
        Ok(Response::new(configure_provider::Response {
            diagnostics: Vec::new(),
        }))
    }

    async fn read_resource(
        &self,
        request: Request<read_resource::Request>,
    ) -> Reply<read_resource::Response> {
        let req = request.into_inner();
        let read = check_type(&req.type_name)
            .and_then(|()| decode(req.current_state.as_ref()))
            .and_then(|current| file::refresh(&current))
            .and_then(|state| encode(&state));
        let (new_state, diagnostics) = split(read);
        Ok(Response::new(read_resource::Response {
            new_state,
            diagnostics,
            private: req.private,
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<plan_resource_change::Request>,
    ) -> Reply<plan_resource_change::Response> {
        let req = request.into_inner();
        let planned = check_type(&req.type_name).and_then(|()| {
            let prior = decode(req.prior_state.as_ref())?;
            let proposed = decode(req.proposed_new_state.as_ref())?;
            let plan = file::plan(&prior, proposed);
            Ok((encode(&plan.state)?, plan.requires_replace))
        });
        let (planned_state, requires_replace, diagnostics) = match planned {
            Ok((state, replace)) => (Some(state), replace, Vec::new()),
            Err(d) => (None, Vec::new(), vec![d]),
        };
        Ok(Response::new(plan_resource_change::Response {
            planned_state,
            requires_replace,
            planned_private: req.prior_private,
            diagnostics,
            legacy_type_system: false,
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<apply_resource_change::Request>,
    ) -> Reply<apply_resource_change::Response> {
        let req = request.into_inner();
        let applied = check_type(&req.type_name).and_then(|()| {
            let prior = decode(req.prior_state.as_ref())?;
            let planned = decode(req.planned_state.as_ref())?;
            encode(&file::apply(&prior, &planned)?)
        });
        let (new_state, diagnostics) = split(applied);
        Ok(Response::new(apply_resource_change::Response {
            new_state,
            private: req.planned_private,
            diagnostics,
            legacy_type_system: false,
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<import_resource_state::Request>,
    ) -> Reply<import_resource_state::Response> {
        let req = request.into_inner();
        let imported = check_type(&req.type_name)
            .and_then(|()| file::import(&req.id))
            .and_then(|state| encode(&state));
        let (state, diagnostics) = split(imported);
        let imported_resources = state
            .map(|state| import_resource_state::ImportedResource {
                type_name: req.type_name,
                state: Some(state),
                private: Default::default(),
            })
            .into_iter()
            .collect();
        Ok(Response::new(import_resource_state::Response {
            imported_resources,
            diagnostics,
        }))
    }

    async fn move_resource_state(
        &self,
        request: Request<move_resource_state::Request>,
    ) -> Reply<move_resource_state::Response> {
        let req = request.into_inner();
        Ok(Response::new(move_resource_state::Response {
            target_state: None,
            diagnostics: vec![diag::error(
                "Move not supported",
                format!(
                    "{} cannot take state from {} {:?}",
                    FILE, req.source_provider_address, req.source_type_name
                ),
            )],
            target_private: Default::default(),
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<read_data_source::Request>,
    ) -> Reply<read_data_source::Response> {
        let req = request.into_inner();
        let read = check_type(&req.type_name)
            .and_then(|()| decode(req.config.as_ref()))
            .and_then(|config| file::read_data(&config))
            .and_then(|state| encode(&state));
        let (state, diagnostics) = split(read);
        Ok(Response::new(read_data_source::Response {
            state,
            diagnostics,
        }))
    }

    async fn get_functions(
        &self,
        _: Request<get_functions::Request>,
    ) -> Reply<get_functions::Response> {
        Ok(Response::new(get_functions::Response {
            functions: schema::functions(),
            diagnostics: Vec::new(),
        }))
    }

    async fn call_function(
        &self,
        request: Request<call_function::Request>,
    ) -> Reply<call_function::Response> {
        let req = request.into_inner();
        let args: Result<Vec<Value>, _> = req.arguments.iter().map(Value::decode).collect();
        let result = match args {
            Ok(args) => functions::call(&req.name, &args).and_then(|value| {
                value.encode().map_err(|err| FunctionError {
                    text: err.to_string(),
                    function_argument: None,
                })
            }),
            Err(err) => Err(FunctionError {
                text: format!("invalid argument: {err}"),
                function_argument: None,
            }),
        };
        let (result, error) = match result {
            Ok(value) => (Some(value), None),
            Err(error) => (None, Some(error)),
        };
        Ok(Response::new(call_function::Response { result, error }))
    }

    async fn stop_provider(
        &self,
        _: Request<stop_provider::Request>,
    ) -> Reply<stop_provider::Response> {
        Ok(Response::new(stop_provider::Response {
            error: String::new(),
        }))
    }
}

fn split<T>(result: Result<T, Diagnostic>) -> (Option<T>, Vec<Diagnostic>) {
    match result {
        Ok(value) => (Some(value), Vec::new()),
        Err(d) => (None, vec![d]),
    }
}
