#![no_main]

use rpcplugin_runtime::ReattachConfig;
use std::collections::BTreeMap;

// One reattach configuration, and TF_REATTACH_PROVIDERS (a map of them).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = serde_json::from_str::<ReattachConfig>(text) {
        let _ = config.addr();
        let _ = config.tf_reattach_providers("registry.terraform.io/hashicorp/foo");
    }
    if let Ok(map) = serde_json::from_str::<BTreeMap<String, ReattachConfig>>(text) {
        for config in map.values() {
            let _ = config.addr();
        }
    }
});
