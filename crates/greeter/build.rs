//! Compiles proto/greeter.proto into OUT_DIR (no protoc needed).

fn main() -> Result<(), rpcplugin_build::Error> {
    rpcplugin_build::compile_protos(["proto/greeter.proto"], ["proto"])
}
