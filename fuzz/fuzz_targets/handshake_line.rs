#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = rpcplugin_handshake::HandshakeLine::parse(data);
});
