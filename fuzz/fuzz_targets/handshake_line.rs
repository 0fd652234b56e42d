#![no_main]

use rpcplugin_handshake::{HandshakeLine, ParseOptions};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let plain = HandshakeLine::parse(data);
    let mux = HandshakeLine::parse_with(data, ParseOptions::new().multiplex_requested(true));
    // Requesting multiplexing only ever adds checks.
    if let Ok(line) = mux {
        assert_eq!(plain, Ok(line));
    }
});
