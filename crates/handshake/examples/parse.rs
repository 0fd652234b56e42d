//! Parses a go-plugin handshake line and prints its fields.
//!
//! ```text
//! cargo run -p rpcplugin-handshake --example parse -- '1|1|tcp|127.0.0.1:1234|grpc|'
//! echo '1|1|unix|/tmp/plugin77|grpc||true' | cargo run -p rpcplugin-handshake --example parse
//! ```
//!
//! Without an argument it reads the first line of stdin. It exits with
//! status 1 and an explanation on stderr when the line is rejected.

use std::io::BufRead as _;
use std::process::ExitCode;

use rpcplugin_handshake::{HandshakeLine, MAX_LINE_LEN};

fn main() -> ExitCode {
    let line = match std::env::args_os().nth(1) {
        Some(arg) => arg.into_encoded_bytes(),
        None => match read_first_line() {
            Ok(line) => line,
            Err(err) => {
                eprintln!("error: cannot read stdin: {err}");
                return ExitCode::FAILURE;
            }
        },
    };
    let parsed = match HandshakeLine::parse(&line) {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("core version:     {}", parsed.core_version);
    println!("app version:      {}", parsed.app_version);
    println!("network:          {}", parsed.network);
    println!("address:          {}", parsed.address);
    println!("protocol:         {}", parsed.protocol);
    match &parsed.server_cert {
        Some(der) => println!("server cert:      {} bytes of DER", der.len()),
        None => println!("server cert:      none (no TLS)"),
    }
    match parsed.multiplex {
        Some(multiplex) => println!("multiplexing:     {multiplex}"),
        None => println!("multiplexing:     not announced"),
    }
    if parsed.core_version != rpcplugin_handshake::CORE_PROTOCOL_VERSION {
        eprintln!(
            "warning: core protocol version {} is not {}: a host refuses this plugin",
            parsed.core_version,
            rpcplugin_handshake::CORE_PROTOCOL_VERSION
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Reads one line from stdin, never buffering much more than a handshake
/// line may hold.
fn read_first_line() -> std::io::Result<Vec<u8>> {
    let stdin = std::io::stdin();
    let mut limited = std::io::Read::take(stdin.lock(), (MAX_LINE_LEN + 3) as u64);
    let mut line = Vec::new();
    limited.read_until(b'\n', &mut line)?;
    Ok(line)
}
