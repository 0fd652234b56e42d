#![no_main]

// PLUGIN_CLIENT_CERT as a plugin reads it, then the key type of whatever
// certificate came out (and of the raw bytes taken as DER).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(der) = rpcplugin_certs::parse_cert_pem(data) {
        let _ = rpcplugin_certs::cert_key_type(&der);
    }
    let _ = rpcplugin_certs::parse_certs_pem(data);
    let _ = rpcplugin_certs::cert_key_type(data);
});
