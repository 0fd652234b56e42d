#![no_main]

// A plugin's stderr line as the host reads it; the first byte chooses
// whether an earlier line started a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let line = String::from_utf8_lossy(rest);
    let _ = rpcplugin_runtime::internal::parse_stderr_line(&line, first & 1 == 1);
});
