#![no_main]

// What an HTTP/2 client sends on a served connection, through the filter
// that normalises `:authority` before h2 sees it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = rpcplugin_runtime::internal::fuzz_authority_filter(data);
});
