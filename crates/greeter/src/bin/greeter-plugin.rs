//! The greeter plugin: serves `greeter.Greeter` to a go-plugin host.

use rpcplugin::tonic::{Request, Response, Status};
use rpcplugin::{PluginServer, Routes};
use rpcplugin_example_greeter::proto::greeter_server::{Greeter, GreeterServer};
use rpcplugin_example_greeter::proto::{HelloReply, HelloRequest};
use rpcplugin_example_greeter::{COOKIE, VERSION};

struct MyGreeter;

#[rpcplugin::tonic::async_trait]
impl Greeter for MyGreeter {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        Ok(Response::new(HelloReply {
            message: format!("Hello, {name}!"),
        }))
    }
}

fn main() -> std::process::ExitCode {
    PluginServer::new(COOKIE.0, COOKIE.1)
        .version(VERSION, |_ctx| Routes::new(GreeterServer::new(MyGreeter)))
        .run()
}
