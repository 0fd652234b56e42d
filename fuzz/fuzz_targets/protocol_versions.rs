#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(value) = std::str::from_utf8(data) {
        let _ = rpcplugin_handshake::parse_protocol_versions(value);
    }
});
