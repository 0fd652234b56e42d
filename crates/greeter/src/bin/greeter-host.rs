//! The greeter host: launches the plugin, says hello, prints the reply and
//! the time from launch to reply, and stops the plugin.
//!
//! Usage: `greeter-host [PLUGIN] [NAME]`. PLUGIN defaults to
//! `greeter-plugin` next to this program, NAME to `world`.

use std::path::PathBuf;
use std::time::Instant;

use rpcplugin::Client;
use rpcplugin_example_greeter::proto::HelloRequest;
use rpcplugin_example_greeter::proto::greeter_client::GreeterClient;
use rpcplugin_example_greeter::{COOKIE, VERSION};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs, the plugin's included, go to stderr at info level and above.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();

    let mut args = std::env::args_os().skip(1);
    let plugin_path = match args.next() {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()?.with_file_name("greeter-plugin"),
    };
    let name = args
        .next()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "world".to_owned());

    let started = Instant::now();
    let mut plugin = Client::builder(&plugin_path)
        .cookie(COOKIE.0, COOKIE.1)
        .versions([VERSION])
        .start()
        .await?;
    let mut greeter = GreeterClient::new(plugin.channel());
    let reply = greeter.say_hello(HelloRequest { name }).await?.into_inner();
    let elapsed = started.elapsed();

    println!("{}", reply.message);
    eprintln!(
        "launch to first reply: {:.2} ms",
        elapsed.as_secs_f64() * 1e3
    );
    plugin.kill().await?;
    Ok(())
}
