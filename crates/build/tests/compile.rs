//! Compiles real protos with protox and tonic-prost-build and checks what
//! the generated code refers to. That the code builds against the facade
//! alone is shown by the `rpcplugin-example-greeter` crate, which uses this
//! crate from its build.rs.

use std::path::Path;

use rpcplugin_build::{Builder, Error};

const GREETER: &str = r#"
syntax = "proto3";
package greeter;

// Says hello.
service Greeter {
  rpc SayHello(HelloRequest) returns (HelloReply);
}

message HelloRequest { string name = 1; }
message HelloReply { string message = 1; }
"#;

fn write(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(name), text)
}

#[test]
fn generated_code_reaches_tonic_and_prost_through_the_facade() {
    let protos = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    write(protos.path(), "greeter.proto", GREETER).unwrap();

    let written = Builder::new()
        .out_dir(out.path())
        .compile([protos.path().join("greeter.proto")], [protos.path()])
        .unwrap();

    assert_eq!(written, [out.path().join("greeter.rs")]);
    let code = std::fs::read_to_string(&written[0]).unwrap();
    assert!(code.contains("::rpcplugin::prost::Message"), "{code}");
    assert!(
        code.contains("::rpcplugin::tonic_prost::ProstCodec"),
        "{code}"
    );
    assert!(
        code.contains("use ::rpcplugin::tonic::codegen::*;"),
        "{code}"
    );
    assert!(code.contains("pub mod greeter_client"), "{code}");
    assert!(code.contains("pub mod greeter_server"), "{code}");
    // No path is left that needs tonic or prost as direct dependencies.
    let bare: Vec<&str> = code
        .lines()
        .filter(|line| {
            let stripped = line
                .replace("::rpcplugin::tonic::", "")
                .replace("::rpcplugin::tonic_prost::", "")
                .replace("::rpcplugin::prost", "");
            stripped.contains("tonic::") || stripped.contains("prost::")
        })
        .collect();
    assert!(bare.is_empty(), "{bare:#?}");
    // The scratch directory is gone.
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
}

#[test]
fn sides_can_be_left_out() {
    let protos = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    write(protos.path(), "greeter.proto", GREETER).unwrap();

    Builder::new()
        .out_dir(out.path())
        .build_server(false)
        .compile([protos.path().join("greeter.proto")], [protos.path()])
        .unwrap();

    let code = std::fs::read_to_string(out.path().join("greeter.rs")).unwrap();
    assert!(code.contains("pub mod greeter_client"));
    assert!(!code.contains("pub mod greeter_server"));
}

#[test]
fn imports_resolve_against_the_include_directories() {
    let protos = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    write(
        protos.path(),
        "common.proto",
        "syntax = \"proto3\";\npackage common;\nmessage Name { string value = 1; }\n",
    )
    .unwrap();
    write(
        protos.path(),
        "hello.proto",
        "syntax = \"proto3\";\npackage hello;\nimport \"common.proto\";\n\
         service Hello { rpc Say(common.Name) returns (common.Name); }\n",
    )
    .unwrap();

    let written = Builder::new()
        .out_dir(out.path())
        .compile([protos.path().join("hello.proto")], [protos.path()])
        .unwrap();

    let names: Vec<_> = written.iter().filter_map(|p| p.file_name()).collect();
    assert_eq!(names, ["common.rs", "hello.rs"]);
}

#[test]
fn a_broken_proto_is_a_compile_error_naming_the_place() {
    let protos = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    write(
        protos.path(),
        "broken.proto",
        "syntax = \"proto3\";\nmessage Broken { strin name = 1; }\n",
    )
    .unwrap();

    let err = Builder::new()
        .out_dir(out.path())
        .compile([protos.path().join("broken.proto")], [protos.path()])
        .unwrap_err();

    assert!(matches!(err, Error::Compile(_)), "{err:?}");
    let shown = format!("{err:?}");
    assert!(shown.starts_with("cannot compile the protos: "), "{shown}");
    assert!(shown.contains("strin"), "{shown}");
}

#[test]
fn a_missing_import_is_a_compile_error() {
    let protos = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    write(
        protos.path(),
        "lonely.proto",
        "syntax = \"proto3\";\nimport \"missing.proto\";\n",
    )
    .unwrap();

    let err = Builder::new()
        .out_dir(out.path())
        .compile([protos.path().join("lonely.proto")], [protos.path()])
        .unwrap_err();

    assert!(err.to_string().contains("missing.proto"), "{err}");
}
